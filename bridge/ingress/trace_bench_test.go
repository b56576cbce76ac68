package ingress_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/bridge/producer"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/telemetry"
)

// tracingMode is one way the ingress may trace: off is what runs without an OTLP endpoint
// (no provider: no span, hook or header); noop calls every span of the request path on a
// provider that does nothing; sampled records and exports every span (always_on, the
// batch processor, an exporter that drops what it is given); unsampled makes the spans'
// contexts but records none (always_off).
type tracingMode struct {
	name     string
	provider func() trace.TracerProvider // nil: off
}

var tracingModes = []tracingMode{
	{"off", nil},
	{"noop", func() trace.TracerProvider { return noop.NewTracerProvider() }},
	{"sampled", func() trace.TracerProvider {
		return sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithBatcher(dropExporter{}))
	}},
	{"unsampled", func() trace.TracerProvider {
		return sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithBatcher(dropExporter{}))
	}},
}

// dropExporter exports spans nowhere.
type dropExporter struct{}

func (dropExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (dropExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkTracing sends one delivery through an ingress of each tracing mode in turn, each
// timed on its own, so that the machine's load weighs on every mode alike, and reports
// each mode's median time per delivery and its ratio to off's (medians: a delivery
// preempted by another process on a shared machine takes milliseconds, and would weigh on
// a mean more than all the others). discard drops the records: the request path alone,
// the largest ratio. kafka produces them through franz-go and waits for the
// acknowledgement, with the produce spans of the Kafka hooks when tracing: on the broker of
// BRIDGE_TEST_KAFKA (scripts/test.sh), else an in-process kfake.
//
//	go test -run '^$' -bench Tracing/discard -benchtime 30000x -count 3 ./bridge/ingress/
//	KAFKA_PORT=… scripts/test.sh -run '^$' -bench Tracing/kafka -benchtime 2000x -count 3 ./bridge/ingress/
func BenchmarkTracing(b *testing.B) {
	for _, shape := range []string{"discard", "kafka"} {
		b.Run(shape, func(b *testing.B) {
			var brokers []string
			prefix := "social."
			if shape == "kafka" {
				brokers, prefix = kafkatest.Brokers(b), kafkatest.Prefix(b)
				createTopic(b, brokers, prefix+"post.published")
			}
			ingresses := make([]*benchIngress, len(tracingModes))
			for m, mode := range tracingModes {
				ingresses[m] = newBenchIngress(b, func(o *ingress.Options) {
					o.TopicPrefix = prefix
					if mode.provider != nil {
						o.Tracing.Provider = mode.provider()
					}
					if shape == "kafka" {
						o.Producer = kafkaProducer(b, brokers, o.Tracing.Provider)
					}
				})
			}
			took := make([][]time.Duration, len(tracingModes))
			for i := 0; b.Loop(); i++ {
				for k := range ingresses {
					m := (i + k) % len(ingresses) // each mode first in turn: no mode always follows another
					s := ingresses[m]
					ctx := s.request(b, i)
					start := time.Now()
					s.serve(b, ctx)
					took[m] = append(took[m], time.Since(start))
				}
			}
			off := median(took[0])
			for m, mode := range tracingModes {
				b.ReportMetric(float64(median(took[m])), mode.name+"-ns/delivery")
				if m > 0 {
					b.ReportMetric(float64(median(took[m]))/float64(off), mode.name+"/off")
				}
			}
			b.ReportMetric(0, "ns/op") // the loop runs every mode: its time is no one's
		})
	}
}

// kafkaProducer is the bridge's producer on a client of brokers, with the Kafka hooks of tp
// when it is not nil.
func kafkaProducer(b *testing.B, brokers []string, tp trace.TracerProvider) ingress.Producer {
	b.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0)}
	if tp != nil {
		restore := telemetry.Use(tp)
		opts = append(opts, telemetry.KafkaHooks("")...)
		restore()
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	return producer.New(cl, 10*time.Second)
}

func createTopic(b *testing.B, brokers []string, topic string) {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, nil, topic); err != nil {
		b.Fatal(err)
	}
}

// median is the middle of ds, which it sorts.
func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}
