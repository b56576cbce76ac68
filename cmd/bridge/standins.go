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
	cmd := &cobra.Command{
		Use:   "standins [--listen ADDR]",
		Short: "Serve local stand-ins for the retry API and a Slack webhook, which log what they receive",
		Long: `Serve two stand-ins for what the reference consumers call in production, each
answering 200 and logging every request it receives:

  ` + retryAPIPath + `/…        the retry API (consumers.retries.action.url), any path and method
  ` + slackPath + `   a Slack incoming webhook (consumers.alerts.slack_webhook_url)

bridge dev runs them itself; the compose stack runs them as a service.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			s, err := startStandIns(listen, log)
			if err != nil {
				return err
			}
			log.Info("stand-ins listening", "retry_api", s.RetryAPIURL(), "slack", s.SlackURL())
			<-cmd.Context().Done()
			return s.Close()
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8090", "the address of the stand-ins")
	return cmd
}

// standIns serves the retry-API and Slack stand-ins on one listener.
type standIns struct {
	srv *http.Server
	ln  net.Listener
}

func startStandIns(addr string, log *slog.Logger) (*standIns, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("stand-ins: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(retryAPIPath+"/", retryAPIStandIn(log))
	mux.Handle(slackPath, slackStandIn(log))
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

// retryAPIStandIn answers every retry call 200, as an API that scheduled the retry would,
// and logs the call with its Idempotency-Key (the consumer's promise of a single effect).
func retryAPIStandIn(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, maxStandInBody))
		log.Info("retry API stand-in received", "method", r.Method, "path", r.URL.Path,
			"idempotency_key", r.Header.Get("Idempotency-Key"), "body", string(body))
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"retry scheduled"}`)
	})
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
		log.Info("Slack stand-in received", "text", msg.Text, "blocks", len(msg.Blocks))
		_, _ = io.WriteString(w, "ok")
	})
}
