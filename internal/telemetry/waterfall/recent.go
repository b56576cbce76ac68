// Package waterfall keeps the last spans a process made in memory and draws them, trace by
// trace, as waterfalls: `bridge dev` shows the path of each delivery without a collector.
package waterfall

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Recent is a span exporter that keeps the last spans it is given, the oldest dropped
// first. It is safe for concurrent use.
type Recent struct {
	mu    sync.Mutex
	spans []Span // a ring of cap max
	next  int    // where the next span goes once the ring is full
	max   int
}

// New keeps the last max spans.
func New(max int) *Recent { return &Recent{max: max, spans: make([]Span, 0, max)} }

// Span is a kept span, as the page and its JSON show it.
type Span struct {
	TraceID  string            `json:"trace_id"`
	SpanID   string            `json:"span_id"`
	ParentID string            `json:"parent_id,omitempty"`
	Name     string            `json:"name"`
	Kind     string            `json:"kind"`
	Part     string            `json:"part"` // what made it: ingress, retries, alerts, analytics, kafka
	Start    time.Time         `json:"start"`
	End      time.Time         `json:"end"`
	Error    string            `json:"error,omitempty"` // the status's description, for an error
	Failed   bool              `json:"failed,omitempty"`
	Attrs    map[string]string `json:"attributes,omitempty"`
	Links    []string          `json:"links,omitempty"` // trace ids linked to
}

// ExportSpans keeps spans (sdktrace.SpanExporter).
func (r *Recent) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range spans {
		r.keep(spanOf(s))
	}
	return nil
}

func (r *Recent) keep(s Span) {
	if len(r.spans) < r.max {
		r.spans = append(r.spans, s)
		return
	}
	r.spans[r.next] = s
	r.next = (r.next + 1) % r.max
}

// Shutdown implements sdktrace.SpanExporter; what is kept stays.
func (r *Recent) Shutdown(context.Context) error { return nil }

func spanOf(s sdktrace.ReadOnlySpan) Span {
	out := Span{
		TraceID: s.SpanContext().TraceID().String(), SpanID: s.SpanContext().SpanID().String(),
		Name: s.Name(), Kind: s.SpanKind().String(), Part: part(s.InstrumentationScope().Name),
		Start: s.StartTime(), End: s.EndTime(), Attrs: make(map[string]string, len(s.Attributes())),
	}
	if p := s.Parent(); p.IsValid() {
		out.ParentID = p.SpanID().String()
	}
	if st := s.Status(); st.Code == codes.Error {
		out.Failed, out.Error = true, st.Description
	}
	for _, kv := range s.Attributes() {
		out.Attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if g := out.Attrs["messaging.kafka.consumer.group"]; g != "" && out.Part == "kafka" {
		out.Part += " · " + g // kotel's receive spans: which group received
	}
	for _, l := range s.Links() {
		out.Links = append(out.Links, l.SpanContext.TraceID().String())
	}
	return out
}

// part is the short name of an instrumentation scope: the last element of one of the
// bridge's packages, kafka for franz-go's hooks.
func part(scope string) string {
	if strings.Contains(scope, "franz-go") {
		return "kafka"
	}
	return scope[strings.LastIndexByte(scope, '/')+1:]
}

// Trace is the kept spans of one trace, in the order of the waterfall: each span after its
// parent, siblings by start.
type Trace struct {
	ID    string    `json:"trace_id"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Spans []Span    `json:"spans"`
}

// Traces are the kept spans by trace, the trace with the latest activity first, at most n.
func (r *Recent) Traces(n int) []Trace {
	r.mu.Lock()
	byTrace := map[string][]Span{}
	for _, s := range r.spans {
		byTrace[s.TraceID] = append(byTrace[s.TraceID], s)
	}
	r.mu.Unlock()
	out := make([]Trace, 0, len(byTrace))
	for id, spans := range byTrace {
		t := Trace{ID: id, Start: spans[0].Start, End: spans[0].End, Spans: ordered(spans)}
		for _, s := range spans {
			t.Start, t.End = minTime(t.Start, s.Start), maxTime(t.End, s.End)
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Trace) int { return cmp.Or(b.End.Compare(a.End), strings.Compare(a.ID, b.ID)) })
	return out[:min(n, len(out))]
}

// ordered is spans depth first: the roots (spans whose parent is not kept) by start, each
// followed by its children by start, and so on.
func ordered(spans []Span) []Span {
	kept := map[string]bool{}
	for _, s := range spans {
		kept[s.SpanID] = true
	}
	children := map[string][]Span{}
	for _, s := range spans {
		parent := s.ParentID
		if !kept[parent] {
			parent = ""
		}
		children[parent] = append(children[parent], s)
	}
	for _, c := range children {
		slices.SortFunc(c, func(a, b Span) int { return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.SpanID, b.SpanID)) })
	}
	out := make([]Span, 0, len(spans))
	var walk func(parent string)
	walk = func(parent string) {
		for _, s := range children[parent] {
			out = append(out, s)
			walk(s.SpanID)
		}
	}
	walk("")
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
