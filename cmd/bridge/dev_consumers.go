package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers/alerts"
	"github.com/socialbridge/bridge/consumers/analytics"
	"github.com/socialbridge/bridge/consumers/retries"
)

// devReadyTimeout bounds the wait for the consumers to serve their health: past it, one of
// them is stuck (each bounds its own start at 30 s and fails).
const devReadyTimeout = time.Minute

// devConsumers are the three reference consumers of dev, running in this process.
type devConsumers struct {
	// ctx ends when dev must stop: its parent ended, or a consumer failed (its cause).
	ctx       context.Context
	stop      context.CancelFunc
	group     *errgroup.Group
	dashboard string // the analytics service's address
	health    []string
}

// startDevConsumers starts the retries, alerts and analytics consumers of cfg and waits
// until the retries and alerts groups report healthy (their topics exist and their Kafka
// sessions are open) and the dashboard listens on dashboardAddr, with traces (GET /traces
// and /traces/api/traces) beside it. A consumer that fails stops the others. After an
// error other than from opening analytics, the returned value must still be waited for.
func startDevConsumers(ctx context.Context, cfg config.Config, dashboardAddr string, traces http.Handler, log *slog.Logger) (*devConsumers, error) {
	ln, err := net.Listen("tcp", dashboardAddr)
	if err != nil {
		return nil, fmt.Errorf("--dashboard-listen: %w", err)
	}
	an, err := analytics.New(ctx, cfg, log.With("part", "analytics"), analytics.WithListener(ln),
		analytics.WithRoute("GET /traces", traces), analytics.WithRoute("GET /traces/api/traces", traces))
	if err != nil {
		ln.Close()
		return nil, err
	}
	ctx, stop := context.WithCancel(ctx)
	group, gctx := errgroup.WithContext(ctx)
	d := &devConsumers{ctx: gctx, stop: stop, group: group, dashboard: an.Addr(), health: []string{
		"http://" + cfg.Consumers.Retries.Member.Listen + "/healthz",
		"http://" + cfg.Consumers.Alerts.Member.Listen + "/healthz",
	}}
	d.run("analytics", an.Run)
	d.run("retries", func(ctx context.Context) error { return retries.Run(ctx, cfg, log.With("part", "retries")) })
	d.run("alerts", func(ctx context.Context) error { return alerts.Run(ctx, cfg, log.With("part", "alerts")) })
	return d, d.ready()
}

// run runs a consumer until d.ctx ends. One that returns before is a failure, even without
// an error: dev is the whole product or nothing.
func (d *devConsumers) run(name string, f func(context.Context) error) {
	d.group.Go(func() error {
		err := f(d.ctx)
		if err == nil && d.ctx.Err() == nil {
			err = fmt.Errorf("stopped on its own")
		}
		if err != nil {
			return fmt.Errorf("%s consumer: %w", name, err)
		}
		return nil
	})
}

// ready polls the groups' /healthz until each answers 200. It returns early, with nil,
// when d.ctx ends: a consumer's failure is what wait returns.
func (d *devConsumers) ready() error {
	deadline := time.Now().Add(devReadyTimeout)
	for _, url := range d.health {
		for !answers200(d.ctx, url) {
			if d.ctx.Err() != nil {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("dev: %s did not answer 200 within %s", url, devReadyTimeout)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// answers200 tells whether url answers 200 within a second: whatever else listens there (a
// port taken by another program) must not stall the start.
func answers200(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// wait stops the consumers and waits, within ctx, until each has finished its batch and
// left its group. It returns the first consumer's failure.
func (d *devConsumers) wait(ctx context.Context) error {
	d.stop()
	done := make(chan error, 1)
	go func() { done <- d.group.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("dev: the consumers did not stop within the shutdown timeout")
	}
}
