package sketch_test

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/DataDog/sketches-go/ddsketch"

	"github.com/socialbridge/bridge/consumers/analytics/sketch"
)

// exact is the percentile the sketch promises to approximate: the value at rank ⌊q·(n−1)⌋.
func exact(sorted []int64, q float64) float64 {
	return float64(sorted[int(q*float64(len(sorted)-1))])
}

func within(t *testing.T, name string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > sketch.RelativeAccuracy*want {
		t.Errorf("%s = %.2f, want %.2f within %.0f%% (off by %.3f%%)", name, got, want, 100*sketch.RelativeAccuracy, 100*math.Abs(got-want)/want)
	}
}

// TestMergedHoursAgainstExact splits delays across hours as the store does (one encoded
// sketch per hour, dense or sparse), merges the encodings of any range, and checks p50, p95 and p99 of the
// range against the exact percentiles of the same delays.
func TestMergedHoursAgainstExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	const hours = 48
	encoded := make([][]byte, hours)
	delays := make([][]int64, hours)
	for h := range hours {
		c := sketch.New()
		if h%2 == 1 {
			c = sketch.NewSparse() // encodes alike
		}
		for range 200 + rng.IntN(800) {
			// Log-normal around a few seconds, with a long tail and some on-time posts.
			ms := int64(math.Exp(rng.NormFloat64()*1.5 + 8 + float64(h%5)))
			if rng.IntN(20) == 0 {
				ms = 0
			}
			c.AddDelay(ms)
			delays[h] = append(delays[h], ms)
		}
		encoded[h] = c.AppendEncoded(nil)
	}
	for _, r := range [][2]int{{0, 1}, {3, 4}, {0, 24}, {5, 29}, {0, hours}} {
		c := sketch.New()
		var all []int64
		for h := r[0]; h < r[1]; h++ {
			if err := c.MergeEncoded(encoded[h]); err != nil {
				t.Fatal(err)
			}
			all = append(all, delays[h]...)
		}
		slices.Sort(all)
		if c.Count() != int64(len(all)) {
			t.Fatalf("hours %v: count %d, want %d", r, c.Count(), len(all))
		}
		for _, q := range []float64{0.5, 0.95, 0.99} {
			got, ok := c.Quantile(q)
			if !ok {
				t.Fatalf("hours %v: no quantile", r)
			}
			within(t, "quantile", got, exact(all, q))
		}
	}
}

// TestBucketsMatchDelays: counts per bucket (the first schema's rows, which its migration
// reads) make the same sketch as the delays themselves.
func TestBucketsMatchDelays(t *testing.T) {
	fromBuckets, fromDelays := sketch.New(), sketch.New()
	perBucket := map[int32]int64{}
	for _, ms := range []int64{-5, 0, 1, 2, 999, 1000, 1001, 60_000, 86_400_000} {
		perBucket[sketch.Bucket(ms)]++
		fromDelays.AddDelay(ms)
	}
	for b, n := range perBucket {
		fromBuckets.Add(b, n)
	}
	if a, b := fromBuckets.AppendEncoded(nil), fromDelays.AppendEncoded(nil); !bytes.Equal(a, b) {
		t.Errorf("buckets encode as %x, delays as %x", a, b)
	}
}

func TestMergeEncodedRefusesOthers(t *testing.T) {
	other, err := ddsketch.NewDefaultDDSketch(0.02)
	if err != nil {
		t.Fatal(err)
	}
	_ = other.Add(1000)
	var b []byte
	other.Encode(&b, false)
	if err := sketch.New().MergeEncoded(b); err == nil {
		t.Error("merged a sketch of 2% accuracy into one of 1%")
	}
}

func TestEdges(t *testing.T) {
	c := sketch.New()
	if _, ok := c.Quantile(0.5); ok {
		t.Fatal("empty counts answered a quantile")
	}
	c.Add(sketch.Bucket(-5000), 1) // published early: no delay
	c.Add(sketch.Bucket(0), 2)
	c.Add(sketch.Bucket(1), 1)
	c.Add(sketch.Bucket(86_400_000), 1)
	c.Add(sketch.Bucket(7), 0) // nothing
	if c.Count() != 5 {
		t.Fatalf("count %d, want 5", c.Count())
	}
	if got, _ := c.Quantile(0.5); got != 0 {
		t.Errorf("p50 = %v, want 0", got)
	}
	got, _ := c.Quantile(1)
	within(t, "max", got, 86_400_000)
	got, _ = c.Quantile(0.75)
	within(t, "p75", got, 1)
}
