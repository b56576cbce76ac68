package main

import (
	"context"
	"math"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// fakeBridge serves the two wait histograms as the bridge declares them, on a loopback port.
type fakeBridge struct {
	reserve, ack *prometheus.HistogramVec
	addr         string
}

func newFakeBridge(t *testing.T) *fakeBridge {
	reg := prometheus.NewRegistry()
	f := &fakeBridge{
		reserve: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bridge_dedup_reserve_seconds",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16)}, []string{"outcome"}),
		ack: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "bridge_produce_seconds",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"outcome"}),
	}
	reg.MustRegister(f.reserve, f.ack)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	f.addr = strings.TrimPrefix(srv.URL, "http://")
	return f
}

func observe(h prometheus.Observer, seconds float64, n int) {
	for range n {
		h.Observe(seconds)
	}
}

// TestWaitsOfAPhase: what two bridges observed between two scrapes is summed, only for new
// ids and acknowledged records, and its quantiles fall in the buckets that hold them.
func TestWaitsOfAPhase(t *testing.T) {
	a, b := newFakeBridge(t), newFakeBridge(t)
	ctx := context.Background()
	observe(a.reserve.WithLabelValues("new"), 0.010, 1000) // before the phase: not counted
	before, err := scrapeWaits(ctx, []string{a.addr, b.addr})
	if err != nil {
		t.Fatal(err)
	}
	observe(a.reserve.WithLabelValues("new"), 0.0003, 60)      // bucket (0.2, 0.4] ms
	observe(b.reserve.WithLabelValues("new"), 0.0003, 38)      // the same, on the other bridge
	observe(b.reserve.WithLabelValues("new"), 0.005, 2)        // bucket (3.2, 6.4] ms: the p99
	observe(b.reserve.WithLabelValues("duplicate"), 0.200, 50) // not a new id's: ignored
	observe(a.ack.WithLabelValues("acked"), 0.0015, 10)        // bucket (1, 2] ms
	observe(a.ack.WithLabelValues("failed"), 5, 10)            // not acknowledged: ignored
	after, err := scrapeWaits(ctx, []string{a.addr, b.addr})
	if err != nil {
		t.Fatal(err)
	}
	w := after.since(before)
	reserve, ack := w["bridge_dedup_reserve_seconds"], w["bridge_produce_seconds"]
	if n := reserve.count[len(reserve.count)-1]; n != 100 {
		t.Fatalf("%v reservations in the phase, want 100", n)
	}
	l := reserve.latency()
	if l == nil || l.P50 <= 0.2 || l.P50 > 0.4 || l.P99 <= 3.2 || l.P99 > 6.4 {
		t.Errorf("reservation %+v, want p50 in (0.2, 0.4] ms and p99 in (3.2, 6.4] ms", l)
	}
	if l := ack.latency(); l == nil || l.P50 <= 1 || l.P50 > 2 || l.P99 > 2 {
		t.Errorf("Kafka ack %+v, want p50 and p99 in (1, 2] ms", l)
	}
}

// TestQuantileEdges: nothing counted is no latency; a quantile beyond the last finite bound
// is that bound; one at a bucket's top is the bound itself.
func TestQuantileEdges(t *testing.T) {
	if l := (buckets{}).latency(); l != nil {
		t.Errorf("an empty histogram's latency %+v, want none", l)
	}
	if q := (buckets{le: []float64{0.001, math.Inf(1)}, count: []float64{0, 0}}).quantile(0.5); !math.IsNaN(q) {
		t.Errorf("quantile of nothing %v, want NaN", q)
	}
	over := buckets{le: []float64{0.001, 0.002, math.Inf(1)}, count: []float64{0, 0, 10}}
	if q := over.quantile(0.5); q != 2 {
		t.Errorf("quantile in +Inf %v ms, want the last bound, 2", q)
	}
	two := buckets{le: []float64{0.001, 0.002, math.Inf(1)}, count: []float64{5, 10, 10}}
	if q := two.quantile(0.5); q != 1 {
		t.Errorf("quantile at the first bucket's top %v ms, want 1", q)
	}
	if q := two.quantile(0.75); q != 1.5 {
		t.Errorf("quantile halfway in the second bucket %v ms, want 1.5", q)
	}
}
