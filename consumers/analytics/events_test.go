package analytics

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/socialbridge/bridge/consumers/analytics/sketch"
	"github.com/socialbridge/bridge/consumers/analytics/store"
	"github.com/socialbridge/bridge/event"
)

// hour0 is the first hour of the tests' events.
var hour0 = time.Date(2026, 5, 8, 10, 0, 0, 0, time.UTC)

var testPlatforms = []string{"instagram", "tiktok", "youtube"}

// knownEvents returns n events of the four counted types, spread over hours hours from hour0,
// the platforms and five profiles each, with publish delays from under a second to hours.
// Some name no platform, some published ones no schedule (no delay). seed makes them
// different per call and the same per seed.
func knownEvents(n, hours int, seed uint64) []event.Event {
	rng := rand.New(rand.NewPCG(seed, 99))
	out := make([]event.Event, n)
	for i := range out {
		ev := &out[i]
		ev.ID = fmt.Sprintf("evt_%d_%d", seed, i)
		ev.Source, ev.Provider = "codivupload", "codivupload"
		ev.OccurredAt = hour0.Add(time.Duration(rng.Int64N(int64(hours) * int64(time.Hour)))).Truncate(time.Millisecond)
		ev.ReceivedAt = ev.OccurredAt.Add(time.Second)
		ev.PostID = ptr(fmt.Sprintf("post_%d", i))
		if rng.IntN(50) > 0 {
			ev.Platform = ptr(testPlatforms[rng.IntN(len(testPlatforms))])
		}
		ev.ProfileName = ptr(fmt.Sprintf("profile-%d", rng.IntN(5)))
		ev.Raw = []byte(`{"id":"` + ev.ID + `"}`)
		switch r := rng.IntN(10); {
		case r < 6:
			ev.Type = event.PostPublished
			published(ev, rng)
		case r < 8:
			ev.Type = event.PostFailed
			ev.ErrorCode = ptr("rate_limited")
		case r < 9:
			ev.Type = event.PostTokenExpired
		default:
			ev.Type = event.PostRetry
			ev.Attempt = ptr(int32(2))
		}
	}
	return out
}

func published(ev *event.Event, rng *rand.Rand) {
	ev.PublishedAt = ptr(ev.OccurredAt)
	if rng.IntN(20) == 0 {
		return // no schedule known: counted, but no delay
	}
	delay := time.Duration(math.Exp(rng.NormFloat64()*2+9)) * time.Millisecond // median ~8 s, tail of hours
	if rng.IntN(30) == 0 {
		delay = -time.Minute // published early
	}
	ev.ScheduledAt = ptr(ev.OccurredAt.Add(-delay))
}

func ptr[T any](v T) *T { return &v }

func platformOf(ev *event.Event) string {
	if ev.Platform == nil {
		return Unknown
	}
	return *ev.Platform
}

// expectation is what the aggregates of some events must say, computed from the events
// directly.
type expectation struct {
	counts map[string]store.Counts // by platform
	delays map[string][]int64      // by platform, sorted
}

func expect(events []event.Event) expectation {
	e := expectation{counts: map[string]store.Counts{}, delays: map[string][]int64{}}
	for i := range events {
		ev := &events[i]
		p := platformOf(ev)
		c := e.counts[p]
		switch ev.Type {
		case event.PostPublished:
			c.Published++
			if ev.ScheduledAt != nil {
				e.delays[p] = append(e.delays[p], ev.PublishedAt.Sub(*ev.ScheduledAt).Milliseconds())
			}
		case event.PostFailed:
			c.Failed++
		case event.PostTokenExpired:
			c.TokenExpired++
		case event.PostRetry:
			c.Retries++
		}
		e.counts[p] = c
	}
	for _, d := range e.delays {
		slices.Sort(d)
	}
	return e
}

// exactPercentile is the value at rank ⌊q·(n−1)⌋ of sorted, with delays below zero as zero
// (published early), which is what the sketch approximates.
func exactPercentile(sorted []int64, q float64) float64 {
	return float64(max(0, sorted[int(q*float64(len(sorted)-1))]))
}

// closeTo reports whether got is within the sketch's relative error of want, plus half a
// millisecond for the answer's rounding to whole milliseconds.
func closeTo(got, want float64) bool {
	return math.Abs(got-want) <= sketch.RelativeAccuracy*want+0.5
}

// checkStore compares the aggregates of the whole test range with e: counts exactly, the
// number of delays exactly, p50 and p95 within the relative error.
func checkStore(t *testing.T, s *store.Store, e expectation) {
	t.Helper()
	ps, err := s.ByPlatform(t.Context(), store.Range{From: hour0.Add(-24 * time.Hour), To: hour0.Add(30 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.PlatformTotals{}
	for _, p := range ps {
		got[p.Platform] = p
	}
	for name, want := range e.counts {
		if got[name].Counts != want {
			t.Errorf("%s: counted %+v, want %+v", name, got[name].Counts, want)
		}
	}
	for name, p := range got {
		if _, ok := e.counts[name]; !ok {
			t.Errorf("counted platform %q, which no event names: %+v", name, p.Counts)
		}
		if want := int64(len(e.delays[name])); p.Delays.Count() != want {
			t.Errorf("%s: %d delays, want %d", name, p.Delays.Count(), want)
		}
		for _, q := range []float64{0.5, 0.95} {
			if v, ok := p.Delays.Quantile(q); ok && !closeTo(v, exactPercentile(e.delays[name], q)) {
				t.Errorf("%s: p%.0f = %.1f ms, want %.0f ±1%%", name, 100*q, v, exactPercentile(e.delays[name], q))
			}
		}
	}
}
