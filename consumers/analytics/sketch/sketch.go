// Package sketch keeps publish delays in a DDSketch (github.com/DataDog/sketches-go) of a fixed
// relative accuracy, stored in the library's own compact binary encoding. Sketches merge
// without loss, so the analytics store keeps one encoded sketch per (hour, platform, profile)
// and per (hour, platform), and the percentiles of any range are those of the merged
// sketches of its hours: never an average of per-hour percentiles.
//
// Every percentile it answers is within RelativeAccuracy of the exact percentile of the same
// delays (the value at rank ⌊q·(n−1)⌋ of the sorted delays), however the delays were split
// across hours and merged.
package sketch

import (
	"fmt"
	"math"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// RelativeAccuracy bounds the relative error of every percentile. Encoded sketches carry
// their mapping, and merging one of another accuracy fails: changing it needs a migration
// that rewrites the stored sketches.
const RelativeAccuracy = 0.01

// ZeroBucket holds delays of zero or less: posts published on time or early. It is the
// bucket number of the first schema's analytics_delay_buckets table, read by its migration.
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

// Counts accumulates delays, from any number of hours, and answers percentiles. The zero
// value is not usable; call New. It is not safe for concurrent use.
type Counts struct {
	sk *ddsketch.DDSketch
}

// New returns empty counts, quick to merge many sketches into (a range's percentiles).
func New() *Counts {
	return &Counts{sk: ddsketch.NewDDSketch(logMapping, store.NewDenseStore(), store.NewDenseStore())}
}

// NewSparse returns empty counts for few delays, such as one profile's in one hour: quicker
// than New to fill, merge into others and encode, slower to merge many into. Both encode
// alike.
func NewSparse() *Counts {
	return &Counts{sk: ddsketch.NewDDSketch(logMapping, store.NewSparseStore(), store.NewSparseStore())}
}

// AddDelay counts one delay of ms milliseconds; zero or less (published on time or early)
// counts as 0.
func (c *Counts) AddDelay(ms int64) {
	_ = c.sk.Add(float64(max(0, ms))) // every whole number of milliseconds ≥ 0 is trackable
}

// Add counts n delays in bucket (see Bucket). Counts of the same bucket add up.
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

// AppendEncoded appends c in the library's binary encoding (with its mapping) to b.
func (c *Counts) AppendEncoded(b []byte) []byte {
	c.sk.Encode(&b, false)
	return b
}

// MergeEncoded adds the counts of an encoding made by AppendEncoded to c. It fails when b
// was made with another accuracy; the library does not check the rest of b, so b must come
// from AppendEncoded.
func (c *Counts) MergeEncoded(b []byte) error {
	if err := c.sk.DecodeAndMergeWith(b); err != nil {
		return fmt.Errorf("sketch: decode: %w", err)
	}
	return nil
}

// Reset empties c, keeping its memory for the next counts.
func (c *Counts) Reset() { c.sk.Clear() }

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
