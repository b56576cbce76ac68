// Package deploy holds the configuration the compose stack mounts; its tests check that
// docker-compose.yml is valid and that the bridge accepts that file with that environment.
package deploy_test

import (
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
