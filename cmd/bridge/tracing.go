package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/socialbridge/bridge/internal/telemetry"
)

// tracingFlushTimeout bounds the export of the spans still held at exit.
const tracingFlushTimeout = 5 * time.Second

// startTracing turns tracing on when the OTEL_* environment asks for it (docs/tracing.md),
// with service as the default service.name, and returns what to defer: it exports the spans
// still held and turns tracing off.
func startTracing(ctx context.Context, service string, log *slog.Logger) (stop func(), err error) {
	return startTracingWith(ctx, telemetry.Config{Service: service, Version: version(), Log: log})
}

func startTracingWith(ctx context.Context, c telemetry.Config) (stop func(), err error) {
	end, err := telemetry.Setup(ctx, c)
	if err != nil {
		return nil, err
	}
	if telemetry.Provider() != nil {
		c.Log.Info("tracing on", "service", c.Service)
	}
	return func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingFlushTimeout)
		defer cancel()
		if err := end(fctx); err != nil {
			c.Log.Warn("tracing: the last spans were not all exported", "err", err)
		}
	}, nil
}
