package analytics

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/socialbridge/bridge/internal/redrive"
)

// dlqEvery is how long the dashboard shows one reading of the dead-letter topic: a reading
// reads the whole topic, so a busy dashboard must not read it on every load.
const dlqEvery = 30 * time.Second

// dlqTimeout bounds one reading, so that a Kafka that does not answer delays the page by
// that much at most.
const dlqTimeout = 10 * time.Second

// dlqPanel is the dashboard's read-only panel of the retries group's dead-letter topic: its
// records by error code and by age, and how many of each were redriven.
type dlqPanel struct {
	topic string
	read  func(context.Context) (redrive.Summary, error)
	log   *slog.Logger
	mu    sync.Mutex // one reading at a time; the others wait for it and share it
	at    time.Time
	last  *dlqView
}

// dlqView is what the panel draws.
type dlqView struct {
	Topic             string
	Records, Redriven int
	Tables            []dlqTable // by error code, then by age
	Error             string     // the reading failed; the numbers, if any, are the last ones read
}

type dlqTable struct {
	ID, Head string
	Rows     []dlqRow
}

type dlqRow struct {
	Key, Label                 string
	Records, Redriven, Waiting int
}

// view returns the panel as of now: the last reading while younger than dlqEvery, else a
// new one. A failed reading is not kept: the next load tries again.
func (p *dlqPanel) view(ctx context.Context, now time.Time) *dlqView {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last != nil && now.Sub(p.at) < dlqEvery {
		return p.last
	}
	ctx, cancel := context.WithTimeout(ctx, dlqTimeout)
	defer cancel()
	s, err := p.read(ctx)
	if err != nil {
		p.log.Warn("analytics: reading the dead-letter topic for the dashboard", "topic", p.topic, "err", err)
		v := &dlqView{Topic: p.topic}
		if p.last != nil {
			*v = *p.last
		}
		v.Error = "The dead-letter topic could not be read; reload to try again."
		return v
	}
	p.last, p.at = newDLQView(p.topic, s), now
	return p.last
}

func newDLQView(topic string, s redrive.Summary) *dlqView {
	byError, byAge := dlqTable{ID: "dlq-errors", Head: "Error code"}, dlqTable{ID: "dlq-ages", Head: "Dead-lettered"}
	for _, c := range s.ByError {
		byError.Rows = append(byError.Rows, newDLQRow(c, cmp.Or(c.Key, "(no code)")))
	}
	if s.Records > 0 { // the age buckets are always there; with no record they say nothing
		for _, c := range s.ByAge {
			byAge.Rows = append(byAge.Rows, newDLQRow(c, c.Key+" ago"))
		}
	}
	return &dlqView{Topic: topic, Records: s.Records, Redriven: s.Redriven, Tables: []dlqTable{byError, byAge}}
}

func newDLQRow(c redrive.Count, label string) dlqRow {
	return dlqRow{Key: c.Key, Label: label, Records: c.Records, Redriven: c.Redriven, Waiting: c.Records - c.Redriven}
}
