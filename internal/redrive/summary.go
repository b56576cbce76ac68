package redrive

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// Summary is the dead-letter topic at a glance, for a dashboard's read-only panel: its
// records by the failed post's error code and by age, and how many of each were redriven.
type Summary struct {
	Records  int     `json:"records"`
	Redriven int     `json:"redriven"`
	ByError  []Count `json:"by_error"` // most records first; Key "" for records without a code
	ByAge    []Count `json:"by_age"`   // AgeBuckets, youngest first, each present
}

// Count is the records of one error code or one age bucket.
type Count struct {
	Key      string `json:"key"`
	Records  int    `json:"records"`
	Redriven int    `json:"redriven"`
}

// AgeBuckets are the ages Summary counts records by: dead-lettered less than Under before
// now (the last bucket takes the rest).
var AgeBuckets = []struct {
	Key   string
	Under time.Duration
}{
	{"< 1h", time.Hour},
	{"1h – 24h", 24 * time.Hour},
	{"1d – 7d", 7 * 24 * time.Hour},
	{"≥ 7d", 0},
}

// Summarize counts es as of now.
func Summarize(es []Entry, now time.Time) Summary {
	s := Summary{ByAge: make([]Count, len(AgeBuckets))}
	for i, b := range AgeBuckets {
		s.ByAge[i].Key = b.Key
	}
	byError := map[string]*Count{}
	for i := range es {
		e := &es[i]
		code := ""
		if e.Error != nil {
			code = *e.Error
		}
		c := byError[code]
		if c == nil {
			c = &Count{Key: code}
			byError[code] = c
		}
		add(&s.Records, &s.Redriven, e.Redriven)
		add(&c.Records, &c.Redriven, e.Redriven)
		b := &s.ByAge[ageBucket(now.Sub(e.DeadLetteredAt))]
		add(&b.Records, &b.Redriven, e.Redriven)
	}
	for _, c := range byError {
		s.ByError = append(s.ByError, *c)
	}
	slices.SortFunc(s.ByError, func(a, b Count) int { return cmp.Or(cmp.Compare(b.Records, a.Records), cmp.Compare(a.Key, b.Key)) })
	return s
}

func add(records, redriven *int, done bool) {
	*records++
	if done {
		*redriven++
	}
}

func ageBucket(age time.Duration) int {
	for i, b := range AgeBuckets[:len(AgeBuckets)-1] {
		if age < b.Under {
			return i
		}
	}
	return len(AgeBuckets) - 1
}

// Summary reads the dead-letter topic and summarizes it as of now: what a dashboard's
// panel shows. It reads the whole topic; a caller serving it often should keep the answer
// for a while.
func (d *DLQ) Summary(ctx context.Context) (Summary, error) {
	es, err := d.List(ctx, Filter{})
	if err != nil {
		return Summary{}, err
	}
	return Summarize(es, d.now()), nil
}
