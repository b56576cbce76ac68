package ingress_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/bridge/producer"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/bridge/spool"
	"github.com/socialbridge/bridge/internal/testkit"
	"github.com/socialbridge/bridge/schemas"
)

// BenchmarkSpoolIdle is the request path's cost of a source that spools while its spool is
// idle (empty, Kafka up), against the same source without a spool: a signed CodivUpload
// delivery handed to the ingress's handler without a network (verify, normalize, dedup, encode,
// produce into the no-op producer, answer). A second server without a spool is the control: its
// ratio to the first is what the method cannot tell from 1. The three alternate in chunks of 64
// requests, in rotating order, so that the machine's load falls on all alike; each one's time
// per request is its median chunk's (a chunk the scheduler preempted counts no more than any
// other). It reports those, the allocations per request, and the ratios idle/none and
// control/none (bench/spool writes them to RESULTS.md).
func BenchmarkSpoolIdle(b *testing.B) {
	reqs := deliveries(b, 4096)
	handlers := []fasthttp.RequestHandler{benchServer(b, false), benchServer(b, true), benchServer(b, false)}
	var ctx fasthttp.RequestCtx
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	i := 0
	serve := func(h fasthttp.RequestHandler) {
		ctx.Init(reqs[i%len(reqs)], addr, nil)
		h(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
		i++
	}
	times := make([][]time.Duration, len(handlers))
	turn := 0
	for b.Loop() {
		for k := range handlers {
			h := (k + turn) % len(handlers)
			start := time.Now()
			for range 64 {
				serve(handlers[h])
			}
			times[h] = append(times[h], time.Since(start))
		}
		turn++
	}
	none, idle, control := medianOf(times[0]), medianOf(times[1]), medianOf(times[2])
	b.ReportMetric(float64(none.Nanoseconds())/64, "none-ns/req")
	b.ReportMetric(float64(idle.Nanoseconds())/64, "idle-ns/req")
	b.ReportMetric(float64(idle)/float64(none), "idle/none")
	b.ReportMetric(float64(control)/float64(none), "control/none")
	b.ReportMetric(testing.AllocsPerRun(200, func() { serve(handlers[0]) }), "none-allocs/req")
	b.ReportMetric(testing.AllocsPerRun(200, func() { serve(handlers[1]) }), "idle-allocs/req")
}

// benchServer is an ingress on the no-op producer whose dedup store forgets at once (every
// delivery is new, however often one is sent), with a spool when spooling.
func benchServer(b *testing.B, spooling bool) fasthttp.RequestHandler {
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
		Sources:     []ingress.Source{{Name: "codivupload", Provider: "codivupload", Preset: preset, Keys: []*providers.Key{key}, Spool: spooling}},
		TopicPrefix: "social.", MaxBodyBytes: 64 << 10, MaxHeaderBytes: 32 << 10,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second,
		DedupWait: time.Second, Encoder: enc, Producer: &producer.Discard{},
		Dedup: dedup.New(time.Nanosecond, 1<<20, dedup.Options{}), Metrics: ingress.NewMetrics(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if spooling {
		sp, err := spool.Open(b.TempDir(), spool.Options{MaxBytes: 1 << 30, Sources: []string{"codivupload"}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { sp.Close() })
		o.Spool = sp
	}
	app := ingress.New(o).App()
	app.Handler() // builds the routes, as serving does
	return app.Server().Handler
}

// deliveries are n signed CodivUpload deliveries of distinct ids, as requests.
func deliveries(b *testing.B, n int) []*fasthttp.Request {
	out := make([]*fasthttp.Request, n)
	for i := range out {
		body := []byte(fmt.Sprintf(`{"event":"post.published","id":"evt_bench_%06d","timestamp":"2026-05-08T14:00:42Z","data":{"post_id":"post_k8m2v9x1","profile_name":"main","platform":"instagram","platform_post_id":"17891234567890","platform_post_url":"https://instagram.com/p/Cabc123/","scheduled_at":"2026-05-08T14:00:00Z","published_at":"2026-05-08T14:00:42Z"}}`, i))
		req := &fasthttp.Request{}
		req.Header.SetMethod("POST")
		req.SetRequestURI("/webhooks/codivupload")
		req.Header.SetContentType("application/json")
		for k, v := range testkit.CodivHeaders(secret, "post.published", body) {
			req.Header.Set(k, v)
		}
		req.SetBody(body)
		out[i] = req
	}
	return out
}

func medianOf(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
