package sender_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/internal/sender"
)

func TestTamperLeavesTheOriginal(t *testing.T) {
	d := providers.Delivery{Path: "/tok_123", Header: http.Header{"X-Sig": {"abc"}}, Body: []byte(`{"id":"1"}`)}
	forged := sender.Tamper(d)
	if bytes.Equal(forged.Body, d.Body) || forged.Path == d.Path {
		t.Fatalf("tampered %+v is the original", forged)
	}
	forged.Header.Set("X-Sig", "changed")
	if string(d.Body) != `{"id":"1"}` || d.Path != "/tok_123" || d.Header.Get("X-Sig") != "abc" {
		t.Fatalf("the original changed: %+v", d)
	}
}

// TestPostKeepsTheTokenOutOfErrors: the path of an unsigned preset's delivery is its
// secret, so a failed post must not show it.
func TestPostKeepsTheTokenOutOfErrors(t *testing.T) {
	d := providers.Delivery{Path: "/url_token_s3cr3t", Header: http.Header{}, Body: []byte(`{}`)}
	_, err := sender.Post(context.Background(), &http.Client{Timeout: 5 * time.Second}, "http://127.0.0.1:9", "uploadpost", d)
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "/webhooks/uploadpost") {
		t.Fatalf("got %v", err)
	}
}

func TestNewSourceRefusesWhatCannotBeSent(t *testing.T) {
	if _, err := sender.NewSource("a", "zapier", "s"); err == nil {
		t.Error("unknown provider accepted")
	}
	if _, err := sender.NewSource("a", "standard-webhooks", "not base64 !"); err == nil || strings.Contains(err.Error(), "not base64 !") {
		t.Errorf("bad secret: %v", err)
	}
	if _, err := sender.NewSource("a", "meta", "app secret"); err == nil || !strings.Contains(err.Error(), "verify_token") {
		t.Errorf("meta without its verify token: %v", err)
	}
	if _, err := sender.NewConfiguredSource("a", "post-bridge", "pb_live_key", providers.Settings{}); err == nil || !strings.Contains(err.Error(), "polls it") {
		t.Errorf("a polled preset: %v", err)
	}
	if _, err := sender.NewConfiguredSource("a", "meta", "app secret", providers.Settings{VerifyToken: "t"}); err != nil {
		t.Errorf("meta with its verify token: %v", err)
	}
	s, err := sender.NewSource("a", "codivupload", "secret")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sample("comment.received", "evt_1", 0, time.Now()); err == nil {
		t.Error("codivupload sent a comment")
	}
}
