package main

import (
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/socialbridge/bridge/internal/testkit"
)

func TestStandInsLogWhatTheyReceive(t *testing.T) {
	var logs testkit.LogBuffer
	s, err := startStandIns("127.0.0.1:0", false, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	for range 2 {
		req, _ := http.NewRequest("POST", s.RetryAPIURL()+"/v1/posts/post_42/retry-failed", strings.NewReader(`{"reason":"test"}`))
		req.Header.Set("Idempotency-Key", "evt_123")
		req.Header.Set("Authorization", "Bearer sk_not_for_logs")
		if code, body := do(t, req); code != 200 || !strings.Contains(body, "retry scheduled") {
			t.Fatalf("retry API stand-in: %d %s", code, body)
		}
	}
	req, _ := http.NewRequest("POST", s.SlackURL(), strings.NewReader(`{"text":"Reconnect main on instagram","blocks":[{"type":"section"},{"type":"actions"}]}`))
	if code, body := do(t, req); code != 200 || body != "ok" {
		t.Fatalf("Slack stand-in: %d %s", code, body)
	}
	req, _ = http.NewRequest("POST", s.SlackURL(), strings.NewReader(`{"blocks":[]}`))
	if code, _ := do(t, req); code != 400 {
		t.Fatalf("Slack stand-in took a message without text: %d", code)
	}
	req, _ = http.NewRequest("GET", "http://"+s.ln.Addr().String()+"/healthz", nil)
	if code, _ := do(t, req); code != 200 {
		t.Fatalf("/healthz answered %d", code)
	}
	out := logs.String()
	for _, want := range []string{"path=/v1/posts/post_42/retry-failed", "idempotency_key=evt_123", `body="{\"reason\":\"test\"}"`,
		`text="Reconnect main on instagram"`, "blocks=2"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "sk_not_for_logs") || strings.Contains(out, "answered 503") {
		t.Errorf("the log shows a header's value, or a 503 without --fail-first:\n%s", out)
	}
}

// TestStandInsFailFirst: with fail-first, the first call of each key is answered 503 and
// the next 200, as the retries consumer needs to show its delay topics.
func TestStandInsFailFirst(t *testing.T) {
	var logs testkit.LogBuffer
	s, err := startStandIns("127.0.0.1:0", true, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	call := func(key string) int {
		req, _ := http.NewRequest("POST", s.RetryAPIURL()+"/v1/posts/post_42/retry-failed", nil)
		req.Header.Set("Idempotency-Key", key)
		code, _ := do(t, req)
		return code
	}
	got := []int{call("evt_a"), call("evt_a"), call("evt_b"), call("evt_a"), call("evt_b")}
	if want := []int{503, 200, 503, 200, 200}; !slices.Equal(got, want) {
		t.Fatalf("answers %v, want %v", got, want)
	}
	if n := strings.Count(logs.String(), "answered 503"); n != 2 {
		t.Fatalf("%d calls logged as answered 503, want 2:\n%s", n, logs.String())
	}
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
