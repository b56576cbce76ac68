package spool

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats are a snapshot of the spool's state and counters.
type Stats struct {
	Records  int   // entries not yet drained
	Bytes    int64 // of the segment files
	Segments int
	// Appended counts the records spooled; Drained those the drainer got into Kafka; Dropped
	// those spooled unverified that were duplicates; Syncs the fsyncs of groups of frames.
	Appended, Drained, Dropped, Syncs uint64
}

// Stats returns the spool's state now.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	st := Stats{Records: s.count, Bytes: s.disk, Segments: len(s.segs)}
	s.mu.Unlock()
	st.Appended, st.Drained, st.Dropped, st.Syncs = s.appended.Load(), s.drained.Load(), s.dropped.Load(), s.syncs.Load()
	return st
}

// Collectors returns the spool's Prometheus series, to register once.
func (s *Spool) Collectors() []prometheus.Collector {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	return []prometheus.Collector{
		gauge("bridge_spool_records", "Records in the local spool not yet drained to Kafka.",
			func() float64 { return float64(s.Stats().Records) }),
		gauge("bridge_spool_bytes", "Bytes of the spool's segment files.",
			func() float64 { return float64(s.Stats().Bytes) }),
		gauge("bridge_spool_max_bytes", "The spool's bound, spool.max_bytes.",
			func() float64 { return float64(s.max) }),
		gauge("bridge_spool_oldest_age_seconds", "Age of the oldest record not yet drained, from its delivery's arrival; 0 when the spool is empty.",
			func() float64 {
				if at, ok := s.Oldest(); ok {
					return time.Since(at).Seconds()
				}
				return 0
			}),
		gauge("bridge_spool_kafka_down", "1 while the spool takes deliveries at once because Kafka did not take a record lately, else 0.",
			func() float64 { return b2f(s.down.Load()) }),
		counter("bridge_spool_appended_total", "Records spooled (answered \"spooled\").",
			func() float64 { return float64(s.appended.Load()) }),
		counter("bridge_spool_drained_total", "Spooled records the drainer got into Kafka: its rate is the drain rate.",
			func() float64 { return float64(s.drained.Load()) }),
		counter("bridge_spool_dropped_total", "Records spooled without a dedup reservation that turned out duplicates, dropped.",
			func() float64 { return float64(s.dropped.Load()) }),
		counter("bridge_spool_syncs_total", "Writes and fsyncs of groups of spool frames (group commit: one per group of appends).",
			func() float64 { return float64(s.syncs.Load()) }),
		s.syncSeconds,
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
