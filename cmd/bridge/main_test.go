package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
)

// runInBackground runs the command until the test ends it, and returns a stop function
// that cancels it and returns its error.
func runInBackground(t *testing.T, args []string, stdout, stderr io.Writer) func() error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, stdout, stderr)
		if ctx.Err() == nil { // ended on its own: say why where a failing wait shows stderr
			fmt.Fprintf(stderr, "\n[test] %s returned before it was stopped: %v\n", strings.Join(args, " "), err)
		}
		done <- err
	}()
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

func waitHealthy(t *testing.T, base string) { t.Helper(); waitFor200(t, base+"/healthz") }

// listeningOn waits for serve's "bridge listening" line in logs and returns the base URL it
// names: the address serve bound, so that no port is picked free and bound later.
func listeningOn(t *testing.T, logs *testkit.LogBuffer) string {
	t.Helper()
	re := regexp.MustCompile(`msg="bridge listening" addr=(http://\S+)`)
	testkit.Eventually(t, time.Minute, "serve listens", func() bool { return re.MatchString(logs.String()) }, logs.String)
	return re.FindStringSubmatch(logs.String())[1]
}

// waitReadyz waits until the bridge is ready: /healthz answers from the start, but the dedup
// window is rebuilt, and the topics' leaders settled, only later.
func waitReadyz(t *testing.T, base string) { t.Helper(); waitFor200(t, base+"/readyz") }

func waitFor200(t *testing.T, url string) {
	t.Helper()
	testkit.Eventually(t, time.Minute, url+" answers 200", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func post(t *testing.T, url string, h http.Header, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header = h
	// A connection of its own: tests start and stop many servers on ports the kernel hands
	// out again, and a pooled connection to an earlier server's port is an EOF to a POST,
	// which the client does not retry.
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
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
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	cfg := fmt.Sprintf(`
http: {listen: "127.0.0.1:0"}
kafka: {brokers: [%q], topic_prefix: %q, partitions: 1}
schema_registry: {url: "", password: "registry-password-xyz"}
sources:
  - {name: codivupload, provider: codivupload, secrets: ["${TEST_CODIV_SECRET}"]}
  - {name: acme, provider: standard-webhooks, secrets: [%q]}
log: {level: debug}
`, strings.Join(kafkatest.Brokers(t), ","), kafkatest.Prefix(t), fileSecret)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs testkit.LogBuffer
	stop := runInBackground(t, []string{"serve", "--config", path}, io.Discard, &logs)
	base := listeningOn(t, &logs)
	waitHealthy(t, base)

	h := http.Header{"Content-Type": {"application/json"}, "X-Codivupload-Event": {"post.published"},
		"X-Codivupload-Signature": {strings.Repeat("00", 32)}}
	if code, _ := post(t, base+"/webhooks/codivupload", h, `{"id":"evt_x"}`); code != 401 {
		t.Errorf("bad signature answered %d", code)
	}
	h = http.Header{"Content-Type": {"application/json"}, "Webhook-Id": {"msg_1"}, "Webhook-Timestamp": {"1"}, "Webhook-Signature": {"v1,AAAA"}}
	if code, _ := post(t, base+"/webhooks/acme", h, `{}`); code != 401 {
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

// TestServeNeedsNoConsumersSecrets runs serve on one file for every process, as PRODUCT.md
// has it, with only the ingress's variables set: the consumers' (the Slack webhook URL, the
// retry API's key) are none of its business.
func TestServeNeedsNoConsumersSecrets(t *testing.T) {
	t.Setenv("TEST_CODIV_SECRET", "cdv_whsec_from_the_environment_0123456789")
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	cfg := fmt.Sprintf(`
http: {listen: "127.0.0.1:0"}
kafka: {brokers: [%q], topic_prefix: %q, partitions: 1}
sources:
  - {name: codivupload, provider: codivupload, secrets: ["${TEST_CODIV_SECRET}"]}
consumers:
  retries:
    action:
      url: "https://api.codivupload.com/v1/posts/{post_id}/retry-failed"
      headers: {Authorization: "Bearer ${TEST_UNSET_RETRY_API_KEY}"}
  alerts: {slack_webhook_url: "${TEST_UNSET_SLACK_WEBHOOK_URL}"}
`, strings.Join(kafkatest.Brokers(t), ","), kafkatest.Prefix(t))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs testkit.LogBuffer
	stop := runInBackground(t, []string{"serve", "--config", path}, io.Discard, &logs)
	waitHealthy(t, listeningOn(t, &logs))
	if err := stop(); err != nil {
		t.Fatalf("serve ended with %v", err)
	}
}

// TestServeLogsAsConfigured runs serve with log.format json and log.level warn: every line
// it writes is a JSON object at WARN or above, and the info lines of a start and a stop (the
// address it listens on, the dedup store) are left out. The warning of a dedup window
// shorter than its sender's horizon, written at start, is the positive signal that serve
// logs at all.
func TestServeLogsAsConfigured(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	cfg := fmt.Sprintf(`
http: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
kafka: {brokers: [%q], topic_prefix: %q, partitions: 1}
sources:
  - {name: codivupload, provider: codivupload, secrets: [%q], dedup: {window: 1h}}
log: {format: json, level: warn}
`, strings.Join(kafkatest.Brokers(t), ","), kafkatest.Prefix(t), testCodivSecret)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs testkit.LogBuffer
	stop := runInBackground(t, []string{"serve", "--config", path}, io.Discard, &logs)
	testkit.Eventually(t, time.Minute, "the warning of a short window", func() bool {
		return strings.Contains(logs.String(), "shorter than its sender's retry horizon")
	}, logs.String)
	if err := stop(); err != nil {
		t.Fatalf("serve ended with %v", err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	for _, line := range lines {
		var rec struct {
			Level, Msg string
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("a line that is not JSON: %q (%v)", line, err)
			continue
		}
		if rec.Level != "WARN" && rec.Level != "ERROR" {
			t.Errorf("a %s line at log.level warn: %s", rec.Level, line)
		}
	}
	t.Logf("%d lines, all JSON at WARN or above", len(lines))
}
