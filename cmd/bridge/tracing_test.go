package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/telemetry/otlptest"
	"github.com/socialbridge/bridge/internal/testkit"
)

// The sender's own trace, which a delivery's trace is linked to, never part of.
const (
	senderTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	senderSpan  = "00f067aa0ba902b7"
)

// TestOneTraceFromWebhookToRetryAction runs `bridge serve` and `bridge consume retries` as
// processes of their own on the real broker, both exporting to an OTLP receiver, and sends
// a signed, retryable post.failed with a sender's traceparent. The retry action's call
// carries a traceparent whose trace is the one the record carries, and the receiver has
// that trace whole: the action call's client span, its processing in the retries group,
// the record's receive span there, the produce span in the bridge and, at its root, the
// delivery's server span, linked to the sender's span and not its child.
func TestOneTraceFromWebhookToRetryAction(t *testing.T) {
	recv := otlptest.New(t)
	run := startTraced(t, recv, "retries", "OTEL_BSP_SCHEDULE_DELAY=100")
	id := run.deliver(t, "post.failed", failedData)

	call := run.action.first(t)
	trace, parent, flags := splitTraceparent(t, call)
	if flags != "01" || trace == senderTrace {
		t.Fatalf("the action was called with traceparent %q: want a sampled one of the delivery's own trace", call)
	}
	if got, _, _ := splitTraceparent(t, run.recordTraceparent(t, "post.failed")); got != trace {
		t.Fatalf("the record's traceparent is of trace %s, the action call's of %s", got, trace)
	}

	want := []struct{ service, kind, name string }{
		{"bridge-retries", "client", "POST /v1/posts/{post_id}/retry-failed"},
		{"bridge-retries", "consumer", "process " + run.prefix + "post.failed"},
		{"bridge-retries", "consumer", run.prefix + "post.failed receive"},
		{"bridge", "producer", run.prefix + "post.failed publish"},
		{"bridge", "server", "POST /webhooks/{source}"},
	}
	var chain []otlptest.Span
	testkit.Eventually(t, 2*time.Minute, "the receiver has the trace from the action call to the delivery", func() bool {
		chain = ancestry(recv.Trace(trace), parent)
		return len(chain) == len(want)
	}, func() string { return describe(recv.Spans()) })
	for i, w := range want {
		if s := chain[i]; s.Service != w.service || s.Kind != w.kind || s.Name != w.name {
			t.Errorf("span %d from the action call: %s %s %q, want %s %s %q", i, s.Service, s.Kind, s.Name, w.service, w.kind, w.name)
		}
	}
	root := chain[len(chain)-1]
	if root.ParentID != "" {
		t.Errorf("the delivery's span has the parent %s: a sender's traceparent must be a link", root.ParentID)
	}
	if len(root.Links) != 1 || root.Links[0].TraceID != senderTrace || root.Links[0].SpanID != senderSpan {
		t.Errorf("the delivery's span links to %+v, want the sender's span %s/%s", root.Links, senderTrace, senderSpan)
	}
	for k, v := range map[string]string{"bridge.source": "codivupload", "bridge.event.id": id, "bridge.event.type": "post.failed",
		"bridge.outcome": "accepted", "http.response.status_code": "200", "http.route": "/webhooks/{source}"} {
		if root.Attrs[k] != v {
			t.Errorf("the delivery's span has %s=%q, want %q", k, root.Attrs[k], v)
		}
	}
	if got := chain[0].Attrs["http.response.status_code"]; got != "200" {
		t.Errorf("the action call's span has status code %q", got)
	}
	for _, step := range []string{"verify", "dedup"} {
		if !hasChild(recv.Trace(trace), root.SpanID, step) {
			t.Errorf("the delivery's span has no %s span", step)
		}
	}
}

// TestSamplingOffExportsNothing: with OTEL_TRACES_SAMPLER=always_off the same run exports
// no span from either process (stopped gracefully, so they flushed whatever they held),
// while the record and the action call still carry the delivery's trace context, unsampled.
func TestSamplingOffExportsNothing(t *testing.T) {
	recv := otlptest.New(t)
	run := startTraced(t, recv, "retries", "OTEL_TRACES_SAMPLER=always_off", "OTEL_BSP_SCHEDULE_DELAY=100")
	run.deliver(t, "post.failed", failedData)
	call := run.action.first(t)
	trace, _, flags := splitTraceparent(t, call)
	if flags != "00" {
		t.Errorf("the action was called with traceparent %q: want the unsampled flag", call)
	}
	if got, _, _ := splitTraceparent(t, run.recordTraceparent(t, "post.failed")); got != trace {
		t.Errorf("the record's traceparent is of trace %s, the action call's of %s", got, trace)
	}
	for _, c := range []*child{run.group, run.bridge} {
		if err := c.stop(); err != nil {
			t.Fatalf("a child did not stop cleanly: %v\n%s", err, c.stderr.String())
		}
	}
	if n, spans := recv.Requests(), recv.Spans(); n != 0 || len(spans) != 0 {
		t.Fatalf("sampling off exported %d requests, %d spans:\n%s", n, len(spans), describe(spans))
	}
}

// TestOneTraceFromWebhookToSlack: the same across `bridge serve` and `bridge consume
// alerts` for a token expiry. The Slack post carries a traceparent of the trace the record
// carries, and the receiver has it whole: the post's client span, back through the
// decision on the keyed notice and the forwarding of the record, to the delivery's span.
func TestOneTraceFromWebhookToSlack(t *testing.T) {
	recv := otlptest.New(t)
	run := startTraced(t, recv, "alerts", "OTEL_BSP_SCHEDULE_DELAY=100")
	run.deliver(t, "post.token_expired", expiredData)
	post := run.slack.first(t)
	trace, parent, flags := splitTraceparent(t, post)
	if flags != "01" || trace == senderTrace {
		t.Fatalf("Slack got traceparent %q: want a sampled one of the delivery's own trace", post)
	}
	if got, _, _ := splitTraceparent(t, run.recordTraceparent(t, "post.token_expired")); got != trace {
		t.Fatalf("the record's traceparent is of trace %s, the Slack post's of %s", got, trace)
	}
	keyed := run.prefix + "alerts.keyed"
	want := []struct{ service, kind, name string }{
		{"bridge-alerts", "client", "POST"},
		{"bridge-alerts", "consumer", "process " + keyed},
		{"bridge-alerts", "consumer", keyed + " receive"},
		{"bridge-alerts", "producer", keyed + " publish"},
		{"bridge-alerts", "consumer", "process " + run.prefix + "post.token_expired"},
		{"bridge-alerts", "consumer", run.prefix + "post.token_expired receive"},
		{"bridge", "producer", run.prefix + "post.token_expired publish"},
		{"bridge", "server", "POST /webhooks/{source}"},
	}
	var chain []otlptest.Span
	testkit.Eventually(t, 2*time.Minute, "the receiver has the trace from the Slack post to the delivery", func() bool {
		chain = ancestry(recv.Trace(trace), parent)
		return len(chain) == len(want)
	}, func() string { return describe(recv.Spans()) })
	for i, w := range want {
		if s := chain[i]; s.Service != w.service || s.Kind != w.kind || s.Name != w.name {
			t.Errorf("span %d from the Slack post: %s %s %q, want %s %s %q", i, s.Service, s.Kind, s.Name, w.service, w.kind, w.name)
		}
	}
	if got := chain[0].Attrs["bridge.effect"]; got != "slack" {
		t.Errorf("the Slack post's span has bridge.effect %q", got)
	}
	if got := chain[1].Attrs["bridge.outcome"]; got != "alerted" {
		t.Errorf("the decision's span has bridge.outcome %q", got)
	}
	for _, s := range recv.Spans() {
		for k, v := range s.Attrs {
			if strings.Contains(v, slackSecretPath) {
				t.Errorf("span %q shows the Slack webhook's path (its credential) in %s", s.Name, k)
			}
		}
	}
}

// The data of the deliveries, and the Slack webhook's path (its credential).
const (
	failedData      = `{"post_id":"post_q2w8e4r6","profile_name":"main","platform":"tiktok","error_code":"rate_limited","retryable":true}`
	expiredData     = `{"post_id":"post_z5x7c9v1","profile_name":"brand_eu","platform":"linkedin","reconnect_url":"https://app.codivupload.com/profiles/brand_eu/reconnect/linkedin"}`
	slackSecretPath = "/services/T0000/B0000/s3cr3tpathtoken"
)

// tracedRun is a bridge and a consumer group, as processes, and the retry API and Slack
// they call.
type tracedRun struct {
	base, prefix  string // base: the bridge's URL
	brokers       []string
	bridge, group *child
	action, slack *recorder
}

// startTraced starts `bridge serve` and `bridge consume group` on one configuration,
// exporting to recv, with env added, and waits until the bridge is ready.
func startTraced(t *testing.T, recv *otlptest.Receiver, group string, env ...string) *tracedRun {
	t.Helper()
	r := &tracedRun{prefix: kafkatest.Prefix(t), brokers: kafkatest.Brokers(t),
		action: newRecorder(t), slack: newRecorder(t)}
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	cfg := fmt.Sprintf(`
http: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", drain_period: 0s}
kafka: {brokers: [%q], topic_prefix: %q, partitions: 1}
sources:
  - {name: codivupload, provider: codivupload, secrets: [%q]}
consumers:
  retries:
    group: %q
    listen: "127.0.0.1:0"
    action: {url: %q}
  alerts:
    group: %q
    listen: "127.0.0.1:0"
    slack_webhook_url: %q
`, strings.Join(r.brokers, ","), r.prefix, devSecret, r.prefix+"retries",
		r.action.URL+"/v1/posts/{post_id}/retry-failed", r.prefix+"alerts", r.slack.URL+slackSecretPath)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env = append(env, "OTEL_EXPORTER_OTLP_ENDPOINT="+recv.URL())
	r.bridge = startChild(t, env, "serve", "--config", path)
	r.group = startChild(t, env, "consume", group, "--config", path)
	r.base = listeningOn(t, r.bridge.stderr)
	waitReadyz(t, r.base)
	return r
}

// deliver sends a signed delivery of an event of type with data and the sender's
// traceparent, and returns its event id once the bridge accepted it.
func (r *tracedRun) deliver(t *testing.T, typ, data string) string {
	t.Helper()
	id := "evt_trace_" + randomHex(4)
	body := fmt.Sprintf(`{"event":%q,"id":%q,"timestamp":%q,"data":%s}`, typ, id, time.Now().UTC().Format(time.RFC3339), data)
	h := http.Header{"Traceparent": {"00-" + senderTrace + "-" + senderSpan + "-01"}}
	for k, v := range testkit.CodivHeaders(devSecret, typ, []byte(body)) {
		h.Set(k, v)
	}
	if code, answer := post(t, r.base+"/webhooks/codivupload", h, body); code != 200 || !strings.Contains(answer, `"accepted"`) {
		t.Fatalf("the delivery was answered %d %s", code, answer)
	}
	return id
}

// recordTraceparent is the traceparent header of the one record of the event type's topic.
func (r *tracedRun) recordTraceparent(t *testing.T, typ string) string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.ConsumeTopics(r.prefix+typ),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fs := cl.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	for _, h := range fs.Records()[0].Headers {
		if h.Key == "traceparent" {
			return string(h.Value)
		}
	}
	t.Fatal("the record has no traceparent")
	return ""
}

// recorder is the retry API, or Slack: it answers 200 and keeps each call's traceparent.
type recorder struct {
	*httptest.Server
	mu    sync.Mutex
	calls []string
}

func newRecorder(t *testing.T) *recorder {
	a := &recorder{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.calls = append(a.calls, r.Header.Get("Traceparent"))
		a.mu.Unlock()
	}))
	t.Cleanup(a.Close)
	return a
}

// first waits for the first call and returns its traceparent.
func (a *recorder) first(t *testing.T) string {
	t.Helper()
	var tp string
	testkit.Eventually(t, 2*time.Minute, "the call comes", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		if len(a.calls) > 0 {
			tp = a.calls[0]
		}
		return len(a.calls) > 0
	}, func() string { return "no call" })
	return tp
}

// splitTraceparent is a traceparent's trace id, parent id and flags.
func splitTraceparent(t *testing.T, tp string) (trace, parent, flags string) {
	t.Helper()
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 {
		t.Fatalf("traceparent %q is not a W3C one", tp)
	}
	return parts[1], parts[2], parts[3]
}

// ancestry is the span id and its ancestors in spans, as far as they go.
func ancestry(spans []otlptest.Span, id string) []otlptest.Span {
	byID := map[string]otlptest.Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
	}
	var out []otlptest.Span
	for s, ok := byID[id]; ok && len(out) <= len(spans); s, ok = byID[s.ParentID] {
		out = append(out, s)
	}
	return out
}

func hasChild(spans []otlptest.Span, parent, name string) bool {
	for _, s := range spans {
		if s.ParentID == parent && s.Name == name {
			return true
		}
	}
	return false
}

func describe(spans []otlptest.Span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "%s %s/%s parent %s: %s %s %q\n", s.Service, s.TraceID, s.SpanID, s.ParentID, s.Kind, s.Name, s.Attrs)
	}
	return b.String()
}
