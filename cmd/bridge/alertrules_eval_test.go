package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// TestDedupStoreSlowFires evaluates BridgeDedupStoreSlow's expression from alerts.yml on
// three bridges' histograms: one whose reservations take about 80 ms (it fires), one whose
// take under a millisecond, and one whose only slow reservations failed (counted by
// BridgeRefusingDeliveries instead): neither of those does.
func TestDedupStoreSlowFires(t *testing.T) {
	var expr string
	for _, r := range loadAlertRules(t) {
		if r.name == "BridgeDedupStoreSlow" {
			expr = r.expr
		}
	}
	if expr == "" {
		t.Fatal("alerts.yml has no BridgeDedupStoreSlow")
	}
	// 100 reservations a minute per bridge, for 30 minutes; the buckets are cumulative, as
	// the bridge's are: per instance and outcome, how many a minute fall at or under each le.
	perMinute := []struct {
		instance, outcome string
		under             map[string]float64
	}{
		{"slow", "new", map[string]float64{"0.0001": 0, "0.0512": 0, "0.1024": 100, "+Inf": 100}},
		{"fast", "new", map[string]float64{"0.0001": 90, "0.0512": 100, "0.1024": 100, "+Inf": 100}},
		{"down", "new", map[string]float64{"0.0001": 100, "0.0512": 100, "0.1024": 100, "+Inf": 100}},
		{"down", "failed", map[string]float64{"0.0001": 0, "0.0512": 0, "0.1024": 0, "+Inf": 500}},
	}
	var series []storage.Series
	for _, b := range perMinute {
		for le, n := range b.under {
			lset := labels.FromStrings("__name__", "bridge_dedup_reserve_seconds_bucket", "job", "bridge",
				"instance", b.instance, "outcome", b.outcome, "le", le)
			var samples []chunks.Sample
			for m := range 31 {
				samples = append(samples, floatSample{t: int64(m) * time.Minute.Milliseconds(), f: float64(m) * n})
			}
			series = append(series, storage.NewListSeries(lset, samples))
		}
	}
	db := &storage.MockQueryable{MockQuerier: &storage.MockQuerier{
		SelectMockFunction: func(_ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
			var out []storage.Series
			for _, s := range series {
				if matchAll(ms, s.Labels()) {
					out = append(out, s)
				}
			}
			slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
			return &seriesSet{all: out, i: -1}
		},
	}}
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	q, err := engine.NewInstantQuery(context.Background(), db, nil, expr, time.Unix(0, 0).Add(20*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	res := q.Exec(context.Background())
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	vec, err := res.Vector()
	if err != nil {
		t.Fatal(err)
	}
	var firing []string
	for _, s := range vec {
		firing = append(firing, s.Metric.Get("instance"))
		if s.F < 0.0512 || s.F > 0.1024 {
			t.Errorf("%s: p99 %.4f s, want within the bucket (0.0512, 0.1024]", s.Metric.Get("instance"), s.F)
		}
	}
	if !slices.Equal(firing, []string{"slow"}) {
		t.Errorf("fires for %v, want [slow] alone", firing)
	}
}

func matchAll(ms []*labels.Matcher, l labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(l.Get(m.Name)) {
			return false
		}
	}
	return true
}

// seriesSet is series in memory, in label order, for the PromQL engine.
type seriesSet struct {
	all []storage.Series
	i   int
}

func (s *seriesSet) Next() bool                        { s.i++; return s.i < len(s.all) }
func (s *seriesSet) At() storage.Series                { return s.all[s.i] }
func (s *seriesSet) Err() error                        { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return nil }

// floatSample is one float sample of a series, for storage.NewListSeries.
type floatSample struct {
	t int64
	f float64
}

func (s floatSample) T() int64                      { return s.t }
func (s floatSample) ST() int64                     { return 0 }
func (s floatSample) F() float64                    { return s.f }
func (s floatSample) H() *histogram.Histogram       { return nil }
func (s floatSample) FH() *histogram.FloatHistogram { return nil }
func (s floatSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s floatSample) Copy() chunks.Sample           { return s }
