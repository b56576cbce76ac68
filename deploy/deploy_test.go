// Package deploy holds the configuration the compose stack mounts; its tests check that
// docker-compose.yml is valid and that the bridge accepts that file with that environment.
package deploy_test

import (
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/testenv"
)

const composeFile = "../docker-compose.yml"

// TestComposeFileIsValid runs Debian's docker-compose on the file, with and without the
// registry profile, as a user's `docker-compose up` would read it.
func TestComposeFileIsValid(t *testing.T) {
	testenv.Require(t, testenv.Docker)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatal("docker-compose is not installed: scripts/services.sh installs it with the Docker engine")
	}
	for _, args := range [][]string{{"config", "-q"}, {"--profile", "registry", "config", "-q"}} {
		out, err := exec.Command("docker-compose", append([]string{"-f", composeFile}, args...)...).CombinedOutput()
		if err != nil {
			t.Errorf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

type service struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	Profiles    []string          `yaml:"profiles"`
	Healthcheck struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
}

func services(t *testing.T) map[string]service {
	t.Helper()
	b, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]service `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Services
}

var defaulted = regexp.MustCompile(`^\$\{[A-Z_]+:-(.*)\}$`)

// environment resolves a service's environment as compose does with nothing exported:
// ${VAR:-default} becomes the default.
func environment(s service) map[string]string {
	env := map[string]string{}
	for k, v := range s.Environment {
		if m := defaulted.FindStringSubmatch(v); m != nil {
			v = m[1]
		}
		env[k] = v
	}
	return env
}

// TestComposeConfigLoads loads deploy/bridge.yaml with the bridge's own loader, in the
// environment each bridge service of the stack gets, and checks that every service runs
// the command the file is meant for on the mounted file, and publishes what it listens on.
func TestComposeConfigLoads(t *testing.T) {
	b, err := os.ReadFile("bridge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	svcs := services(t)
	for name, want := range map[string][]string{
		"bridge":    {"serve"},
		"retries":   {"consume", "retries"},
		"alerts":    {"consume", "alerts"},
		"analytics": {"consume", "analytics"},
	} {
		s, ok := svcs[name]
		if !ok {
			t.Fatalf("no service %s", name)
		}
		env := environment(s)
		cfg, err := config.Parse(b, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := cfg.RequireRetries(); err != nil {
			t.Error(err)
		}
		if err := cfg.RequireAlerts(); err != nil {
			t.Error(err)
		}
		if !slices.Equal(s.Command, append(want, "--config", "/etc/bridge/bridge.yaml")) ||
			!slices.Contains(s.Volumes, "./deploy/bridge.yaml:/etc/bridge/bridge.yaml:ro") {
			t.Errorf("%s runs %v with volumes %v", name, s.Command, s.Volumes)
		}
		checkPublished(t, name, s, cfg)
	}
}

func checkPublished(t *testing.T, name string, s service, cfg config.Config) {
	t.Helper()
	listen := map[string]string{"bridge": cfg.HTTP.Listen, "analytics": cfg.Consumers.Analytics.Listen}[name]
	if listen == "" {
		return
	}
	port := listen[strings.LastIndex(listen, ":")+1:]
	if !strings.HasPrefix(listen, "0.0.0.0:") || !slices.Contains(s.Ports, "127.0.0.1:"+port+":"+port) {
		t.Errorf("%s listens on %s and publishes %v", name, listen, s.Ports)
	}
}

// imageCheck is the HEALTHCHECK of the Dockerfile, which a service without its own runs.
var imageCheck = regexp.MustCompile(`(?m)^HEALTHCHECK .*\\\n\s+CMD (\[.*\])$`)

// TestComposeHealthchecksReachTheirService checks that every bridge process of the stack is
// health-checked, by `bridge healthcheck` (the image has no shell), on the /healthz of the
// address it listens on as configured: a check that probes another port or path marks a
// healthy service unhealthy, or a dead one healthy.
func TestComposeHealthchecksReachTheirService(t *testing.T) {
	b, err := os.ReadFile("bridge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := imageCheck.FindSubmatch(dockerfile)
	if m == nil {
		t.Fatal("no HEALTHCHECK … CMD [...] in the Dockerfile")
	}
	var fromImage []string
	if err := yaml.Unmarshal(m[1], &fromImage); err != nil {
		t.Fatal(err)
	}
	svcs := services(t)
	load := func(s service) config.Config {
		env := environment(s)
		cfg, err := config.Parse(b, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	for name, listen := range map[string]func(service) string{
		"bridge":    func(s service) string { return load(s).HTTP.Listen },
		"retries":   func(s service) string { return load(s).Consumers.Retries.Member.Listen },
		"alerts":    func(s service) string { return load(s).Consumers.Alerts.Member.Listen },
		"analytics": func(s service) string { return load(s).Consumers.Analytics.Listen },
		"standins":  func(s service) string { return flagValue(s.Command, "--listen") },
	} {
		s := svcs[name]
		check := s.Healthcheck.Test
		if check == nil && !s.Healthcheck.Disable {
			check = append([]string{"CMD"}, fromImage...)
		}
		checkProbes(t, name, check, listen(s))
	}
}

// checkProbes fails unless check runs `bridge healthcheck` on the /healthz of a loopback
// URL that reaches a server listening on listen, inside the same container.
func checkProbes(t *testing.T, name string, check []string, listen string) {
	t.Helper()
	if len(check) < 3 || check[0] != "CMD" || check[1] != "/usr/local/bin/bridge" || check[2] != "healthcheck" {
		t.Errorf("%s: health check %q, want [CMD /usr/local/bin/bridge healthcheck --url …]", name, check)
		return
	}
	u, err := url.Parse(flagValue(check, "--url"))
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Path != "/healthz" {
		t.Errorf("%s: health check %q, want --url http://127.0.0.1:PORT/healthz", name, check)
		return
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port != u.Port() || (host != "0.0.0.0" && host != "127.0.0.1") {
		t.Errorf("%s listens on %q, and its health check probes %s", name, listen, u)
	}
}

// flagValue is the value after flag in args, or "".
func flagValue(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}
