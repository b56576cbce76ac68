package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/socialbridge/bridge/consumers/analytics/internal/dbtest"
	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// BenchmarkApply measures one transaction of 10,000 records over 6 platforms × 100 profiles
// and two hours, on each database.
func BenchmarkApply(b *testing.B) {
	for _, kind := range dbtest.Kinds {
		b.Run(kind, func(b *testing.B) {
			s, err := store.Open(context.Background(), dbtest.New(b, kind))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			recs := make([]store.Record, 10_000)
			var offset int64
			b.ResetTimer()
			for b.Loop() {
				for i := range recs {
					recs[i] = store.Record{Offset: offset, Kind: store.Kind(1 + i%4), OccurredAt: t0.Add(time.Duration(i%120) * time.Minute),
						Platform: fmt.Sprintf("p%d", i%6), Profile: fmt.Sprintf("profile-%d", i%100), DelayMs: int64(1000 + i), HasDelay: i%4 == 0}
					offset++
				}
				tx, err := s.Begin(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tx.Apply(context.Background(), []store.Run{{TP: store.TP{Topic: "t"}, From: recs[0].Offset, Records: recs}}); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
		})
	}
}
