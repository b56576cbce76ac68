package consumers

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/testkit"
)

// TestServeBoundsHeaders: the metrics server gives a client 10 s to send its request's
// headers, so that clients trickling them in cannot hold its connections open for ever.
func TestServeBoundsHeaders(t *testing.T) {
	s, err := Serve("127.0.0.1:0", NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	if got := s.srv.ReadHeaderTimeout; got != 10*time.Second {
		t.Errorf("ReadHeaderTimeout %s, want 10s", got)
	}
}

// TestServeLogsAFailedServer: a metrics server that stops serving other than by Shutdown
// (here its listener is closed under it) says so in an error log.
func TestServeLogsAFailedServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs testkit.LogBuffer
	s := ServeListener(ln, NewRegistry(), nil, slog.New(slog.NewTextHandler(&logs, nil)))
	defer s.Shutdown(context.Background())
	_ = ln.Close()
	testkit.Eventually(t, 30*time.Second, "the failed server logged", func() bool {
		return strings.Contains(logs.String(), `level=ERROR msg="metrics server stopped"`)
	}, logs.String)
}
