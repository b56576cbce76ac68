package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestStandInsLogWhatTheyReceive(t *testing.T) {
	var logs syncBuffer
	s, err := startStandIns("127.0.0.1:0", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	req, _ := http.NewRequest("POST", s.RetryAPIURL()+"/v1/posts/post_42/retry-failed", strings.NewReader(`{"reason":"test"}`))
	req.Header.Set("Idempotency-Key", "evt_123")
	if code, body := do(t, req); code != 200 || !strings.Contains(body, "retry scheduled") {
		t.Fatalf("retry API stand-in: %d %s", code, body)
	}
	req, _ = http.NewRequest("POST", s.SlackURL(), strings.NewReader(`{"text":"Reconnect main on instagram","blocks":[{"type":"section"},{"type":"actions"}]}`))
	if code, body := do(t, req); code != 200 || body != "ok" {
		t.Fatalf("Slack stand-in: %d %s", code, body)
	}
	req, _ = http.NewRequest("POST", s.SlackURL(), strings.NewReader(`{"blocks":[]}`))
	if code, _ := do(t, req); code != 400 {
		t.Fatalf("Slack stand-in took a message without text: %d", code)
	}
	out := logs.String()
	for _, want := range []string{"path=/retry-api/v1/posts/post_42/retry-failed", "idempotency_key=evt_123", `"text="Reconnect main on instagram"`, "blocks=2"} {
		if !strings.Contains(out, strings.TrimPrefix(want, `"`)) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
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
