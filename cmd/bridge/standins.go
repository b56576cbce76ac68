package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// Paths of the stand-ins, under the address they listen on.
const (
	retryAPIPath = "/retry-api" // + the path of the retry action, e.g. /v1/posts/{post_id}/retry-failed
	slackPath    = "/slack/webhook"
)

// maxStandInBody bounds what a stand-in reads of a request: the consumers send small JSON.
const maxStandInBody = 1 << 20

func standinsCommand() *cobra.Command {
	var listen string
	var failFirst bool
	cmd := &cobra.Command{
		Use:   "standins [--listen ADDR]",
		Short: "Serve local stand-ins for the retry API and a Slack webhook, which log what they receive",
		Long: `Serve two stand-ins for what the reference consumers call in production, each
answering 200 and logging every request it receives:

  ` + retryAPIPath + `/…        the retry API (consumers.retries.action.url), any path and method
  ` + slackPath + `   a Slack incoming webhook (consumers.alerts.slack_webhook_url)
  /healthz         200 while they serve

With --fail-first, the retry API answers 503 to the first call of each Idempotency-Key, so
the retries consumer's delay topics and its repeated key can be watched. bridge dev runs
them itself, with --fail-first; the compose stack runs them as a service.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			s, err := startStandIns(listen, failFirst, log)
			if err != nil {
				return err
			}
			log.Info("stand-ins listening", "retry_api", s.RetryAPIURL(), "slack", s.SlackURL())
			<-cmd.Context().Done()
			return s.Close()
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8090", "the address of the stand-ins")
	cmd.Flags().BoolVar(&failFirst, "fail-first", false, "answer 503 to the first retry call of each Idempotency-Key")
	return cmd
}

// standIns serves the retry-API and Slack stand-ins on one listener.
type standIns struct {
	srv *http.Server
	ln  net.Listener
}

// startStandIns serves the stand-ins on addr until Close; failFirst makes the retry API
// answer 503 to the first call of each Idempotency-Key.
func startStandIns(addr string, failFirst bool, log *slog.Logger) (*standIns, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("stand-ins: %w", err)
	}
	mux := http.NewServeMux()
	var seen *keySet
	if failFirst {
		seen = &keySet{}
	}
	mux.Handle(retryAPIPath+"/", retryAPIStandIn(seen, log))
	mux.Handle(slackPath, slackStandIn(log))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	s := &standIns{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("stand-ins stopped", "err", err)
		}
	}()
	return s, nil
}

// RetryAPIURL is the base of the retry API stand-in: append the action's path.
func (s *standIns) RetryAPIURL() string { return "http://" + s.ln.Addr().String() + retryAPIPath }

// SlackURL is the Slack incoming-webhook stand-in.
func (s *standIns) SlackURL() string { return "http://" + s.ln.Addr().String() + slackPath }

func (s *standIns) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// retryAPIStandIn answers a retry call 200, as an API that scheduled the retry would, and
// logs the call with its Idempotency-Key (the consumer's promise of a single effect). When
// seen is not nil, the first call of each key is answered 503 instead, as a busy API would.
func retryAPIStandIn(seen *keySet, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, maxStandInBody))
		key := r.Header.Get("Idempotency-Key")
		attrs := []any{"method", r.Method, "path", strings.TrimPrefix(r.URL.Path, retryAPIPath), "idempotency_key", key}
		if len(body) > 0 {
			attrs = append(attrs, "body", string(body))
		}
		if seen != nil && key != "" && seen.add(key) {
			log.Info("retry API stand-in received a call, answered 503 (the first call of this key)", attrs...)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"status":"busy, try again later"}`)
			return
		}
		log.Info("retry API stand-in received a call, answered 200", attrs...)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"retry scheduled"}`)
	})
}

// maxKeys bounds the keys a fail-first stand-in remembers; past it, it forgets them all
// (and fails their next call once more), which a stand-in can afford.
const maxKeys = 100_000

// keySet is the Idempotency-Keys the retry API stand-in has seen.
type keySet struct {
	mu   sync.Mutex
	keys map[string]bool
}

// add records key and reports whether it is new.
func (s *keySet) add(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil || len(s.keys) >= maxKeys {
		s.keys = map[string]bool{}
	}
	if s.keys[key] {
		return false
	}
	s.keys[key] = true
	return true
}

// slackStandIn answers like a Slack incoming webhook ("ok", or 400 for a message without
// text) and logs the message's text and how many blocks it has.
func slackStandIn(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "invalid_method", http.StatusMethodNotAllowed)
			return
		}
		var msg struct {
			Text   string            `json:"text"`
			Blocks []json.RawMessage `json:"blocks"`
		}
		err := json.NewDecoder(io.LimitReader(r.Body, maxStandInBody)).Decode(&msg)
		if err != nil || msg.Text == "" {
			log.Warn("Slack stand-in refused a message", "err", err)
			http.Error(w, "no_text", http.StatusBadRequest)
			return
		}
		log.Info("Slack stand-in received a message, answered ok", "text", msg.Text, "blocks", len(msg.Blocks))
		_, _ = io.WriteString(w, "ok")
	})
}
