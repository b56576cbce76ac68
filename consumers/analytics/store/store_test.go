package store_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socialbridge/bridge/consumers/analytics/internal/dbtest"
	"github.com/socialbridge/bridge/consumers/analytics/sketch"
	"github.com/socialbridge/bridge/consumers/analytics/store"
)

var t0 = time.Date(2026, 5, 8, 14, 0, 0, 0, time.UTC)

func open(t *testing.T, database string) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, database)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// apply runs one batch in its own transaction and commits it.
func apply(t *testing.T, s *store.Store, runs ...store.Run) store.Applied {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	a, err := tx.Apply(ctx, runs)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return a
}

// published returns a run of n post.published records of partition 0 of topic "pub" from
// offset first, one a minute from at, with delays of 1s, 2s, … n s.
func published(first int64, n int, at time.Time, platform, profile string) store.Run {
	run := store.Run{TP: store.TP{Topic: "pub"}, From: first}
	for i := range n {
		run.Records = append(run.Records, store.Record{
			Offset: first + int64(i), Kind: store.Published,
			OccurredAt: at.Add(time.Duration(i) * time.Minute), Platform: platform, Profile: profile,
			DelayMs: int64(i+1) * 1000, HasDelay: true,
		})
	}
	return run
}

// part is the run of r's records lo to hi-1, read from the first of them.
func part(r store.Run, lo, hi int) store.Run {
	return store.Run{TP: r.TP, From: r.Records[lo].Offset, Records: r.Records[lo:hi]}
}

// runOf is a run of topic's partition 0 holding recs, read from the first of them.
func runOf(topic string, recs []store.Record) store.Run {
	return store.Run{TP: store.TP{Topic: topic}, From: recs[0].Offset, Records: recs}
}

func totals(t *testing.T, s *store.Store, r store.Range) map[string]store.Counts {
	t.Helper()
	ps, err := s.ByPlatform(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Counts{}
	for _, p := range ps {
		out[p.Platform] = p.Counts
	}
	return out
}

func day() store.Range { return store.Range{From: t0.Add(-24 * time.Hour), To: t0.Add(24 * time.Hour)} }

func TestMigrations(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, database string) {
		// Consumers starting together: each migrates, none applies a step twice.
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				s, err := store.Open(context.Background(), database)
				if err == nil {
					s.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
		s := open(t, database)
		if _, err := s.Offsets(context.Background()); err != nil {
			t.Fatalf("schema missing after migration: %v", err)
		}
	})
}

// TestOpenANewSQLiteFileTogether: consumers starting together on an SQLite file that does not
// exist yet all open it. The first connections race to turn it to WAL mode, which SQLite
// answers SQLITE_BUSY at once, without waiting for the busy timeout; each must wait its turn.
func TestOpenANewSQLiteFileTogether(t *testing.T) {
	for round := range 20 {
		path := "sqlite:" + filepath.Join(t.TempDir(), "analytics.db")
		var wg sync.WaitGroup
		errs := make([]error, 6)
		for i := range errs {
			wg.Go(func() {
				s, err := store.Open(context.Background(), path)
				if err == nil {
					s.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}

func TestApplyCountsEachRecordOnce(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, database string) {
		s := open(t, database)
		batch := published(0, 10, t0, "instagram", "main")
		if a := apply(t, s, batch); a.Counted != 10 || a.Skipped != 0 {
			t.Fatalf("first apply: %+v", a)
		}
		// Redelivered, and overlapping the next records: only the new ones count.
		if a := apply(t, s, batch); a.Counted != 0 || a.Skipped != 10 {
			t.Fatalf("same batch again: %+v", a)
		}
		more := published(5, 10, t0, "instagram", "main")
		if a := apply(t, s, more); a.Counted != 5 || a.Skipped != 5 {
			t.Fatalf("overlapping batch: %+v", a)
		}
		ignored := store.Run{TP: store.TP{Topic: "pub"}, From: 15, Records: []store.Record{{Offset: 15, Kind: store.Ignored}}}
		if a := apply(t, s, ignored); a.Ignored != 1 {
			t.Fatalf("ignored record: %+v", a)
		}
		if got := totals(t, s, day())["instagram"].Published; got != 15 {
			t.Errorf("published = %d, want 15", got)
		}
		offs, err := s.Offsets(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := offs[store.TP{Topic: "pub", Partition: 0}]; got != 16 {
			t.Errorf("stored offset %d, want 16", got)
		}
	})
}

// TestApplySkipsWhatTheBatchCountedAlready: a batch holding a partition's records twice, as
// when polls of an old and a new assignment of the partition meet in one batch, counts them
// once: a record is skipped below the highest offset counted so far, the batch's own included.
func TestApplySkipsWhatTheBatchCountedAlready(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, database string) {
		s := open(t, database)
		apply(t, s, published(0, 10, t0, "instagram", "main"))
		again := published(10, 10, t0, "instagram", "main")
		if a := apply(t, s, again, again); a.Counted != 10 || a.Skipped != 10 {
			t.Errorf("offsets 10..19 twice after a stored 10: %+v, want 10 counted and 10 skipped", a)
		}
		if got := totals(t, s, day())["instagram"].Published; got != 20 {
			t.Errorf("published = %d, want 20", got)
		}
	})
}

// TestApplyNeverStoresAnOffsetPastRecordsNotCounted: a run read from past what its partition
// counted (the stored offset, or the end of the batch's run before it) would store an offset
// past records that nobody counted: the batch fails with ErrGap and writes nothing. Offsets
// the reader went past without a record (transaction markers, aborted or compacted records)
// are no gap: the run says it read from the stored offset.
func TestApplyNeverStoresAnOffsetPastRecordsNotCounted(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, database string) {
		s := open(t, database)
		apply(t, s, published(0, 10, t0, "instagram", "main"))
		markers := published(12, 3, t0, "instagram", "main")
		pastGap := markers
		other := published(0, 4, t0, "x", "acme")
		other.Partition = 1
		outOfOrder := published(10, 3, t0, "instagram", "main")
		outOfOrder.Records[1], outOfOrder.Records[2] = outOfOrder.Records[2], outOfOrder.Records[1]
		repeated := published(10, 3, t0, "instagram", "main")
		repeated.Records[2].Offset = repeated.Records[1].Offset
		for name, runs := range map[string][]store.Run{
			"a run read from past the stored offset":                     {other, pastGap},
			"a run read from past the batch's run before it":             {published(10, 1, t0, "instagram", "main"), pastGap},
			"a partition with no offset stored read from past its start": {part(other, 1, 4)},
			"a run out of offset order":                                  {outOfOrder},
			"a run holding an offset twice":                              {repeated},
		} {
			tx, err := s.Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Apply(t.Context(), runs); !errors.Is(err, store.ErrGap) {
				t.Errorf("%s: %v, want ErrGap", name, err)
			}
			tx.Rollback()
		}
		markers.From = 10 // 10 and 11 held no record to count
		if a := apply(t, s, markers); a.Counted != 3 || a.Next[store.TP{Topic: "pub"}] != 15 {
			t.Errorf("a run read from the stored offset past two markers: %+v, want 3 counted, at 15", a)
		}
		offs, err := s.Offsets(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if got := totals(t, s, day()); got["instagram"].Published != 13 || got["x"].Published != 0 || len(offs) != 1 {
			t.Errorf("counted %+v with offsets %v, want 13 published on instagram only", got, offs)
		}
	})
}

// TestConcurrentBatchesOfOnePartition: two transactions count the same records of a partition
// at once, as when a consumer still holds a batch of a partition the group gave to another.
// Whatever the database makes the second wait for, the records count once.
func TestConcurrentBatchesOfOnePartition(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, database string) {
		s := open(t, database)
		ctx := context.Background()
		batch := published(0, 20, t0, "x", "acme")
		first, err := s.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := first.Apply(ctx, []store.Run{batch}); err != nil {
			t.Fatal(err)
		}
		second := make(chan error, 1)
		go func() {
			tx, err := s.Begin(ctx) // SQLite: waits here for the first to end
			if err != nil {
				second <- err
				return
			}
			defer tx.Rollback()
			a, err := tx.Apply(ctx, []store.Run{batch}) // PostgreSQL: waits here on the first's rows
			if err == nil && a.Counted > 0 {
				err = fmt.Errorf("counted %d records again", a.Counted)
			}
			if err == nil {
				err = tx.Commit()
			}
			second <- err
		}()
		time.Sleep(200 * time.Millisecond) // let the second reach its wait; correct either way
		if err := first.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := <-second; err != nil && !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second transaction: %v", err)
		}
		if got := totals(t, s, day())["x"].Published; got != 20 {
			t.Errorf("published = %d, want 20", got)
		}
	})
}

func TestQueries(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, database string) {
		s := open(t, database)
		var recs []store.Record
		add := func(kind store.Kind, at time.Time, platform, profile string, delayMs int64) {
			recs = append(recs, store.Record{Offset: int64(len(recs)), Kind: kind, OccurredAt: at,
				Platform: platform, Profile: profile, DelayMs: delayMs, HasDelay: kind == store.Published && delayMs >= 0})
		}
		var exact []int64 // instagram's delays in hours 0 and 1
		for i := range 300 {
			d := int64(500 + i*i*7)
			h := t0.Add(time.Duration(i%2)*time.Hour + time.Duration(i%60)*time.Minute)
			add(store.Published, h, "instagram", fmt.Sprintf("p%d", i%3), d)
			exact = append(exact, d)
		}
		add(store.Published, t0.Add(2*time.Hour), "instagram", "p0", 999_999) // outside the range below
		add(store.Published, t0, "x", "acme", -1)                             // no delay known
		for range 4 {
			add(store.Failed, t0.Add(5*time.Minute), "x", "acme", 0)
		}
		add(store.TokenExpired, t0, "x", "acme", 0)
		add(store.TokenExpired, t0.Add(time.Hour), "instagram", "p1", 0)
		add(store.Failed, t0.Add(time.Hour), "instagram", "p2", 0)
		add(store.Failed, t0.Add(time.Hour), "instagram", "p2", 0)
		add(store.Retry, t0.Add(time.Hour), "instagram", "p2", 0)
		// Several batches, so the hours' rows are merged in the database, not in memory.
		for i := 0; i < len(recs); i += 37 {
			apply(t, s, runOf("all", recs[i:min(i+37, len(recs))]))
		}

		twoHours := store.Range{From: t0, To: t0.Add(2 * time.Hour)}
		ps, err := s.ByPlatform(context.Background(), twoHours)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 2 || ps[0].Platform != "instagram" || ps[1].Platform != "x" {
			t.Fatalf("platforms %+v", ps)
		}
		if want := (store.Counts{Published: 300, Failed: 2, TokenExpired: 1, Retries: 1}); ps[0].Counts != want {
			t.Errorf("instagram %+v, want %+v", ps[0].Counts, want)
		}
		if want := (store.Counts{Published: 1, Failed: 4, TokenExpired: 1}); ps[1].Counts != want {
			t.Errorf("x %+v, want %+v", ps[1].Counts, want)
		}
		slices.Sort(exact)
		for _, q := range []float64{0.5, 0.95} {
			got, _ := ps[0].Delays.Quantile(q)
			want := float64(exact[int(q*float64(len(exact)-1))])
			if math.Abs(got-want) > sketch.RelativeAccuracy*want {
				t.Errorf("instagram p%v = %v, want %v ±1%%", q*100, got, want)
			}
		}
		if _, ok := ps[1].Delays.Quantile(0.5); ok {
			t.Error("x has a delay percentile without any delay")
		}

		one := store.Range{From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour), Platform: "instagram"}
		if got := totals(t, s, one); len(got) != 1 || got["instagram"].Published != 150 {
			t.Errorf("one hour of instagram: %+v", got)
		}
		var hours, delays store.Hours
		var top []store.ProfileTotals
		err = s.View(context.Background(), func(v *store.View) (err error) {
			if hours, err = v.Hours(context.Background(), store.Range{From: t0, To: t0.Add(3 * time.Hour)}); err != nil {
				return err
			}
			if delays, err = v.Hours(context.Background(), store.Range{From: t0, To: t0.Add(2 * time.Hour), Platform: "instagram"}); err != nil {
				return err
			}
			top, err = v.MostTroubled(context.Background(), twoHours, 2)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var summary []string
		for _, h := range hours.Counts {
			summary = append(summary, fmt.Sprintf("%s %s %d/%d", h.Hour.Format("15"), h.Platform, h.Published, h.Failed))
		}
		if got, want := strings.Join(summary, ", "), "14 instagram 150/0, 14 x 1/4, 15 instagram 150/2, 16 instagram 1/0"; got != want {
			t.Errorf("hourly: %s, want %s", got, want)
		}
		if len(hours.Platforms) != 2 || hours.Platforms[0].Published != 301 || hours.Platforms[1].Failed != 4 {
			t.Errorf("hourly platforms: %+v", hours.Platforms)
		}
		if len(delays.Delays) != 2 || delays.Delays[0].Delays.Count() != 150 || delays.Delays[1].Delays.Count() != 150 {
			t.Errorf("hourly delays: %+v", delays.Delays)
		}
		if len(delays.Platforms) != 2 || len(delays.Counts) != 2 {
			t.Errorf("one platform's hours: every platform's totals %+v, that platform's hours %+v", delays.Platforms, delays.Counts)
		}
		if len(top) != 2 || top[0].Profile != "acme" || top[0].Failed != 4 || top[1].Profile != "p2" {
			t.Errorf("most troubled: %+v", top)
		}
	})
}

// TestBatchPastTheParameterLimit: a batch whose rows of one table take more bound
// parameters than one SQLite statement may (32766) is written in several statements, every
// row of it; here exactly two statements' worth of hourly rows, each profile its own row,
// read back from the hourly rows and from the daily rollup.
func TestBatchPastTheParameterLimit(t *testing.T) {
	const hourlyColumns = 8 // hour, platform, profile, published, failed, token expired, retries, delays
	const profiles = 2 * (30000 / hourlyColumns)
	dbtest.Run(t, func(t *testing.T, database string) {
		s := open(t, database)
		run := store.Run{TP: store.TP{Topic: "pub"}}
		for i := range profiles {
			run.Records = append(run.Records, store.Record{
				Offset: int64(i), Kind: store.Failed, OccurredAt: t0, Platform: "x", Profile: fmt.Sprintf("p%05d", i),
			})
		}
		if a := apply(t, s, run); a.Counted != profiles {
			t.Fatalf("applied %+v, want %d counted", a, profiles)
		}
		for name, r := range map[string]store.Range{"hourly rows": {From: t0, To: t0.Add(time.Hour)}, "daily rollup": day()} {
			err := s.View(t.Context(), func(v *store.View) error {
				top, err := v.MostTroubled(t.Context(), r, profiles+1)
				if err != nil {
					return err
				}
				seen := map[string]bool{}
				for _, p := range top {
					if p.Failed == 1 {
						seen[p.Profile] = true
					}
				}
				if len(seen) != profiles || len(top) != profiles {
					t.Errorf("%s: %d profiles, %d failed once, want %d", name, len(top), len(seen), profiles)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestSystem names the database as OpenTelemetry does.
func TestSystem(t *testing.T) {
	want := map[string]string{"sqlite": "sqlite", "postgres": "postgresql"}
	for _, kind := range dbtest.Kinds {
		t.Run(kind, func(t *testing.T) {
			if got := open(t, dbtest.New(t, kind)).System(); got != want[kind] {
				t.Errorf("System() = %q, want %q", got, want[kind])
			}
		})
	}
}

// TestCommitWithoutABatch: a transaction committed with no batch applied writes nothing and
// leaves the store usable.
func TestCommitWithoutABatch(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, database string) {
		s := open(t, database)
		tx, err := s.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if a := apply(t, s, published(0, 3, t0, "x", "acme")); a.Counted != 3 {
			t.Errorf("the next batch: %+v, want 3 counted", a)
		}
	})
}
