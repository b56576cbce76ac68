package consumers_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/socialbridge/bridge/consumers"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// TestServerHealthAndMetrics: /healthz answers 503 until the group's loop runs, 200 while
// it runs, 503 after; /metrics serves the registry; other paths are the caller's handler's,
// or not found without one.
func TestServerHealthAndMetrics(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	reg := consumers.NewRegistry()
	consumers.NewMetrics(reg, "g").Moved.WithLabelValues("t").Inc()
	srv, err := consumers.Serve("127.0.0.1:0", reg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	base := "http://" + srv.Addr()
	for _, c := range []struct {
		running bool
		status  int
		body    string
	}{{false, 503, `{"status":"stopped"}`}, {true, 200, `{"status":"ok"}`}, {false, 503, `{"status":"stopped"}`}} {
		srv.SetRunning(c.running)
		if status, body := get(t, base+"/healthz"); status != c.status || body != c.body {
			t.Errorf("running %v: /healthz %d %s, want %d %s", c.running, status, body, c.status, c.body)
		}
	}
	if status, body := get(t, base+"/metrics"); status != 200 || !strings.Contains(body, `bridge_consumer_moved_total{group="g",topic="t"} 1`) {
		t.Errorf("/metrics: %d %s", status, body)
	}
	if status, _ := get(t, base+"/dashboard"); status != 404 {
		t.Errorf("/dashboard without a handler: %d, want 404", status)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	other := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "dashboard") })
	srv2 := consumers.ServeListener(ln, reg, other, log)
	defer srv2.Shutdown(context.Background())
	if status, body := get(t, "http://"+srv2.Addr()+"/dashboard"); status != 200 || body != "dashboard" {
		t.Errorf("/dashboard with a handler: %d %q", status, body)
	}
	if status, _ := get(t, "http://"+srv2.Addr()+"/healthz"); status != 503 {
		t.Errorf("/healthz beside a handler: %d, want 503", status)
	}
}

// TestServeRefusesABadAddress: Serve reports an address it cannot listen on.
func TestServeRefusesABadAddress(t *testing.T) {
	if _, err := consumers.Serve("127.0.0.1:http-not-a-port", consumers.NewRegistry(), slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("Serve on a bad address: no error")
	}
}
