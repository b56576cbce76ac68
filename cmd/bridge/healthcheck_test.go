package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	for url, want := range map[string]string{
		srv.URL + "/healthz":           "",
		srv.URL + "/down":              "503 Service Unavailable",
		"http://127.0.0.1:9/healthz":   "connection refused",
		"not a url at all\x7f/healthz": "healthcheck:",
	} {
		err := run(context.Background(), []string{"healthcheck", "--url", url}, io.Discard, io.Discard)
		if (want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", url, err, want)
		}
	}
}

// TestHealthcheckTimeout: a server that never answers fails the probe after its 3 s bound
// (docs/commands.md), with a reason that says so, instead of hanging the container
// runtime's health check.
func TestHealthcheckTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // until the probe gives up
	}))
	defer srv.Close()
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"healthcheck", "--url", srv.URL + "/healthz"}, io.Discard, io.Discard)
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "did not answer within 3s") {
			t.Fatalf("a server that never answers: %v; want no answer within 3s", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("healthcheck still waiting a minute after it began")
	}
}

func TestVersionPrefersTheStampedOne(t *testing.T) {
	defer func(v string) { buildVersion = v }(buildVersion)
	buildVersion = "v1.2.3-4-gabcdef0"
	var out strings.Builder
	if err := run(context.Background(), []string{"version"}, &out, io.Discard); err != nil || out.String() != "v1.2.3-4-gabcdef0\n" {
		t.Fatalf("version printed %q, %v", out.String(), err)
	}
}
