package alerts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/socialbridge/bridge/internal/telemetry"
)

// poster posts messages to Slack. The model test plays Slack through it.
type poster interface {
	// Post sends one message. It waits for its turn until ctx ends; once sent, the request
	// runs to its answer (or its own timeout) whatever ctx does, so that its outcome is
	// known. nil: Slack accepted it. An error wrapping errRefused: Slack will never accept
	// it as it is. An error wrapping errNoAnswer: Slack may have taken it. Any other
	// error may pass; a backoff.RetryAfterError says how long to wait.
	Post(ctx context.Context, msg []byte) error
}

// errNoAnswer is a POST whose answer never came (a timeout, a cut connection): Slack may
// have taken the message.
var errNoAnswer = errors.New("no answer from slack")

// errRefused is Slack's answer to a message it will never accept: a 4xx other than 429
// (invalid_blocks, invalid_payload, no_service, channel_is_archived, …).
var errRefused = errors.New("slack refused the message")

// Slack posts messages to one incoming webhook, which takes about one message a second:
// every message waits for the webhook's rate limit, and none goes out while Slack asked to
// wait (a 429's Retry-After), whichever key it is for.
type Slack struct {
	url    string // its path is its credential: never logged, nor traced
	client *http.Client
	tracer trace.Tracer // nil: tracing is off
	limit  *rate.Limiter
	mu     sync.Mutex
	quiet  time.Time // no POST before this (Retry-After)
}

// maxRetryAfter caps a 429's Retry-After: a longer one (a proxy's mistake) would silence
// every alert for as long.
const maxRetryAfter = 5 * time.Minute

func newSlack(webhookURL string, timeout time.Duration, perSecond float64) *Slack {
	return &Slack{url: webhookURL, client: &http.Client{Timeout: timeout}, limit: rate.NewLimiter(rate.Limit(perSecond), 1),
		tracer: telemetry.Tracer(tracerScope)}
}

// Post implements poster. With tracing on, the POST is a client span of the trace in ctx,
// and its traceparent header continues that trace.
func (s *Slack) Post(ctx context.Context, msg []byte) error {
	if err := s.turn(ctx); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, s.url, bytes.NewReader(msg))
	if err != nil {
		return backoff.Permanent(errors.New("slack: bad webhook URL"))
	}
	req.Header.Set("Content-Type", "application/json")
	span := telemetry.StartClient(s.tracer, req, "", attribute.String("bridge.effect", "slack"))
	resp, err := s.client.Do(req)
	telemetry.EndClient(span, resp, err)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL
		}
		return fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	answer := fmt.Sprintf("slack answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		return nil
	case code == http.StatusTooManyRequests:
		wait := retryAfter(resp.Header.Get("Retry-After"))
		s.hush(wait)
		return fmt.Errorf("%s: %w", answer, &backoff.RetryAfterError{Duration: wait})
	case code >= 400 && code < 500:
		return fmt.Errorf("%w: %s", errRefused, answer)
	}
	return errors.New(answer)
}

// turn waits until Slack's Retry-After has passed and the rate limit lets a message go;
// a Retry-After that comes while it waits for the rate limit holds it back too.
func (s *Slack) turn(ctx context.Context) error {
	for {
		if err := sleepUntil(ctx, s.quietUntil()); err != nil {
			return err
		}
		if err := s.limit.Wait(ctx); err != nil {
			return err
		}
		if !time.Now().Before(s.quietUntil()) {
			return nil
		}
	}
}

func (s *Slack) quietUntil() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.quiet
}

// hush holds every message back for d.
func (s *Slack) hush(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if until := time.Now().Add(d); until.After(s.quiet) {
		s.quiet = until
	}
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// retryAfter reads a Retry-After header in seconds, as Slack sends it: a second when it
// is missing or unreadable, at most maxRetryAfter.
func retryAfter(h string) time.Duration {
	s, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || s < 1 {
		return time.Second
	}
	return min(time.Duration(s)*time.Second, maxRetryAfter)
}

// message is one Slack message, which is posted with blocks, or as text only when Slack
// refuses the blocks (a link it will not take in a button).
type message struct {
	text    string // the notification line, mrkdwn
	details string // mrkdwn
	button  string // the reconnect link's URL, when it is one Slack may take; else empty
	label   string // the button's text, plain
	note    string // the event id and, for a repeat, why; mrkdwn
}

// alertMessage is the Slack message of an alert, with the reconnect link as a button when
// the event has one.
func alertMessage(a *Alert, repeat bool) message {
	who := fmt.Sprintf("%s on %s (source %s)", mrkdwn(a.Profile), mrkdwn(a.Platform), mrkdwn(a.Source))
	m := message{
		text: fmt.Sprintf(":warning: Token expired: %s must be reconnected before it can post again.", who),
		details: fmt.Sprintf("*Token expired*: %s must be reconnected before it can post again.\nPost `%s` could not be published (%s).",
			who, mrkdwn(a.PostID), a.OccurredAt.UTC().Format(time.RFC1123)),
	}
	if a.ReconnectURL != "" {
		if linkable(a.ReconnectURL) {
			m.button, m.label = a.ReconnectURL, "Reconnect "+a.Platform
		} else {
			m.details += "\nReconnect at: " + mrkdwn(a.ReconnectURL)
		}
	}
	return m.noted(a.ID, repeat)
}

// resolutionMessage is the Slack message that ends an alert.
func resolutionMessage(a *Alert, repeat bool) message {
	who := fmt.Sprintf("%s on %s (source %s)", mrkdwn(a.Profile), mrkdwn(a.Platform), mrkdwn(a.Source))
	m := message{
		text:    fmt.Sprintf(":white_check_mark: Resolved: %s is posting again.", who),
		details: fmt.Sprintf("*Resolved*: %s is posting again: post `%s` was published.", who, mrkdwn(a.Resolution.PostID)),
	}
	if u := a.Resolution.PostURL; u != "" {
		m.details += " " + link(u, "See it")
	}
	return m.noted(a.Resolution.ID, repeat)
}

// noted adds the event id, and the repeat marker when the message may be a repeat.
func (m message) noted(id string, repeat bool) message {
	m.note = "event " + mrkdwn(id)
	if repeat {
		m.text += " (sent again: the bridge stopped while sending it, so it may be a repeat)"
		m.note += " · sent again after a restart, the first attempt's outcome is unknown"
	}
	return m
}

// withBlocks is m as Slack's JSON: text for notifications, and blocks.
func (m message) withBlocks() []byte {
	blocks := []any{section(m.details)}
	if m.button != "" {
		blocks = append(blocks, map[string]any{"type": "actions", "elements": []any{map[string]any{
			"type": "button", "style": "primary", "url": m.button,
			"text": map[string]any{"type": "plain_text", "text": m.label},
		}}})
	}
	blocks = append(blocks, map[string]any{"type": "context", "elements": []any{map[string]any{"type": "mrkdwn", "text": m.note}}})
	return mustJSON(map[string]any{"text": m.text, "blocks": blocks})
}

// textOnly is m as Slack's JSON without blocks: everything in its text, the reconnect link
// as text.
func (m message) textOnly() []byte {
	text := m.text + "\n" + m.details
	if m.button != "" {
		text += "\nReconnect at: " + mrkdwn(m.button)
	}
	return mustJSON(map[string]any{"text": text + "\n" + m.note})
}

func section(text string) map[string]any {
	return map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": text}}
}

// mrkdwn escapes text for Slack's mrkdwn: &, < and > are its control characters, and
// Slack's rule is to write them as &amp;, &lt; and &gt; (and nothing else).
func mrkdwn(s string) string { return mrkdwnEscaper.Replace(s) }

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// maxLinkLen is the longest URL Slack takes in a button.
const maxLinkLen = 3000

// linkable reports whether u can be a link: an absolute http(s) URL, short enough, with no
// space or control character (Slack refuses a button with one).
func linkable(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != "" && len(u) <= maxLinkLen &&
		!strings.ContainsFunc(u, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// link is a mrkdwn link to u with the text label, or u as escaped text when it cannot be a
// link. In <url|label>, a | ends the URL and a > the link: both, and <, are
// percent-encoded in the URL (which means the same to the browser), and & written as
// Slack's escaping requires.
func link(u, label string) string {
	if !linkable(u) {
		return mrkdwn(u)
	}
	return "<" + linkEscaper.Replace(u) + "|" + mrkdwn(label) + ">"
}

var linkEscaper = strings.NewReplacer("&", "&amp;", "|", "%7C", "<", "%3C", ">", "%3E")
