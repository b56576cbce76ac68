package service

import (
	"context"
	"fmt"
	"time"
)

// WaitReady waits until the bridge is ready (what /readyz answers: Kafka reachable with its
// topics, the dedup window rebuilt), for callers that run it in-process, such as integration
// tests. It returns the last reason it was not ready if ctx ends first.
func (s *Service) WaitReady(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		ok, why := s.isReady()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %s: %w", why, ctx.Err())
		case <-t.C:
		}
	}
}
