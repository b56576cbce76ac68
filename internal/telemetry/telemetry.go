// Package telemetry is the bridge's OpenTelemetry tracing: one tracer provider per process,
// set up from the standard OTEL_* environment variables (Setup), and the few pieces every
// part shares: Kafka's spans and record headers (kafka.go), client spans of the HTTP calls
// that are a record's effect (client.go). Tracing is off, and costs nothing, unless the
// environment names an OTLP endpoint (Wanted). Metrics stay on Prometheus: nothing here
// makes an OpenTelemetry meter.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Propagator is how span contexts cross processes, in HTTP and Kafka headers alike: W3C
// trace context (traceparent, tracestate). Baggage is not carried: it would let a sender's
// values into every record.
var Propagator = propagation.TraceContext{}

// current is the process's tracer provider; nil while tracing is off.
var current atomic.Pointer[providerHolder]

type providerHolder struct{ tp trace.TracerProvider }

// Provider is the process's tracer provider, or nil when tracing is off: a part that gets
// nil adds no span, no hook and no header of its own.
func Provider() trace.TracerProvider {
	if h := current.Load(); h != nil {
		return h.tp
	}
	return nil
}

// Use makes tp the process's tracer provider (nil turns tracing off) and returns what to
// call to restore the previous one. Setup calls it; tests call it with their own provider.
func Use(tp trace.TracerProvider) (restore func()) {
	var h *providerHolder
	if tp != nil {
		h = &providerHolder{tp: tp}
	}
	prev := current.Swap(h)
	return func() { current.Store(prev) }
}

// Tracer is the tracer of the instrumentation scope name (a package path), or nil when
// tracing is off. The helpers of this package take a nil tracer as "no span".
func Tracer(name string) trace.Tracer {
	tp := Provider()
	if tp == nil {
		return nil
	}
	return tp.Tracer(name)
}

// Wanted reports whether the environment (read through getenv) asks for traces: an OTLP
// endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), or
// OTEL_TRACES_EXPORTER names an exporter other than otlp (console). OTEL_SDK_DISABLED=true
// and OTEL_TRACES_EXPORTER=none turn it off whatever else is set. The OTLP exporter would
// otherwise default to localhost:4318; the bridge exports nothing unless asked to.
func Wanted(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	switch strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")) {
	case "none":
		return false
	case "", "otlp":
		return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	}
	return true
}

// Config is what Setup needs besides the environment.
type Config struct {
	// Service is the default service.name (OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override it); Version is service.version.
	Service, Version string
	Log              *slog.Logger
	// Keep, when set, is given every span as it ends, besides the OTLP export, and turns
	// tracing on even when the environment does not: `bridge dev`'s waterfall.
	Keep sdktrace.SpanExporter
}

// Setup turns tracing on for this process when the environment asks for it (Wanted) or
// c.Keep is set: spans are exported by the exporter OTEL_TRACES_EXPORTER names (otlp by
// default, over OTEL_EXPORTER_OTLP_PROTOCOL, http/protobuf by default), sampled as
// OTEL_TRACES_SAMPLER says (parentbased_always_on by default), with the resource of
// OTEL_RESOURCE_ATTRIBUTES; every other OTEL_* variable of the SDK and the exporters
// (headers, timeouts, batching, limits) applies too. It returns the function that flushes
// what is left and turns tracing off again, to call at exit. A variable the exporter cannot
// use (an unknown protocol) is an error.
func Setup(ctx context.Context, c Config) (stop func(context.Context) error, err error) {
	wanted := Wanted(os.Getenv)
	if !wanted && c.Keep == nil {
		return func(context.Context) error { return nil }, nil
	}
	var opts []sdktrace.TracerProviderOption
	if wanted {
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	if c.Keep != nil {
		opts = append(opts, sdktrace.WithSyncer(c.Keep))
	}
	res, err := newResource(ctx, c)
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(append(opts, sdktrace.WithResource(res))...)
	otel.SetErrorHandler(logErrors{c.Log})
	restore := Use(tp)
	return func(ctx context.Context) error {
		restore()
		return tp.Shutdown(ctx)
	}, nil
}

// newResource is the process's resource: service.name c.Service and service.version
// c.Version, under what OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES set, and the SDK's
// own attributes.
func newResource(ctx context.Context, c Config) (*resource.Resource, error) {
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(c.Service), semconv.ServiceVersion(c.Version)),
		resource.WithFromEnv(), // last: the environment wins
	)
	if errors.Is(err, resource.ErrPartialResource) || errors.Is(err, resource.ErrSchemaURLConflict) {
		// An unparsable OTEL_RESOURCE_ATTRIBUTES entry is dropped, the rest kept: said once.
		c.Log.Warn("tracing: part of the resource was not read", "err", err)
		return res, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return res, nil
}

// logErrors logs what the SDK cannot do (an export the collector refused, a bad sampler
// variable): tracing never fails a delivery, but it must not fail in silence either.
type logErrors struct{ log *slog.Logger }

func (l logErrors) Handle(err error) { l.log.Warn("tracing", "err", err) }
