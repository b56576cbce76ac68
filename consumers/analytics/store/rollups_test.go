package store_test

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/socialbridge/bridge/consumers/analytics/internal/dbtest"
	"github.com/socialbridge/bridge/consumers/analytics/sketch"
	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// TestMostTroubledAcrossDays checks the profiles with the most failures, read from the daily
// rollup and the hours around it, against sums of the records themselves, for ranges that
// start and end inside days, on day boundaries, and within one day.
func TestMostTroubledAcrossDays(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, database string) {
		s := open(t, database)
		rng := rand.New(rand.NewPCG(8, 9))
		day0 := time.Date(2026, 5, 8, 0, 0, 0, 0, time.UTC)
		var recs []store.Record
		for i := range 3000 {
			recs = append(recs, store.Record{Offset: int64(i), Kind: store.Kind(1 + rng.IntN(4)),
				OccurredAt: day0.Add(time.Duration(rng.Int64N(int64(4 * 24 * time.Hour)))),
				Platform:   fmt.Sprintf("p%d", rng.IntN(3)), Profile: fmt.Sprintf("profile-%d", rng.IntN(8))})
		}
		for i := 0; i < len(recs); i += 400 {
			apply(t, s, runOf("t", recs[i:min(i+400, len(recs))]))
		}
		for _, r := range []store.Range{
			{From: day0, To: day0.Add(4 * 24 * time.Hour)},
			{From: day0.Add(5 * time.Hour), To: day0.Add(77 * time.Hour)},
			{From: day0.Add(30 * time.Hour), To: day0.Add(47 * time.Hour)},
			{From: day0.Add(23 * time.Hour), To: day0.Add(49 * time.Hour), Platform: "p2"},
			{From: day0.Add(24 * time.Hour), To: day0.Add(48 * time.Hour)},
		} {
			var got []store.ProfileTotals
			err := s.View(context.Background(), func(v *store.View) (err error) {
				got, err = v.MostTroubled(context.Background(), r, 5)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := troubled(recs, r, 5); !reflect.DeepEqual(got, want) {
				t.Errorf("%v – %v %s:\n got %+v\nwant %+v", r.From, r.To, r.Platform, got, want)
			}
		}
	})
}

// troubled is MostTroubled computed from the records.
func troubled(recs []store.Record, r store.Range, limit int) []store.ProfileTotals {
	sums := map[[2]string]*store.ProfileTotals{}
	for _, rec := range recs {
		if rec.OccurredAt.Before(r.From) || !rec.OccurredAt.Before(r.To) || (r.Platform != "" && rec.Platform != r.Platform) {
			continue
		}
		k := [2]string{rec.Platform, rec.Profile}
		if sums[k] == nil {
			sums[k] = &store.ProfileTotals{Platform: rec.Platform, Profile: rec.Profile}
		}
		switch rec.Kind {
		case store.Published:
			sums[k].Published++
		case store.Failed:
			sums[k].Failed++
		case store.TokenExpired:
			sums[k].TokenExpired++
		case store.Retry:
			sums[k].Retries++
		}
	}
	var out []store.ProfileTotals
	for _, p := range sums {
		if p.Failed+p.TokenExpired > 0 {
			out = append(out, *p)
		}
	}
	slices.SortFunc(out, func(a, b store.ProfileTotals) int {
		return cmp.Or(cmp.Compare(b.Failed+b.TokenExpired, a.Failed+a.TokenExpired), cmp.Compare(a.Platform, b.Platform), cmp.Compare(a.Profile, b.Profile))
	})
	return out[:min(limit, len(out))]
}

// TestViewIsOneSnapshot: a batch committed while a View is open is not in what the View
// reads, so the counts and sketches of one answer agree; the next View sees it.
func TestViewIsOneSnapshot(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, database string) {
		s := open(t, database)
		ctx := context.Background()
		apply(t, s, published(0, 10, t0, "instagram", "main"))
		err := s.View(ctx, func(v *store.View) error {
			before, err := v.ByPlatform(ctx, day())
			if err != nil {
				return err
			}
			apply(t, s, published(10, 5, t0, "instagram", "main")) // another connection
			after, err := v.ByPlatform(ctx, day())
			if err != nil {
				return err
			}
			if after[0].Published != 10 || after[0].Delays.Count() != before[0].Delays.Count() {
				t.Errorf("the view saw a batch committed after it began: %d published, %d delays", after[0].Published, after[0].Delays.Count())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := totals(t, s, day())["instagram"].Published; got != 15 {
			t.Errorf("published = %d after the view, want 15", got)
		}
	})
}

// TestApplyInterleavedPartitions: a batch made of several polls holds each partition's
// records in runs, not together; every run is counted past its partition's stored offset.
func TestApplyInterleavedPartitions(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, database string) {
		s := open(t, database)
		a, b := published(0, 10, t0, "x", "acme"), published(0, 10, t0, "y", "acme")
		b.Partition = 1
		apply(t, s, part(a, 0, 3), part(b, 0, 6))
		got := apply(t, s, part(a, 0, 5), part(b, 0, 8), part(a, 5, 10), part(b, 8, 10)) // a 0..2 and b 0..5 again
		if got.Counted != 11 || got.Skipped != 9 || got.Next[store.TP{Topic: "pub", Partition: 0}] != 10 || got.Next[store.TP{Topic: "pub", Partition: 1}] != 10 {
			t.Errorf("applied %+v, want 11 counted, 9 skipped, both partitions at 10", got)
		}
		if got.Topics["pub"] != got.Tally {
			t.Errorf("by topic %+v, all %+v", got.Topics, got.Tally)
		}
		if c := totals(t, s, day()); c["x"].Published != 10 || c["y"].Published != 10 {
			t.Errorf("counted %+v, want 10 each", c)
		}
	})
}

// TestTwoWritersShareRows: two stores (two consumers) add delays to the same rows in turns,
// each sometimes twice in a row. Each store keeps the sketches it wrote for its next batch,
// and must notice when the other has written since: no delay may be lost or counted twice.
func TestTwoWritersShareRows(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, database string) {
		stores := []*store.Store{open(t, database), open(t, database)}
		offsets := []int64{0, 0}
		var delays []int64
		for i, who := range []int{0, 0, 1, 0, 1, 1, 0, 0, 0, 1} {
			batch := published(offsets[who], 7, t0, "x", "acme")
			batch.Partition = int32(who)
			for j := range batch.Records {
				batch.Records[j].DelayMs = int64(1000*(i+1) + j)
				delays = append(delays, batch.Records[j].DelayMs)
			}
			offsets[who] += int64(len(batch.Records))
			if a := apply(t, stores[who], batch); a.Counted != len(batch.Records) {
				t.Fatalf("batch %d: %+v", i, a)
			}
		}
		slices.Sort(delays)
		for _, s := range stores {
			ps, err := s.ByPlatform(context.Background(), day())
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != 1 || ps[0].Published != int64(len(delays)) || ps[0].Delays.Count() != int64(len(delays)) {
				t.Fatalf("totals %+v, want %d published with delays", ps, len(delays))
			}
			got, _ := ps[0].Delays.Quantile(0.5)
			if want := float64(delays[(len(delays)-1)/2]); math.Abs(got-want) > sketch.RelativeAccuracy*want {
				t.Errorf("p50 %v, want %v", got, want)
			}
		}
	})
}
