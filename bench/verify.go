package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/event"
)

// ledger is what the bridge answered for each event id over a run's phases.
type ledger map[string]*answers

type answers struct {
	typ                           string
	accepted, duplicate, rejected int
}

// add records a phase's answers for its deliveries.
func (l ledger) add(ds []delivery, run *loadRun) {
	for i, r := range run.results {
		if r.outcome == notSent {
			continue
		}
		a := l[ds[i].id]
		if a == nil {
			a = &answers{typ: ds[i].typ}
			l[ds[i].id] = a
		}
		switch r.outcome {
		case accepted:
			a.accepted++
		case duplicate:
			a.duplicate++
		default:
			a.rejected++
		}
	}
}

// stored is what the run's topics hold: the topics of each key, and the quarantined records,
// the hostile phase's apart.
type stored struct {
	topics            map[string][]string
	records           int
	deadletter        int
	hostileDeadletter int
	batches           batchStats // the record batches read
}

// batchCounter counts the record batches a read-back fetches and their records.
type batchCounter struct{ batches, records atomic.Int64 }

func (c *batchCounter) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	c.batches.Add(1)
	c.records.Add(int64(m.NumRecords))
}

// readTopics reads every record of the bridge's topics under prefix, from the start to the
// end offsets of the moment it is called.
func readTopics(ctx context.Context, brokers []string, prefix string) (*stored, error) {
	topics := event.Topics(prefix)
	s := &stored{topics: map[string][]string{}}
	var counter batchCounter
	defer func() { s.batches = batchStats{int(counter.batches.Load()), int(counter.records.Load())} }()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond),
		kgo.WithHooks(&counter))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	left, err := unread(ctx, kadm.NewClient(cl), topics)
	if err != nil {
		return nil, err
	}
	for len(left) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading back %d partitions not finished: %w", len(left), err)
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			return nil, fmt.Errorf("reading back %s[%d]: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			s.records++
			switch {
			case r.Topic == prefix+event.QuarantineSuffix && header(r, "source") == hostileSource:
				s.hostileDeadletter++
			case r.Topic == prefix+event.QuarantineSuffix:
				s.deadletter++
			default:
				s.topics[string(r.Key)] = append(s.topics[string(r.Key)], r.Topic)
			}
			tp := partition{r.Topic, r.Partition}
			if end, ok := left[tp]; ok && r.Offset >= end-1 {
				delete(left, tp)
			}
		})
	}
	return s, nil
}

type partition struct {
	topic string
	n     int32
}

// unread returns the end offset of every partition of topics that holds records.
func unread(ctx context.Context, adm *kadm.Client, topics []string) (map[partition]int64, error) {
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets: %w", err)
	}
	left := map[partition]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(o.Topic, o.Partition); !ok || o.Offset > s.Offset {
			left[partition{o.Topic, o.Partition}] = o.Offset
		}
	})
	return left, nil
}

// Verification is the check of a run's answers against what Kafka holds.
type Verification struct {
	IDsSent            int      `json:"ids_sent"`
	HostileQuarantined int      `json:"hostile_quarantined"`
	IDsAnswered        int      `json:"ids_answered_200"`
	RecordsRead        int      `json:"records_read"`
	Mismatches         int      `json:"mismatches"`
	Examples           []string `json:"examples,omitempty"`
	Passed             bool     `json:"passed"`
	TopicsPrefix       string   `json:"topic_prefix"`
}

const maxExamples = 10

// verify checks that every id answered 200 (accepted or duplicate) is in Kafka exactly
// once, in the topic of its type; that no id is in Kafka twice or without having been
// sent; that no id was answered "accepted" twice; and that nothing was quarantined, since
// every delivery sent was valid (the hostile phase's bodies, from a source of their own, are
// quarantined by design).
func verify(l ledger, s *stored, prefix string) Verification {
	v := Verification{IDsSent: len(l), RecordsRead: s.records, TopicsPrefix: prefix, HostileQuarantined: s.hostileDeadletter}
	var bad []string
	for id, a := range l {
		got := s.topics[id]
		if a.accepted+a.duplicate > 0 {
			v.IDsAnswered++
		}
		switch {
		case a.accepted > 1:
			bad = append(bad, fmt.Sprintf("%s: answered accepted %d times", id, a.accepted))
		case a.accepted+a.duplicate > 0 && len(got) == 0:
			bad = append(bad, fmt.Sprintf("%s: answered 200 (%d accepted, %d duplicate) but not in Kafka", id, a.accepted, a.duplicate))
		case len(got) > 1:
			bad = append(bad, fmt.Sprintf("%s: in Kafka %d times (%s)", id, len(got), strings.Join(got, ", ")))
		case len(got) == 1 && got[0] != event.Topic(prefix, a.typ):
			bad = append(bad, fmt.Sprintf("%s: a %s in topic %s", id, a.typ, got[0]))
		}
	}
	for id := range s.topics {
		if l[id] == nil {
			bad = append(bad, fmt.Sprintf("%s: in Kafka but never sent", id))
		}
	}
	if s.deadletter > 0 {
		bad = append(bad, fmt.Sprintf("%d records quarantined in %s%s, none expected", s.deadletter, prefix, event.QuarantineSuffix))
	}
	sort.Strings(bad)
	v.Mismatches, v.Passed = len(bad), len(bad) == 0
	v.Examples = bad[:min(len(bad), maxExamples)]
	return v
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
