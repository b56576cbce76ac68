package retries

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/telemetry"
)

// result is the outcome of one call of the retry action.
type result struct {
	ok         bool
	permanent  bool          // the action refuses this post for good: no retry helps
	reason     string        // why it failed; never holds a header value or the URL's query
	retryAfter time.Duration // the action's Retry-After on a 429 or 503, else 0
}

// Action calls the configured retry action for one failed post.
type Action struct {
	cfg      config.Action
	headers  http.Header // the configured headers, canonical, copied into each request
	client   *http.Client
	tracer   trace.Tracer // nil: tracing is off
	template string       // the URL's path as configured, with its placeholders: url.template
}

// newAction returns the action with a client that keeps a connection open for each of the
// concurrent calls: net/http's default keeps two per host, and the other calls would each
// open (and close) one.
func newAction(cfg config.Action, concurrent int) *Action {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = concurrent
	t.MaxIdleConns = max(t.MaxIdleConns, concurrent)
	headers := make(http.Header, len(cfg.Headers)+1)
	for name, value := range cfg.Headers {
		headers.Set(name, value)
	}
	return &Action{cfg: cfg, headers: headers, client: &http.Client{Timeout: cfg.Timeout.D(), Transport: t},
		tracer: telemetry.Tracer(tracerScope), template: pathOf(cfg.URL)}
}

// pathOf is the path of a URL template, without its scheme, host and query.
func pathOf(template string) string {
	_, rest, ok := strings.Cut(template, "://")
	if !ok {
		return ""
	}
	_, path, _ := strings.Cut(rest, "/")
	path, _, _ = strings.Cut(path, "?")
	return "/" + path
}

// Call sends the request for ev with Idempotency-Key: ev.ID, so a call repeated after a
// crash or a retry is one retry at the provider. With tracing on, the call is a client span
// of the trace in ctx, and its traceparent header continues that trace.
func (a *Action) Call(ctx context.Context, ev *event.Event) result {
	target, err := fill(a.cfg.URL, ev)
	if err != nil {
		return result{permanent: true, reason: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, a.cfg.Method, target, http.NoBody)
	if err != nil {
		return result{permanent: true, reason: "action: bad request: " + err.Error()}
	}
	req.Header = a.headers.Clone()
	req.Header["Idempotency-Key"] = []string{ev.ID}
	span := telemetry.StartClient(a.tracer, req, a.template, attribute.String("bridge.effect", "retry action"))
	resp, err := a.client.Do(req)
	telemetry.EndClient(span, resp, err)
	if err != nil {
		return result{reason: "action: " + cause(err)}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	return answer(resp, time.Now())
}

// answer classifies the action's status: 2xx done; 400, 404, 410 and 422 permanent (the
// provider refuses this post); anything else, retried later.
func answer(resp *http.Response, now time.Time) result {
	code := resp.StatusCode
	r := result{reason: "action answered " + resp.Status}
	switch {
	case code >= 200 && code < 300:
		return result{ok: true}
	case code == http.StatusBadRequest, code == http.StatusNotFound, code == http.StatusGone, code == http.StatusUnprocessableEntity:
		r.permanent = true
	case code == http.StatusTooManyRequests, code == http.StatusServiceUnavailable:
		r.retryAfter = retryAfter(resp.Header.Get("Retry-After"), now)
	}
	return r
}

// retryAfter reads a Retry-After value: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// cause is an HTTP client error without the URL it names (it may hold a token).
func cause(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return err.Error()
}

// fill puts the event's fields, percent-encoded, in place of {post_id}, {event_id}, {platform}
// and {profile_name}. A placeholder whose field the event lacks is an error.
func fill(template string, ev *event.Event) (string, error) {
	out := template
	for _, name := range config.ActionPlaceholders {
		ph := "{" + name + "}"
		if !strings.Contains(out, ph) {
			continue
		}
		v := field(ev, name)
		if v == nil || *v == "" {
			return "", fmt.Errorf("the event has no %s to fill %s of the action URL", name, ph)
		}
		out = strings.ReplaceAll(out, ph, escape(*v))
	}
	return out, nil
}

// field is the event's field named by a placeholder.
func field(ev *event.Event, placeholder string) *string {
	switch placeholder {
	case "post_id":
		return ev.PostID
	case "event_id":
		return &ev.ID
	case "platform":
		return ev.Platform
	case "profile_name":
		return ev.ProfileName
	}
	return nil
}

// escape percent-encodes every byte but the unreserved ones of RFC 3986, so a value is one
// path segment or one query value wherever the placeholder stands.
func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
