package service

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/socialbridge/bridge/bridge/producer"
)

// readyEvery is how often readiness is checked; /readyz answers from the last check so a
// probe storm never reaches Kafka.
const readyEvery = 2 * time.Second

func (s *Service) isReady() (bool, string) {
	if ok, why := s.dedup.ready(); !ok {
		return false, why
	}
	r := s.ready.Load()
	if r == nil {
		return false, "not checked yet"
	}
	return r.ok, r.why
}

func (s *Service) watchReadiness(ctx context.Context) {
	s.checkReady(ctx)
	s.watcher.Add(1)
	go func() {
		defer s.watcher.Done()
		t := time.NewTicker(readyEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.checkReady(ctx)
			}
		}
	}()
}

func (s *Service) checkReady(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, readyEvery)
	defer cancel()
	missing, err := producer.MissingTopics(ctx, s.adm, s.cfg.Kafka.TopicPrefix)
	r := &readiness{ok: err == nil && len(missing) == 0}
	switch {
	case err != nil:
		r.why = fmt.Sprintf("kafka unreachable: %v", err)
	case len(missing) > 0:
		r.why = "topics missing: " + strings.Join(missing, ", ")
	}
	if prev := s.ready.Load(); prev == nil || prev.ok != r.ok {
		s.log.Info("readiness changed", "ready", r.ok, "reason", r.why)
	}
	s.ready.Store(r)
}
