package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/kafkatest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runInBackground runs the command until the test ends it, and returns a stop function
// that cancels it and returns its error.
func runInBackground(t *testing.T, args []string, stdout, stderr io.Writer) func() error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, stdout, stderr) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				err = errors.New("did not stop within 60s")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never became healthy", base)
}

func post(t *testing.T, url string, h http.Header, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeKeepsSecretsOutOfLogs(t *testing.T) {
	const envSecret = "cdv_whsec_from_the_environment_0123456789"
	const fileSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	t.Setenv("TEST_CODIV_SECRET", envSecret)
	addr := freeAddr(t)
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	cfg := fmt.Sprintf(`
http: {listen: %q}
kafka: {brokers: [%q], topic_prefix: %q, partitions: 1}
schema_registry: {url: "", password: "registry-password-xyz"}
sources:
  - {name: codivupload, provider: codivupload, secrets: ["${TEST_CODIV_SECRET}"]}
  - {name: acme, provider: standard-webhooks, secrets: [%q]}
log: {level: debug}
`, addr, strings.Join(kafkatest.Brokers(t), ","), kafkatest.Prefix(t), fileSecret)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	stop := runInBackground(t, []string{"serve", "--config", path}, io.Discard, &logs)
	waitHealthy(t, "http://"+addr)

	h := http.Header{"Content-Type": {"application/json"}, "X-Codivupload-Event": {"post.published"},
		"X-Codivupload-Signature": {strings.Repeat("00", 32)}}
	if code, _ := post(t, "http://"+addr+"/webhooks/codivupload", h, `{"id":"evt_x"}`); code != 401 {
		t.Errorf("bad signature answered %d", code)
	}
	h = http.Header{"Content-Type": {"application/json"}, "Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {"1"}, "Webhook-Signature": {"v1,AAAA"}}
	if code, _ := post(t, "http://"+addr+"/webhooks/acme", h, `{}`); code != 401 {
		t.Errorf("stale standard webhook answered %d", code)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve ended with %v", err)
	}

	out := logs.String()
	if !strings.Contains(out, "bridge listening") || !strings.Contains(out, "[redacted]") {
		t.Fatalf("the log lacks the start lines:\n%s", out)
	}
	for _, secret := range []string{envSecret, fileSecret, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "registry-password-xyz"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows the secret %q", secret)
		}
	}
}

func TestServeRefusesABadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	os.WriteFile(path, []byte("kafka: {brokers: [\"127.0.0.1:1\"]}\nsources: [{name: a, provider: nope, secrets: [x]}]\n"), 0o600)
	err := run(context.Background(), []string{"serve", "--config", path}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `sources[0].provider: unknown provider "nope"`) {
		t.Fatalf("got %v", err)
	}
	if err := run(context.Background(), []string{"serve"}, io.Discard, io.Discard); !errors.Is(err, errUsage) {
		t.Fatalf("serve without --config: %v", err)
	}
	good := filepath.Join(t.TempDir(), "good.yaml")
	os.WriteFile(good, []byte("kafka: {brokers: [\"127.0.0.1:1\"]}\nsources: [{name: a, provider: codivupload, secrets: [x]}]\n"), 0o600)
	if err := run(context.Background(), []string{"serve", "--config", good, "--pprof", "0.0.0.0:6060"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("pprof on a public address: %v", err)
	}
	if err := run(context.Background(), []string{"launch"}, io.Discard, io.Discard); !errors.Is(err, errUsage) {
		t.Fatalf("unknown command: %v", err)
	}
}

// TestDevPrintsAWorkingCurl runs the README's run command and sends the request it prints.
func TestDevPrintsAWorkingCurl(t *testing.T) {
	addr := freeAddr(t)
	var stdout, stderr syncBuffer
	runInBackground(t, []string{"dev", "--listen", addr}, &stdout, &stderr)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(stdout.String(), "Ctrl-C") {
		if time.Now().After(deadline) {
			t.Fatalf("dev printed no welcome:\n%s\n%s", stdout.String(), stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := stdout.String()
	url := regexp.MustCompile(`curl -sS -X POST (\S+)`).FindStringSubmatch(out)
	body := regexp.MustCompile(`--data-raw '([^']+)'`).FindStringSubmatch(out)
	if url == nil || body == nil {
		t.Fatalf("no curl in:\n%s", out)
	}
	h := http.Header{}
	for _, m := range regexp.MustCompile(`-H '([^:]+): ([^']+)'`).FindAllStringSubmatch(out, -1) {
		h.Set(m[1], m[2])
	}
	code, answer := post(t, url[1], h, body[1])
	if code != 200 || !strings.Contains(answer, `"status":"accepted"`) {
		t.Fatalf("the printed curl was answered %d %s", code, answer)
	}
	if code, answer = post(t, url[1], h, body[1]); !strings.Contains(answer, `"status":"duplicate"`) {
		t.Fatalf("sent again: %d %s", code, answer)
	}
}

// TestDevPrintsCommandsThatWork runs the simulate and tail commands bridge dev prints, as
// printed: every answer is as expected, and tail shows each accepted event once.
func TestDevPrintsCommandsThatWork(t *testing.T) {
	addr := freeAddr(t)
	var stdout syncBuffer
	runInBackground(t, []string{"dev", "--listen", addr}, &stdout, io.Discard)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(stdout.String(), "Ctrl-C") {
		if time.Now().After(deadline) {
			t.Fatalf("dev printed no welcome:\n%s", stdout.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	commands := regexp.MustCompile(`(?m)^  go run \./cmd/bridge (.+)$`).FindAllStringSubmatch(stdout.String(), -1)
	if len(commands) != 2 || !strings.HasPrefix(commands[0][1], "simulate ") || !strings.HasPrefix(commands[1][1], "tail ") {
		t.Fatalf("want a simulate and a tail command in:\n%s", stdout.String())
	}
	var sim, tailed syncBuffer
	if err := run(t.Context(), strings.Fields(commands[0][1]), &sim, io.Discard); err != nil {
		t.Fatalf("%s: %v\n%s", commands[0][1], err, sim.String())
	}
	if err := run(t.Context(), strings.Fields(commands[1][1]), &tailed, io.Discard); err != nil {
		t.Fatalf("%s: %v", commands[1][1], err)
	}
	accepted := summary(t, sim.String())["200 accepted"]
	if lines := parseTail(t, tailed.String()); accepted < 10 || len(lines) != accepted {
		t.Fatalf("simulate accepted %d, tail printed %d records:\n%s", accepted, len(lines), tailed.String())
	}
}
