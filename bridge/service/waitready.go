package service

import (
	"context"
	"fmt"
	"time"
)

// WaitReady waits until the bridge is ready (what /readyz answers: Kafka reachable with its
// topics, the dedup window rebuilt), for callers that run it in-process, such as integration
// tests. It returns the last reason it was not ready if ctx ends first.
func (s *Service) WaitReady(ctx context.Context) error { return wait(ctx, s.isReady) }

// WaitDedup waits until the dedup store answers: the memory store's window rebuilt, or Redis
// reachable. Until then deliveries wait for it, at most kafka.produce_timeout, and are
// answered 503.
func (s *Service) WaitDedup(ctx context.Context) error { return wait(ctx, s.dedup.ready) }

func wait(ctx context.Context, ready func() (bool, string)) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		ok, why := ready()
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
