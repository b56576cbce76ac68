package telemetry_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/socialbridge/bridge/internal/telemetry"
	"github.com/socialbridge/bridge/internal/telemetry/otlptest"
	"github.com/socialbridge/bridge/internal/testkit"
)

func TestWanted(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "otlp"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "false"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "console"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, false},
	} {
		if got := telemetry.Wanted(func(k string) string { return c.env[k] }); got != c.want {
			t.Errorf("%v: Wanted %v, want %v", c.env, got, c.want)
		}
	}
}

// clearOTEL unsets every OTEL_ variable of the test's environment for the test.
func clearOTEL(t *testing.T) {
	for _, kv := range append([]string{"OTEL_EXPORTER_OTLP_ENDPOINT=", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=", "OTEL_TRACES_EXPORTER="}, os.Environ()...) {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, "")
		}
	}
}

// TestSetupOffWithoutEndpoint: no OTLP endpoint, no tracing: no provider, no hooks, no
// tracer, and stopping is a no-op.
func TestSetupOffWithoutEndpoint(t *testing.T) {
	clearOTEL(t)
	t.Setenv("OTEL_SERVICE_NAME", "bridge-test")
	stop, err := telemetry.Setup(context.Background(), telemetry.Config{Service: "bridge", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
	if telemetry.Provider() != nil || telemetry.KafkaHooks("g") != nil || telemetry.Tracer("x") != nil {
		t.Fatal("tracing is on without an endpoint")
	}
}

// TestSetupRefusesAnUnknownProtocol: a protocol the exporter does not speak fails the start.
func TestSetupRefusesAnUnknownProtocol(t *testing.T) {
	clearOTEL(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
	if _, err := telemetry.Setup(context.Background(), telemetry.Config{Service: "bridge", Log: slog.New(slog.DiscardHandler)}); err == nil {
		t.Fatal("an unknown protocol was accepted")
	}
	if telemetry.Provider() != nil {
		t.Fatal("tracing is on after a failed setup")
	}
}

// TestSetupExportsOverHTTPProtobuf: with an endpoint, spans go over OTLP http/protobuf (the
// default), with the default service name unless OTEL_SERVICE_NAME says otherwise, the
// headers of OTEL_EXPORTER_OTLP_HEADERS, and stop flushes them.
func TestSetupExportsOverHTTPProtobuf(t *testing.T) {
	for _, name := range []string{"", "from-env"} {
		clearOTEL(t)
		recv := otlptest.New(t)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL())
		t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme")
		t.Setenv("OTEL_SERVICE_NAME", name)
		logs := &testkit.LogBuffer{}
		stop, err := telemetry.Setup(context.Background(), telemetry.Config{Service: "bridge", Version: "v9", Log: slog.New(slog.NewTextHandler(logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		_, span := telemetry.Tracer("test").Start(context.Background(), "a span")
		span.End()
		if err := stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if telemetry.Provider() != nil {
			t.Fatal("tracing still on after stop")
		}
		want := "bridge"
		if name != "" {
			want = name
		}
		spans := recv.Spans()
		if len(spans) != 1 || spans[0].Name != "a span" || spans[0].Service != want {
			t.Fatalf("OTEL_SERVICE_NAME %q: received %+v, want one span of service %s", name, spans, want)
		}
		if h := recv.Header(); h.Get("X-Tenant") != "acme" {
			t.Errorf("the export's headers: %v", h)
		}
		if logs.String() != "" {
			t.Errorf("the setup logged:\n%s", logs.String())
		}
	}
}
