package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The bridge's own histograms of its two waits on the request path, read from its /metrics
// before and after a phase: how long the dedup reservation took (a Redis round trip with
// dedup.store redis, about a microsecond in memory) and how long Kafka took to acknowledge.
// They tell where a setup's extra latency goes, which the answers' latency alone cannot.
var waitSeries = []struct{ family, outcome string }{
	{"bridge_dedup_reserve_seconds", "new"},
	{"bridge_produce_seconds", "acked"},
}

// buckets is a Prometheus histogram's cumulative counts by upper bound (seconds), the last
// bound +Inf.
type buckets struct {
	le    []float64
	count []float64
}

// waits is the histograms of waitSeries, by family, summed over the bridges scraped.
type waits map[string]buckets

// scrapeWaits reads waitSeries from the /metrics of every bridge at addrs and sums them.
func scrapeWaits(ctx context.Context, addrs []string) (waits, error) {
	out := waits{}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, addr := range addrs {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		tp := expfmt.NewTextParser(model.UTF8Validation)
		families, err := tp.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("metrics of %s: %w", addr, err)
		}
		for _, ws := range waitSeries {
			f := families[ws.family]
			if f == nil {
				continue // a bridge built before the series existed
			}
			for _, m := range f.GetMetric() {
				if !hasLabel(m.GetLabel(), "outcome", ws.outcome) || m.GetHistogram() == nil {
					continue
				}
				h := m.GetHistogram()
				le, count := []float64{}, []float64{}
				for _, bk := range h.GetBucket() {
					le, count = append(le, bk.GetUpperBound()), append(count, float64(bk.GetCumulativeCount()))
				}
				if n := len(le); n == 0 || !math.IsInf(le[n-1], 1) {
					le, count = append(le, math.Inf(1)), append(count, float64(h.GetSampleCount()))
				}
				b := out[ws.family]
				if b.le == nil {
					b = buckets{le: le, count: make([]float64, len(le))}
				}
				if len(b.le) != len(le) {
					return nil, fmt.Errorf("metrics of %s: %s has %d buckets, another bridge's %d", addr, ws.family, len(le), len(b.le))
				}
				for i := range count {
					b.count[i] += count[i]
				}
				out[ws.family] = b
			}
		}
	}
	return out, nil
}

func hasLabel[L interface {
	GetName() string
	GetValue() string
}](labels []L, name, value string) bool {
	for _, l := range labels {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// since is what w observed after before, family by family.
func (w waits) since(before waits) waits {
	out := waits{}
	for name, b := range w {
		a := before[name]
		d := buckets{le: b.le, count: make([]float64, len(b.count))}
		for i := range b.count {
			d.count[i] = b.count[i]
			if i < len(a.count) {
				d.count[i] -= a.count[i]
			}
		}
		out[name] = d
	}
	return out
}

// quantile is the q-quantile of b in milliseconds, interpolated linearly within its bucket as
// Prometheus's histogram_quantile does (the highest finite bound when it falls in +Inf); NaN
// when b counted nothing.
func (b buckets) quantile(q float64) float64 {
	n := len(b.count)
	if n == 0 || b.count[n-1] <= 0 {
		return math.NaN()
	}
	rank := q * b.count[n-1]
	i := sort.Search(n, func(i int) bool { return b.count[i] >= rank })
	if i == n-1 && math.IsInf(b.le[i], 1) {
		if n == 1 {
			return math.NaN()
		}
		return 1000 * b.le[n-2]
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = b.le[i-1], b.count[i-1]
	}
	in := b.count[i] - below
	if in <= 0 {
		return 1000 * b.le[i]
	}
	return 1000 * (lo + (b.le[i]-lo)*(rank-below)/in)
}

// latency is b's p50 and p99 in milliseconds, nil when it counted nothing.
func (b buckets) latency() *Latency {
	if n := len(b.count); n == 0 || b.count[n-1] <= 0 {
		return nil
	}
	return &Latency{P50: b.quantile(0.5), P99: b.quantile(0.99)}
}
