package spool

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Scanner reads every record of topics whose timestamp is at or after since, up to their end
// when it starts, handing each to keep (dedup.Scan on the bridge's client).
type Scanner func(ctx context.Context, topics []string, since time.Time, keep func(*kgo.Record)) error

// Reconcile looks in Kafka for the entries read back at Open: a record whose first attempt
// was in doubt, or that the drainer had handed to Kafka, when the process stopped may be there
// already. It reads their topics from the arrival of the oldest of them (a record's timestamp
// is its delivery's arrival), marks those found done and lets the drainer produce the others.
// Until it has succeeded, the entries read back stay in the spool, and their sources' later
// ones behind them.
func (s *Spool) Reconcile(ctx context.Context, scan Scanner) error {
	its := s.recoveredItems()
	if len(its) == 0 {
		return nil
	}
	byKey := make(map[hkey]*item, len(its))
	topics := map[string]bool{}
	since := int64(0)
	for _, it := range its {
		rec, err := s.read(it)
		if err != nil {
			return fmt.Errorf("spool: reconcile: %w", err)
		}
		byKey[it.key] = it
		topics[rec.Topic] = true
		if since == 0 || it.at < since {
			since = it.at
		}
	}
	found := map[*item]bool{}
	err := scan(ctx, keys(topics), time.Unix(0, since), func(rec *kgo.Record) {
		source, key := identity(rec)
		if it := byKey[s.hash.key(source, key)]; it != nil {
			found[it] = true
		}
	})
	if err != nil {
		return fmt.Errorf("spool: reconcile with kafka: %w", err)
	}
	s.reconciled(its, found)
	return nil
}

func (s *Spool) recoveredItems() []*item {
	s.mu.Lock()
	defer s.mu.Unlock()
	var its []*item
	for _, q := range s.queues {
		for _, it := range q.items {
			if it.state == recovered {
				its = append(its, it)
			}
		}
	}
	return its
}

func (s *Spool) reconciled(its []*item, found map[*item]bool) {
	s.mu.Lock()
	var in []*item
	for _, it := range its {
		switch {
		case it.state != recovered:
		case found[it]:
			in = append(in, it)
		default:
			it.state = ready
		}
	}
	s.ackLocked(in...)
	s.mu.Unlock()
	s.log.Info("spool: reconciled the records read back with kafka", "records", len(its), "in_kafka_already", len(in))
	signal(s.drainable)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
