package ingress_test

import (
	"log/slog"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/bridge/producer"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/internal/testkit"
	"github.com/socialbridge/bridge/schemas"
)

// benchIngress is an ingress driven by calling its handler in this goroutine: the request
// path's own cost, without a network. Its records are discarded unless change sets a
// producer.
type benchIngress struct {
	handler fasthttp.RequestHandler
	remote  net.Addr
}

func newBenchIngress(b *testing.B, change func(*ingress.Options)) *benchIngress {
	b.Helper()
	preset, _ := providers.Lookup("codivupload")
	key, err := preset.Key(secret)
	if err != nil {
		b.Fatal(err)
	}
	enc, err := schemas.NewSingleObject()
	if err != nil {
		b.Fatal(err)
	}
	o := ingress.Options{
		Sources:      []ingress.Source{{Name: "codivupload", Provider: "codivupload", Preset: preset, Keys: []*providers.Key{key}}},
		TopicPrefix:  "social.",
		MaxBodyBytes: 64 << 10, MaxHeaderBytes: 32 << 10,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second,
		DedupWait: time.Second, Encoder: enc, Producer: &producer.Discard{}, Dedup: dedup.New(time.Hour, 10_000_000, dedup.Options{}),
		Metrics: ingress.NewMetrics(), Log: slog.New(slog.DiscardHandler),
	}
	if change != nil {
		change(&o)
	}
	return &benchIngress{handler: ingress.New(o).App().Handler(), remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}}
}

// request is a signed delivery of a fresh post.published, as fasthttp parsed it.
func (s *benchIngress) request(b *testing.B, i int) *fasthttp.RequestCtx {
	body := delivery("evt_bench_" + strconv.Itoa(i))
	var req fasthttp.Request
	req.Header.SetMethod("POST")
	req.SetRequestURI("/webhooks/codivupload")
	for k, v := range testkit.CodivHeaders(secret, "post.published", []byte(body)) {
		req.Header.Set(k, v)
	}
	req.SetBodyString(body)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, s.remote, nil)
	return &ctx
}

// serve runs ctx through the ingress and checks it was accepted.
func (s *benchIngress) serve(b *testing.B, ctx *fasthttp.RequestCtx) {
	s.handler(ctx)
	if code := ctx.Response.StatusCode(); code != 200 {
		b.Fatalf("answered %d %s", code, ctx.Response.Body())
	}
}

// BenchmarkDelivery is the request path of one signed delivery, records discarded, as it
// runs without an OTLP endpoint; it reports the median time of a delivery besides the
// mean (ns/op, which counts building the request too). It compiles on a tree without
// tracing as well, to compare the two builds (docs/tracing.md has the commands).
//
//	go test -run '^$' -bench 'Delivery$' -benchtime 30000x -count 5 ./bridge/ingress/
func BenchmarkDelivery(b *testing.B) {
	s := newBenchIngress(b, nil)
	b.ReportAllocs()
	took := make([]time.Duration, 0, b.N)
	for i := 0; b.Loop(); i++ {
		ctx := s.request(b, i)
		start := time.Now()
		s.serve(b, ctx)
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2]), "p50-ns/delivery")
}
