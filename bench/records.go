package main

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"

	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

// sourceName is the benchmarked source; its provider preset has the same name.
const sourceName = "codivupload"

// requestPath is the part of the ingress's request path that needs no HTTP server or Kafka:
// verify, normalize, set the envelope, encode. The micro-benchmarks time it step by step
// and the direct-producer baseline uses it to build exactly the records the bridge builds.
type requestPath struct {
	preset providers.Signed
	keys   []*providers.Key
	enc    schemas.Encoder
}

func newRequestPath(secret []byte) (*requestPath, error) {
	p, _ := providers.Lookup(sourceName)
	preset := p.(providers.Signed) // codivupload signs its deliveries
	key, err := preset.Key(string(secret))
	if err != nil {
		return nil, err
	}
	enc, err := schemas.NewSingleObject()
	if err != nil {
		return nil, err
	}
	return &requestPath{preset: preset, keys: []*providers.Key{key}, enc: enc}, nil
}

// requestHeader returns the headers the load generator sends with d, in the type the
// ingress reads them from.
func requestHeader(d *delivery) *fasthttp.RequestHeader {
	h := &fasthttp.RequestHeader{}
	h.SetMethod(fasthttp.MethodPost)
	h.SetContentType("application/json")
	h.Set("X-CodivUpload-Event", d.typ)
	h.Set("X-CodivUpload-Signature", d.signature)
	return h
}

// event verifies and normalizes body into ev and sets its envelope, as the ingress does.
func (p *requestPath) event(h providers.Headers, body []byte, now time.Time, ev *event.Event) error {
	if err := p.preset.Verify(h, body, p.keys, now); err != nil {
		return err
	}
	if err := p.preset.Normalize(h, body, ev); err != nil {
		return err
	}
	ev.Source, ev.Provider, ev.ReceivedAt, ev.Raw = sourceName, sourceName, now, body
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = now
	}
	return nil
}

// encode encodes ev into a fresh buffer sized as the ingress sizes it.
func (p *requestPath) encode(ev *event.Event) ([]byte, error) {
	return p.enc.Encode(make([]byte, 0, len(ev.Raw)+512), ev)
}

// record builds the Kafka record the bridge would produce for d: same topic layout, key,
// value and headers.
func (p *requestPath) record(d *delivery, prefix string, now time.Time) (*kgo.Record, error) {
	var ev event.Event
	if err := p.event(requestHeader(d), d.body, now, &ev); err != nil {
		return nil, err
	}
	value, err := p.encode(&ev)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{
		Topic: event.Topic(prefix, ev.Type),
		Key:   []byte(ev.ID),
		Value: value,
		Headers: []kgo.RecordHeader{
			{Key: "event-type", Value: []byte(ev.Type)},
			{Key: "source", Value: []byte(sourceName)},
			{Key: "provider", Value: []byte(sourceName)},
			{Key: "received-at", Value: now.UTC().AppendFormat(nil, time.RFC3339Nano)},
		},
	}, nil
}
