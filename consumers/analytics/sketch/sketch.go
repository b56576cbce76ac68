// Package sketch turns publish delays into the buckets of a DDSketch (github.com/DataDog/sketches-go)
// with a fixed relative accuracy, and bucket counts back into percentiles. Counts per bucket
// merge by addition, so the analytics store keeps one count per (hour, platform, profile,
// bucket) and the percentiles of any range are those of the summed counts: never an average
// of per-hour percentiles.
//
// Every percentile it answers is within RelativeAccuracy of the exact percentile of the same
// delays (the value at rank ⌊q·(n−1)⌋ of the sorted delays), however the counts were split
// across hours and merged.
package sketch

import (
	"math"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// RelativeAccuracy bounds the relative error of every percentile. The bucket numbers stored
// in databases depend on it: changing it needs a migration that rewrites them.
const RelativeAccuracy = 0.01

// ZeroBucket holds delays of zero or less: posts published on time or early.
const ZeroBucket = math.MinInt32

var logMapping = mustMapping()

func mustMapping() *mapping.LogarithmicMapping {
	m, err := mapping.NewLogarithmicMapping(RelativeAccuracy)
	if err != nil {
		panic(err) // RelativeAccuracy is a constant in (0, 1)
	}
	return m
}

// Bucket returns the bucket of a delay of ms milliseconds. Delays are whole milliseconds (the
// events' timestamps are), so every positive delay has a bucket ≥ 0.
func Bucket(ms int64) int32 {
	if ms <= 0 {
		return ZeroBucket
	}
	return int32(logMapping.Index(float64(ms)))
}

// Counts accumulates bucket counts, from any number of hours, and answers percentiles. The
// zero value is not usable; call New.
type Counts struct {
	sk *ddsketch.DDSketch
}

// New returns empty counts.
func New() *Counts {
	return &Counts{sk: ddsketch.NewDDSketch(logMapping, store.NewDenseStore(), store.NewDenseStore())}
}

// Add counts n delays in bucket. Counts of the same bucket add up.
func (c *Counts) Add(bucket int32, n int64) {
	if n <= 0 {
		return
	}
	if bucket == ZeroBucket {
		_ = c.sk.AddWithCount(0, float64(n)) // zero is always trackable
		return
	}
	c.sk.GetPositiveValueStore().AddWithCount(int(bucket), float64(n))
}

// Merge adds other's counts to c.
func (c *Counts) Merge(other *Counts) {
	_ = c.sk.MergeWith(other.sk) // same mapping by construction: cannot fail
}

// Count returns the number of delays counted.
func (c *Counts) Count() int64 { return int64(c.sk.GetCount()) }

// Quantile returns the delay in milliseconds at quantile q (0.5 for p50), or false when
// nothing was counted.
func (c *Counts) Quantile(q float64) (float64, bool) {
	v, err := c.sk.GetValueAtQuantile(q)
	if err != nil {
		return 0, false
	}
	return v, true
}
