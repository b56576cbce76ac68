package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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

func TestVersionPrefersTheStampedOne(t *testing.T) {
	defer func(v string) { buildVersion = v }(buildVersion)
	buildVersion = "v1.2.3-4-gabcdef0"
	var out strings.Builder
	if err := run(context.Background(), []string{"version"}, &out, io.Discard); err != nil || out.String() != "v1.2.3-4-gabcdef0\n" {
		t.Fatalf("version printed %q, %v", out.String(), err)
	}
}
