package consumers_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers/alerts"
	"github.com/socialbridge/bridge/consumers/internal/grouptest"
	"github.com/socialbridge/bridge/consumers/retries"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// The throughput of each group against a bare franz-go group consumer reading the same
// topic in the same run (records/s, and this process's CPU per 1,000 records). Run on the
// real broker, one iteration each, several rounds: make bench-consumers.
//
//	go test -run '^$' -bench Consumers -benchtime 1x -count 5 ./consumers/
//
// The group's own topics (retry, dead-letter, keyed, state) are created before the clock
// starts, as they are at every start but the first: creating topics is a one-time cost of
// the broker, not throughput. The clock then covers the group's whole start (clients, the
// group join, for alerts the state load) and its run until its committed offsets cover
// every record, as it covers the bare consumer's.

// Records per benchmark: each group runs for seconds, not milliseconds.
const (
	retriesRecords = 20000
	alertsRecords  = 100000
)

var benchRecords int // of the running benchmark

// BenchmarkConsumersRetries: every record is a retryable failure; the action answers 200
// at once. The second baseline is a bare consumer that makes the same call per record, 32
// at a time, and commits per poll: the least any consumer with this effect does.
func BenchmarkConsumersRetries(b *testing.B) {
	brokers, prefix := kafkatest.Brokers(b), kafkatest.Prefix(b)
	benchRecords = retriesRecords
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	produce(b, brokers, prefix, event.PostFailed, func(i int, ev *event.Event) {
		ev.PostID, ev.Retryable = grouptest.Str(fmt.Sprint("p", i)), new(bool)
		*ev.Retryable = true
	})
	input := event.Topic(prefix, event.PostFailed)
	createTopics(b, brokers, false, event.RetryTopic(prefix, 1), event.DLQTopic(prefix))
	bare := measure(b, brokers, func(ctx context.Context) { bareConsume(b, brokers, prefix+"bare", input, nil) }, nil)
	// Connections kept for all 32 calls in flight, as the group keeps them: net/http's
	// default keeps 2 per host and would make the baseline open a connection per call.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 32
	client := &http.Client{Transport: transport}
	defer transport.CloseIdleConnections()
	withCalls := measure(b, brokers, func(ctx context.Context) {
		bareConsume(b, brokers, prefix+"bare-calls", input, func(r *kgo.Record) {
			resp, err := client.Post(srv.URL+"/retry/"+string(r.Key), "", http.NoBody)
			if err == nil {
				resp.Body.Close()
			}
		})
	}, nil)
	cfg := grouptest.Parse(b, grouptest.Kafka(brokers, prefix)+fmt.Sprintf(`consumers:
  retries: {group: %q, delays: ["1m"], action: {url: %q, timeout: 5s}, listen: "127.0.0.1:0", instance_id: "bench"}
`, prefix+"retries", srv.URL+"/retry/{event_id}"))
	group := measure(b, brokers, func(ctx context.Context) { _ = retries.Run(ctx, cfg, quiet()) },
		&wait{group: prefix + "retries", topics: []string{input}})
	report(b, "retries", bare, withCalls, group)
}

// BenchmarkConsumersAlerts: every record is a token expiry of one profile inside the
// cool-down (the first one alerts).
func BenchmarkConsumersAlerts(b *testing.B) {
	brokers, prefix := kafkatest.Brokers(b), kafkatest.Prefix(b)
	benchRecords = alertsRecords
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	produce(b, brokers, prefix, event.PostTokenExpired, func(_ int, ev *event.Event) {
		ev.ProfileName, ev.Platform = grouptest.Str("brand"), grouptest.Str("instagram")
	})
	input := event.Topic(prefix, event.PostTokenExpired)
	createTopics(b, brokers, false, event.Topic(prefix, event.PostPublished), alerts.Keyed(prefix), alerts.DLQ(prefix))
	createTopics(b, brokers, true, alerts.State(prefix))
	bare := measure(b, brokers, func(ctx context.Context) { bareConsume(b, brokers, prefix+"bare", input, nil) }, nil)
	cfg := grouptest.Parse(b, grouptest.Kafka(brokers, prefix)+fmt.Sprintf(`consumers:
  alerts: {group: %q, cooldown: 6h, slack_webhook_url: %q, listen: "127.0.0.1:0", instance_id: "bench"}
`, prefix+"alerts", srv.URL))
	group := measure(b, brokers, func(ctx context.Context) { _ = alerts.Run(ctx, cfg, quiet()) },
		&wait{group: prefix + "alerts", topics: []string{input, alerts.Keyed(prefix)}})
	report(b, "alerts", bare, run{}, group)
}

func produce(b *testing.B, brokers []string, prefix, typ string, fill func(int, *event.Event)) {
	var evs []*event.Event
	for i := range benchRecords {
		evs = append(evs, grouptest.Event(typ, fmt.Sprintf("evt_%06d", i), func(ev *event.Event) {
			ev.Raw = make([]byte, 600) // the size of a typical webhook body
			fill(i, ev)
		}))
	}
	for p := range grouptest.Partitions {
		grouptest.Produce(b, brokers, prefix, int32(p), evs[p*len(evs)/grouptest.Partitions:(p+1)*len(evs)/grouptest.Partitions]...)
	}
}

// createTopics creates topics with grouptest.Partitions partitions, compacted when compact is
// set, and waits until the cluster shows them.
func createTopics(b *testing.B, brokers []string, compact bool, topics ...string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var configs map[string]*string
	if compact {
		policy := "compact"
		configs = map[string]*string{"cleanup.policy": &policy}
	}
	if _, err := adm.CreateTopics(ctx, grouptest.Partitions, -1, configs, topics...); err != nil {
		b.Fatal(err)
	}
	for {
		details, err := adm.ListTopics(ctx, topics...)
		if err == nil && details.Error() == nil && len(details) == len(topics) {
			return
		}
		if ctx.Err() != nil {
			b.Fatalf("topics %v not visible: %v", topics, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// run is one measured consumption of the records.
type run struct {
	seconds, cpu float64
}

func (r run) rate() float64       { return float64(benchRecords) / r.seconds }
func (r run) cpuPer1000() float64 { return r.cpu / float64(benchRecords) * 1000 }

// wait says when a group has consumed everything: its committed offsets of topics each sum
// to the number of records.
type wait struct {
	group  string
	topics []string
}

// measure runs consume until it returns (w nil) or w says it is done, and returns the time
// and the CPU this process used.
func measure(b *testing.B, brokers []string, consume func(context.Context), w *wait) run {
	ctx, cancel := context.WithCancel(context.Background())
	cpu0, start := cpuSeconds(), time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); consume(ctx) }()
	if w != nil {
		w.until(b, brokers)
	} else {
		wg.Wait()
	}
	r := run{seconds: time.Since(start).Seconds(), cpu: cpuSeconds() - cpu0}
	cancel()
	wg.Wait()
	return r
}

func (w *wait) until(b *testing.B, brokers []string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the measurement's resolution
		offs, err := adm.FetchOffsets(context.Background(), w.group)
		if err != nil {
			continue
		}
		done := true
		for _, t := range w.topics {
			var sum int64
			for _, o := range offs[t] {
				sum += o.At
			}
			done = done && sum >= int64(benchRecords)
		}
		if done {
			return
		}
	}
	b.Fatalf("group %s did not consume %d records in 5 minutes", w.group, benchRecords)
}

// bareConsume reads topic in a new group with franz-go alone until it has every record,
// doing effect (when set) for each, 32 at a time, committing after each poll.
func bareConsume(b *testing.B, brokers []string, group, topic string, effect func(*kgo.Record)) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	for n := 0; n < benchRecords; {
		fs := cl.PollFetches(context.Background())
		if effect != nil {
			sem := make(chan struct{}, 32)
			var wg sync.WaitGroup
			fs.EachRecord(func(r *kgo.Record) {
				sem <- struct{}{}
				wg.Add(1)
				go func() { defer func() { <-sem; wg.Done() }(); effect(r) }()
			})
			wg.Wait()
		}
		n += fs.NumRecords()
		if err := cl.CommitUncommittedOffsets(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func report(b *testing.B, name string, bare, withCalls, group run) {
	b.ReportMetric(bare.rate(), "bare_records/s")
	b.ReportMetric(group.rate(), name+"_records/s")
	b.ReportMetric(group.rate()/bare.rate(), "ratio")
	b.ReportMetric(bare.cpuPer1000()*1000, "bare_cpu_ms/1000")
	b.ReportMetric(group.cpuPer1000()*1000, name+"_cpu_ms/1000")
	if withCalls.seconds > 0 {
		b.ReportMetric(withCalls.rate(), "bare_with_calls_records/s")
		b.ReportMetric(group.rate()/withCalls.rate(), "ratio_to_bare_with_calls")
		b.ReportMetric(withCalls.cpuPer1000()*1000, "bare_with_calls_cpu_ms/1000")
	}
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(discard{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
