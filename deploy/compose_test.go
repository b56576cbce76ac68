package deploy_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"

	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testenv"
	"github.com/socialbridge/bridge/internal/testkit"
)

// stack is the compose stack run as processes of the built binary on this machine: each
// service's command with the environment compose gives it, against the test's Kafka and
// PostgreSQL in place of the kafka and postgres services.
type stack struct {
	t      *testing.T
	bin    string
	svcs   map[string]service
	config string // deploy/bridge.yaml as the stack's processes read it here
	procs  map[string]*testkit.Proc
	addrs  map[string]string // service → the address it bound, for its listen port
}

// TestComposeStackRuns runs what docs/deployment.md's Compose section promises, as far as it
// can be run without pulling images: every bridge service of docker-compose.yml (bridge,
// retries, alerts, analytics, standins) as its command on deploy/bridge.yaml, with the
// environment compose would give it, service names resolved to this machine (kafka to the
// test broker, postgres to the test database, standins to the stand-ins' address). Then
// `bridge simulate` with its defaults (no --config: bridge dev's source and secret, which
// the compose bridge has by default) sends a failed post and an expired token: the retries
// consumer calls the retry-API stand-in, the alerts consumer the Slack stand-in, the
// dashboard counts both, each service's health check passes, and every log line of the
// bridge processes is JSON (log.format: json).
//
// What it rewrites, and why: listen addresses to port 0 (each container has its own ports;
// here they share the machine with other tests, so each binds a port of its choosing and the
// test reads it from the process's log), the topic prefix and group names (unique to the
// test, on a shared broker), and the analytics database (a schema of its own in the test
// database, instead of the postgres service's). Everything else is the files' own.
func TestComposeStackRuns(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	if !kafkatest.Real() {
		t.Skip("the stack runs as separate processes: it needs a real Kafka (make test)")
	}
	database := postgresSchema(t, testenv.Require(t, testenv.Postgres))
	s := &stack{t: t, bin: testkit.BuildBridge(t), svcs: services(t), procs: map[string]*testkit.Proc{}, addrs: map[string]string{}}
	s.config = s.rewriteConfig(brokers[0], kafkatest.Prefix(t), database)

	s.start("standins", regexp.MustCompile(`msg="stand-ins listening" retry_api=http://(\S+)/retry-api`))
	s.start("bridge", jsonField("bridge listening", "addr", "http://"))
	s.start("retries", jsonField("consuming", "metrics", "http://"))
	s.start("alerts", jsonField("consuming", "metrics", "http://"))
	s.start("analytics", jsonField("analytics consumer started", "dashboard", "http://"))
	s.waitReady()

	failed := s.simulate("post.failed")
	expired := s.simulate("post.token_expired")
	s.waitFor("standins", "the retry-API stand-in gets a call for "+failed,
		regexp.MustCompile(`msg="retry API stand-in received a call, answered 200".* path=/v1/posts/\S+/retry-failed idempotency_key=`+regexp.QuoteMeta(failed)+`\n`))
	s.waitFor("standins", "the Slack stand-in gets the alert of "+expired,
		regexp.MustCompile(`msg="Slack stand-in received a message, answered ok" text="[^"]*Token expired`))
	s.waitDashboard(1, 1)
	s.healthchecks()
	s.logsAreJSON("bridge", "retries", "alerts", "analytics")
}

// rewriteConfig writes deploy/bridge.yaml with the rewrites TestComposeStackRuns names, and
// returns its path.
func (s *stack) rewriteConfig(broker, prefix, database string) string {
	b, err := os.ReadFile("bridge.yaml")
	if err != nil {
		s.t.Fatal(err)
	}
	text := string(b)
	for old, new := range map[string]string{
		`"kafka:19092"`: fmt.Sprintf("%q", broker),
		`"social.`:      `"` + prefix,
	} {
		if !strings.Contains(text, old) {
			s.t.Fatalf("deploy/bridge.yaml has no %s to resolve", old)
		}
		text = strings.ReplaceAll(text, old, new)
	}
	listen := regexp.MustCompile(`listen: "0\.0\.0\.0:\d+"`)
	text = listen.ReplaceAllString(text, `listen: "127.0.0.1:0"`)
	db := regexp.MustCompile(`database: "postgres://[^"]*@postgres:5432/[^"]*"`)
	if !db.MatchString(text) {
		s.t.Fatal("deploy/bridge.yaml's analytics database is not the postgres service")
	}
	text = db.ReplaceAllString(text, fmt.Sprintf("database: %q", database))
	path := filepath.Join(s.t.TempDir(), "bridge.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// start runs service name's command as compose would, and learns the address it bound from
// the first match of addr in its output.
func (s *stack) start(name string, addr *regexp.Regexp) {
	s.t.Helper()
	svc, ok := s.svcs[name]
	if !ok {
		s.t.Fatalf("docker-compose.yml has no service %s", name)
	}
	args := slices.Clone(svc.Command)
	for i, a := range args {
		switch {
		case a == "/etc/bridge/bridge.yaml":
			args[i] = s.config
		case i > 0 && args[i-1] == "--listen":
			args[i] = "127.0.0.1:0"
		}
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Env = s.environment(svc)
	p := testkit.Start(s.t, name, cmd)
	s.procs[name] = p
	testkit.Eventually(s.t, 2*time.Minute, name+" says where it listens", func() bool {
		select {
		case <-p.Exited():
			s.t.Fatalf("%s exited: %v\n%s", name, p.Err(), p.Out.String())
		default:
		}
		return addr.MatchString(p.Out.String())
	}, p.Out.String)
	s.addrs[name] = addr.FindStringSubmatch(p.Out.String())[1]
}

// environment is the service's environment as compose resolves it with nothing exported,
// and with the other services' names resolved to where they run here: nothing else, as a
// container has nothing else.
func (s *stack) environment(svc service) []string {
	_, port, _ := net.SplitHostPort(flagValue(s.svcs["standins"].Command, "--listen"))
	standins := regexp.MustCompile(`\bstandins:(\d+)`)
	var env []string
	for k, v := range environment(svc) {
		for _, m := range standins.FindAllStringSubmatch(v, -1) {
			if m[1] != port {
				s.t.Fatalf("%s=%s: the standins service listens on port %s", k, v, port)
			}
		}
		v = standins.ReplaceAllString(v, s.addrs["standins"])
		if strings.Contains(v, "kafka:") || strings.Contains(v, "postgres:") || strings.Contains(v, "schema-registry:") {
			s.t.Fatalf("%s=%s names a service this test does not resolve", k, v)
		}
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// jsonField matches a JSON log line with msg and a field whose value starts with scheme, and
// captures the host:port after the scheme.
func jsonField(msg, field, scheme string) *regexp.Regexp {
	return regexp.MustCompile(`"msg":"` + regexp.QuoteMeta(msg) + `".*"` + field + `":"` + regexp.QuoteMeta(scheme) + `([^/"]+)`)
}

// waitReady waits until the bridge answers /readyz with 200 and each consumer its /healthz.
func (s *stack) waitReady() {
	s.t.Helper()
	for name, path := range map[string]string{"bridge": "/readyz", "retries": "/healthz", "alerts": "/healthz", "analytics": "/healthz"} {
		u := "http://" + s.addrs[name] + path
		testkit.Eventually(s.t, 2*time.Minute, u+" answers 200", func() bool { return status(u) == http.StatusOK },
			s.procs[name].Out.String)
	}
}

// simulate runs `bridge simulate TYPE` with no --config: the source and secret are bridge
// dev's, which the compose bridge has by default. Its URL is the one the bridge bound: its
// default, 127.0.0.1:8080, is where compose publishes the bridge (TestComposeConfigLoads),
// and TestSimulateAgainstDev tests that simulate finds it by default. It returns the
// accepted event's id.
func (s *stack) simulate(eventType string) string {
	s.t.Helper()
	out, err := exec.Command(s.bin, "simulate", eventType, "--url", "http://"+s.addrs["bridge"]).CombinedOutput()
	if err != nil {
		s.t.Fatalf("simulate %s: %v\n%s", eventType, err, out)
	}
	m := regexp.MustCompile(`"status":"accepted","event_id":"([^"]+)"`).FindSubmatch(out)
	if m == nil {
		s.t.Fatalf("simulate %s accepted nothing:\n%s", eventType, out)
	}
	return string(m[1])
}

// waitFor waits until service name's output matches re.
func (s *stack) waitFor(name, what string, re *regexp.Regexp) {
	s.t.Helper()
	p := s.procs[name]
	testkit.Eventually(s.t, 2*time.Minute, what, func() bool { return re.MatchString(p.Out.String()) }, p.Out.String)
}

// waitDashboard waits until the dashboard's summary counts failed and expired.
func (s *stack) waitDashboard(failed, expired int) {
	s.t.Helper()
	u := "http://" + s.addrs["analytics"] + "/analytics/api/summary"
	var body string
	testkit.Eventually(s.t, 2*time.Minute, "the dashboard counts the failure and the expiry", func() bool {
		var sum struct {
			Totals struct {
				Failed       int `json:"failed"`
				TokenExpired int `json:"token_expired"`
			} `json:"totals"`
		}
		resp, err := http.Get(u)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		body = string(raw)
		return json.Unmarshal(raw, &sum) == nil && sum.Totals.Failed == failed && sum.Totals.TokenExpired == expired
	}, func() string { return body })
}

// healthchecks runs each service's compose health check, the port it probes inside the
// container mapped to the one the service bound here.
func (s *stack) healthchecks() {
	s.t.Helper()
	for name, svc := range s.svcs {
		check := svc.Healthcheck.Test
		if len(check) < 2 || check[0] != "CMD" || s.procs[name] == nil {
			continue
		}
		args := slices.Clone(check[2:])
		i := slices.Index(args, "--url")
		u, err := url.Parse(args[i+1])
		if err != nil {
			s.t.Fatal(err)
		}
		u.Host = s.addrs[name]
		args[i+1] = u.String()
		if out, err := exec.Command(s.bin, args...).CombinedOutput(); err != nil {
			s.t.Errorf("%s's health check %v: %v\n%s", name, args, err, out)
		}
	}
}

// logsAreJSON checks that every line the services wrote is a JSON object (log.format json).
func (s *stack) logsAreJSON(names ...string) {
	s.t.Helper()
	for _, name := range names {
		for _, line := range strings.Split(strings.TrimSpace(s.procs[name].Out.String()), "\n") {
			var v map[string]any
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				s.t.Errorf("%s wrote a line that is not JSON: %q", name, line)
				break
			}
		}
	}
}

func status(u string) int {
	resp, err := http.Get(u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// postgresSchema creates a schema of its own in the test database, dropped when the test
// ends, and returns a DSN that uses it.
func postgresSchema(t *testing.T, base string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "compose_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err == nil {
			_, _ = db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
			db.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
