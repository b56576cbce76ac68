package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// WaitReady waits until the bridge is ready (what /readyz answers: the dedup window rebuilt,
// Kafka reachable with its topics), for callers that run it in-process, such as integration
// tests. It returns the last reason it was not ready if ctx ends first.
func (s *Service) WaitReady(ctx context.Context) error {
	return wait(ctx, func(context.Context) error {
		if r := s.isReady(); !r.Ready {
			return fmt.Errorf("%s (%s)", r.Reason, r.Detail)
		}
		return nil
	})
}

// WaitDedup waits until the dedup store answers (the memory store's window rebuilt, or Redis
// reachable) and readiness no longer reports it; Kafka itself may still be unready. Until
// then deliveries wait for the store, at most kafka.produce_timeout, and are answered 503.
func (s *Service) WaitDedup(ctx context.Context) error {
	return wait(ctx, func(ctx context.Context) error {
		if err := s.dedup.check(ctx); err != nil {
			return err
		}
		if r := s.isReady(); !r.Ready && strings.HasPrefix(r.Reason, "dedup") {
			return errors.New(r.Reason)
		}
		return nil
	})
}

func wait(ctx context.Context, check func(context.Context) error) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		err := check(cctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %v: %w", err, ctx.Err())
		case <-t.C:
		}
	}
}
