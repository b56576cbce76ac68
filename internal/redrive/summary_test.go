package redrive

import (
	"reflect"
	"testing"
	"time"
)

// TestSummarize counts records by error code (most first, then by code; no code as "") and
// by age bucket (each bucket present, its lower bound included), redriven ones apart.
func TestSummarize(t *testing.T) {
	now := time.Date(2026, 5, 8, 12, 0, 0, 0, time.UTC)
	code := func(s string) *string { return &s }
	es := []Entry{
		{Error: code("timeout"), DeadLetteredAt: now.Add(-time.Minute)},
		{Error: code("timeout"), DeadLetteredAt: now.Add(-time.Hour), Redriven: true},
		{Error: code("rate_limited"), DeadLetteredAt: now.Add(-25 * time.Hour)},
		{DeadLetteredAt: now.Add(-7 * 24 * time.Hour), Redriven: true},
		{Error: code("invalid_media"), DeadLetteredAt: now.Add(-30 * 24 * time.Hour)},
	}
	got := Summarize(es, now)
	want := Summary{
		Records: 5, Redriven: 2,
		ByError: []Count{{"timeout", 2, 1}, {"", 1, 1}, {"invalid_media", 1, 0}, {"rate_limited", 1, 0}},
		ByAge:   []Count{{"< 1h", 1, 0}, {"1h – 24h", 1, 1}, {"1d – 7d", 1, 0}, {"≥ 7d", 2, 1}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Summarize:\n got %+v\nwant %+v", got, want)
	}
	if empty := Summarize(nil, now); empty.Records != 0 || len(empty.ByAge) != 4 || empty.ByError != nil {
		t.Errorf("Summarize(nil) = %+v, want zero counts in every age bucket", empty)
	}
}
