package ingress_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/internal/testkit"
)

// A sender's traceparent, sampled.
const (
	senderTrace       = "4bf92f3577b34da6a3ce929d0e0e4736"
	senderSpan        = "00f067aa0ba902b7"
	senderTraceparent = "00-" + senderTrace + "-" + senderSpan + "-01"
)

// traceparents are the traceparent headers of the records r was handed.
func (r *recorder) traceparents() []string {
	var out []string
	for _, rec := range r.records() {
		for _, h := range rec.Headers {
			if h.Key == "traceparent" {
				out = append(out, string(h.Value))
			}
		}
	}
	return out
}

// traced serves an ingress that traces into a span recorder, with how it takes a sender's
// traceparent, and the changes change to its options; on false: tracing off.
func traced(t *testing.T, sender string, on bool, change ...func(*ingress.Options)) (*server, *recorder, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	p := &recorder{}
	s := serve(t, func(o *ingress.Options) {
		o.Producer = p
		o.Tracing.Sender = sender
		if on {
			o.Tracing.Provider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		}
		o.Sources = append(o.Sources, postizSource(t))
		for _, c := range change {
			c(o)
		}
	})
	return s, p, rec
}

// deliver posts a signed delivery of id with the headers extra, and returns the status.
func deliver(t *testing.T, s *server, id string, extra map[string]string) int {
	t.Helper()
	body := delivery(id)
	req, _ := http.NewRequest("POST", "http://"+s.addr+"/webhooks/codivupload", strings.NewReader(body))
	for k, v := range testkit.CodivHeaders(secret, "post.published", []byte(body)) {
		req.Header.Set(k, v)
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func spanNamed(t *testing.T, rec *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	for _, s := range rec.Ended() {
		if s.Name() == name {
			return s
		}
	}
	t.Fatalf("no span %q among %d", name, len(rec.Ended()))
	return nil
}

func attrOf(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// TestDeliverySpanLinksTheSender: by default a sender's traceparent is a link of the
// delivery's span, which starts a trace of its own; the record carries that trace, never
// the sender's; verification and dedup are its children; its attributes name the source,
// the event and the outcome.
func TestDeliverySpanLinksTheSender(t *testing.T) {
	s, p, rec := traced(t, "", true)
	if code := deliver(t, s, "evt_link", map[string]string{"traceparent": senderTraceparent}); code != 200 {
		t.Fatalf("answered %d", code)
	}
	root := spanNamed(t, rec, "POST /webhooks/{source}")
	if root.Parent().IsValid() || root.SpanContext().TraceID().String() == senderTrace {
		t.Fatalf("the delivery's span has the parent %v in trace %v: want a root of its own", root.Parent(), root.SpanContext().TraceID())
	}
	if l := root.Links(); len(l) != 1 || l[0].SpanContext.TraceID().String() != senderTrace || l[0].SpanContext.SpanID().String() != senderSpan {
		t.Fatalf("links %+v, want the sender's span", l)
	}
	if root.SpanKind() != trace.SpanKindServer {
		t.Errorf("kind %v", root.SpanKind())
	}
	for k, v := range map[string]string{"bridge.source": "codivupload", "bridge.event.id": "evt_link", "bridge.event.type": "post.published",
		"bridge.outcome": "accepted", "http.response.status_code": "200", "http.request.method": "POST", "url.path": "/webhooks/codivupload"} {
		if got := attrOf(root, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, step := range []string{"verify", "dedup"} {
		if sp := spanNamed(t, rec, step); sp.Parent().SpanID() != root.SpanContext().SpanID() {
			t.Errorf("%s is not a child of the delivery's span", step)
		}
	}
	tps := p.traceparents()
	if len(tps) != 1 || !strings.HasPrefix(tps[0], "00-"+root.SpanContext().TraceID().String()+"-") {
		t.Fatalf("the record's traceparent %q is not of the delivery's trace %s", tps, root.SpanContext().TraceID())
	}
}

// TestDeliverySpanChildOfTrustedSender: with sender parent, the delivery's span is a child
// of the sender's, in its trace, and so is the record.
func TestDeliverySpanChildOfTrustedSender(t *testing.T) {
	s, p, rec := traced(t, ingress.SenderParent, true)
	deliver(t, s, "evt_parent", map[string]string{"traceparent": senderTraceparent})
	root := spanNamed(t, rec, "POST /webhooks/{source}")
	if root.Parent().SpanID().String() != senderSpan || root.SpanContext().TraceID().String() != senderTrace || len(root.Links()) != 0 {
		t.Fatalf("parent %v, trace %v, links %v: want a child of the sender's span", root.Parent(), root.SpanContext().TraceID(), root.Links())
	}
	if tps := p.traceparents(); len(tps) != 1 || !strings.HasPrefix(tps[0], "00-"+senderTrace+"-") || tps[0] == senderTraceparent {
		t.Fatalf("the record's traceparent %q: want the delivery's span in the sender's trace", tps)
	}
}

// TestSenderTraceparentIgnored: with sender ignore, the header neither links nor parents.
func TestSenderTraceparentIgnored(t *testing.T) {
	s, _, rec := traced(t, ingress.SenderIgnore, true)
	deliver(t, s, "evt_ignore", map[string]string{"traceparent": senderTraceparent})
	root := spanNamed(t, rec, "POST /webhooks/{source}")
	if root.Parent().IsValid() || len(root.Links()) != 0 || root.SpanContext().TraceID().String() == senderTrace {
		t.Fatalf("parent %v, links %v: the sender's traceparent was not ignored", root.Parent(), root.Links())
	}
}

// TestTracingOffKeepsAWellFormedSenderTraceparent: with tracing off the ingress makes no
// span, and a record carries the sender's traceparent as received when it is well-formed
// (as before tracing existed), none when it is malformed or ignored.
func TestTracingOffKeepsAWellFormedSenderTraceparent(t *testing.T) {
	for _, c := range []struct {
		sender, header, want string
	}{
		{"", senderTraceparent, senderTraceparent},
		{ingress.SenderParent, senderTraceparent, senderTraceparent},
		{ingress.SenderIgnore, senderTraceparent, ""},
		{"", "00-" + senderTrace + "-0000000000000000-01", ""}, // a zero span id is invalid
		{"", "not a traceparent", ""},
		{"", "", ""},
	} {
		s, p, rec := traced(t, c.sender, false)
		deliver(t, s, "evt_off", map[string]string{"traceparent": c.header})
		got := strings.Join(p.traceparents(), ",")
		if got != c.want {
			t.Errorf("sender %q, header %q: the record carries %q, want %q", c.sender, c.header, got, c.want)
		}
		if n := len(rec.Ended()); n != 0 {
			t.Errorf("tracing off made %d spans", n)
		}
	}
}

// TestRefusedDeliverySpan: a forged signature is answered 401 and its span says so; the
// sender's fault is no server error, but verification failed.
func TestRefusedDeliverySpan(t *testing.T) {
	s, _, rec := traced(t, "", true)
	if code := deliver(t, s, "evt_forged", map[string]string{"X-CodivUpload-Signature": strings.Repeat("00", 32)}); code != 401 {
		t.Fatalf("answered %d", code)
	}
	root := spanNamed(t, rec, "POST /webhooks/{source}")
	if attrOf(root, "http.response.status_code") != "401" || attrOf(root, "bridge.outcome") != "unauthorized" || root.Status().Code == codes.Error {
		t.Errorf("the delivery's span: %v, status %v", root.Attributes(), root.Status())
	}
	if v := spanNamed(t, rec, "verify"); v.Status().Code != codes.Error {
		t.Errorf("the verify span's status is %v, want an error", v.Status())
	}
}

// TestDeliverySpanHidesTheURLToken: a source authenticated by the token ending its URL
// never has that token in a span.
func TestDeliverySpanHidesTheURLToken(t *testing.T) {
	s, _, rec := traced(t, "", true)
	resp, err := http.Post("http://"+s.addr+"/webhooks/postiz/"+urlToken, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	root := spanNamed(t, rec, "POST /webhooks/{source}/{token}")
	if got := attrOf(root, "url.path"); got != "/webhooks/postiz/[redacted]" {
		t.Errorf("url.path %q", got)
	}
	for _, sp := range rec.Ended() {
		for _, kv := range append(sp.Attributes(), attribute.String("name", sp.Name())) {
			if strings.Contains(kv.Value.String(), urlToken) {
				t.Errorf("span %s shows the URL token in %s", sp.Name(), kv.Key)
			}
		}
	}
}

// TestDeliverySpanBodySize: the delivery's span has the request's declared body size, 0
// included, and none for a chunked body, whose size is not declared.
func TestDeliverySpanBodySize(t *testing.T) {
	body := delivery("evt_size")
	for _, c := range []struct {
		name, raw, want string
	}{
		{"a body of a length", request(body, false), strconv.Itoa(len(body))},
		{"an empty body", "POST /webhooks/codivupload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", "0"},
		{"a chunked body", request(body, true), ""},
	} {
		s, _, rec := traced(t, "", true)
		if a := ask(t, s.addr, c.raw); a.err != nil {
			t.Fatalf("%s: no answer: %v", c.name, a.err)
		}
		if got := attrOf(spanNamed(t, rec, "POST /webhooks/{source}"), "http.request.body.size"); got != c.want {
			t.Errorf("%s: http.request.body.size %q, want %q", c.name, got, c.want)
		}
	}
}

// TestServerErrorSpan: a delivery the bridge fails (500) ends its span as an error, with
// the status code as error.type.
func TestServerErrorSpan(t *testing.T) {
	enc := newFailingEncoder(t)
	enc.failFor("p1")
	s, _, rec := traced(t, "", true, func(o *ingress.Options) { o.Encoder = enc })
	if code := deliver(t, s, "evt_500", nil); code != 500 {
		t.Fatalf("answered %d, want 500", code)
	}
	root := spanNamed(t, rec, "POST /webhooks/{source}")
	if root.Status().Code != codes.Error || attrOf(root, "error.type") != "500" {
		t.Errorf("the span of a 500: status %v, error.type %q; want an error, 500", root.Status(), attrOf(root, "error.type"))
	}
}
