package consumers

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server serves a group's GET /metrics (Prometheus) and GET /healthz: 200 while the group's
// loop runs, 503 before it starts and after it stops.
type Server struct {
	srv     *http.Server
	ln      net.Listener
	running atomic.Bool
}

// Serve listens on addr and serves reg's metrics and the health of the group in the
// background, until Shutdown.
func Serve(addr string, reg *prometheus.Registry, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return ServeListener(ln, reg, nil, log), nil
}

// ServeListener is Serve on a listener the caller opened (Shutdown closes it). other, when
// not nil, answers every request but GET /metrics and GET /healthz: a group's own pages
// (the analytics dashboard) beside them.
func ServeListener(ln net.Listener, reg *prometheus.Registry, other http.Handler, log *slog.Logger) *Server {
	s := &Server{ln: ln}
	mux := http.NewServeMux()
	if other != nil {
		mux.Handle("/", other)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", s.health)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("group listening", "addr", "http://"+ln.Addr().String())
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return s
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// SetRunning tells /healthz whether the group's loop runs.
func (s *Server) SetRunning(ok bool) { s.running.Store(ok) }

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if !s.running.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"stopped"}`))
		return
	}
	_, _ = w.Write([]byte(`{"status":"ok"}`))
}

// Shutdown stops serving within ctx.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }
