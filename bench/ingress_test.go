package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/service"
	"github.com/socialbridge/bridge/config"
)

// BenchmarkIngress times one delivery through the whole ingress over loopback HTTP — the
// listener, fasthttp and Fiber, the request path — with the no-op producer, from 8
// keep-alive connections of the load generator's client: the HTTP layer's share of a
// request, which the step benchmarks leave out.
func BenchmarkIngress(b *testing.B) {
	cfg := config.Default()
	cfg.HTTP.Listen, cfg.HTTP.DrainPeriod = "127.0.0.1:0", 0
	cfg.Kafka.Brokers = []string{"127.0.0.1:1"} // never contacted
	cfg.Sources = []config.Source{{Name: sourceName, Provider: sourceName, Secrets: []string{string(benchSecret)}}}
	svc, err := service.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), service.Options{DiscardRecords: true})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.Listen(); err != nil {
		b.Fatal(err)
	}
	defer svc.Shutdown(context.Background())
	ds := generate(genSpec{runID: "ingress", phase: "b", count: b.N, secret: benchSecret, seed: 9})
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	for range 8 {
		wg.Go(func() {
			c := newHTTPConn(svc.Addr(), 30*time.Second)
			defer c.close()
			for i := int(next.Add(1) - 1); i < len(ds); i = int(next.Add(1) - 1) {
				if code, body, err := c.do(ds[i].wire); err != nil || code != 200 {
					b.Errorf("delivery %d: %d %s %v", i, code, body, err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
}
