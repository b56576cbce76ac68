package consumers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/consumers/internal/grouptest"
	"github.com/socialbridge/bridge/consumers/retries"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// BenchmarkTxnOffsetCommit measures the choice of TransactOptions between TxnOffsetCommit
// v5 (KIP-890 part 2: the offsets join the transaction inside TxnOffsetCommit) and a cap
// at v4 (which turns part 2 off for the whole client): transactions aborted per 1,000
// batches and batches committed per second, on the real broker, through the real Loop.
// Each batch is at most 3 records, one transaction, begun as soon as the previous one
// ended: the case where the broker may still be writing the previous transaction's
// markers. offsets_only batches produce nothing (a retries batch whose calls all
// succeeded); moves batches produce a record for each one read.
//
// retries_c1 is the retries group itself at concurrency 1 (64 records a batch), its action
// answering 200 at once (retries_c1_5ms: after 5 ms): every batch moves nothing; it
// reports records/s and, since an aborted batch's calls are made again, calls/record.
//
//	KAFKA_PORT=… scripts/test.sh -run '^$' -bench TxnOffsetCommit -benchtime 1x -count 3 ./consumers/
func BenchmarkTxnOffsetCommit(b *testing.B) {
	brokers := kafkatest.Brokers(b)
	capped := kversion.Stable()
	capped.SetMaxKeyVersion(kmsg.TxnOffsetCommit.Int16(), 4)
	for _, shape := range []string{"offsets_only", "moves", "retries_c1", "retries_c1_5ms"} {
		for _, v := range []struct {
			name     string
			versions *kversion.Versions
		}{{"v4", capped}, {"v5", kversion.Stable()}} {
			b.Run(shape+"/"+v.name, func(b *testing.B) {
				var total txnRun
				for range b.N {
					switch shape {
					case "retries_c1":
						total.add(runRetriesGroup(b, brokers, v.versions, 0, 300))
					case "retries_c1_5ms":
						total.add(runRetriesGroup(b, brokers, v.versions, 5*time.Millisecond, 100))
					default:
						total.add(runTxnBatches(b, brokers, v.versions, shape == "moves"))
					}
				}
				b.ReportMetric(float64(total.aborted)*1000/float64(total.committed+total.aborted), "aborts/1000batches")
				b.ReportMetric(float64(total.committed)/total.seconds, "batches/s")
				if total.calls > 0 {
					b.ReportMetric(float64(total.records)/total.seconds, "records/s")
					b.ReportMetric(float64(total.calls)/float64(total.records), "calls/record")
				}
			})
		}
	}
}

// runRetriesGroup runs the retries group at concurrency 1 with versions as its maximum
// request versions, its action answering after latency, until it has committed batches
// batches of 64 fresh records.
func runRetriesGroup(b *testing.B, brokers []string, versions *kversion.Versions, latency time.Duration, batches int) txnRun {
	b.StopTimer()
	prefix := kafkatest.Prefix(b)
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		calls.Add(1)
		time.Sleep(latency) // the provider's latency
	}))
	defer srv.Close()
	benchRecords = batches * 64
	produce(b, brokers, prefix, event.PostFailed, func(i int, ev *event.Event) {
		ev.Raw = []byte(`{}`)
		ev.PostID, ev.Retryable = grouptest.Str(fmt.Sprint("p", i)), new(bool)
		*ev.Retryable = true
	})
	createTopics(b, brokers, false, event.RetryTopic(prefix, 1), event.DLQTopic(prefix))
	cfg := grouptest.Parse(b, grouptest.Kafka(brokers, prefix)+fmt.Sprintf(`consumers:
  retries: {group: %q, delays: ["1m"], action: {url: %q, timeout: 5s}, concurrency: 1, listen: "127.0.0.1:0"}
`, prefix+"retries", srv.URL+"/retry/{event_id}"))
	m, err := retries.New(cfg, quiet())
	if err != nil {
		b.Fatal(err)
	}
	m.Options = append(m.Options, kgo.MaxVersions(versions))
	b.StartTimer()
	r := measure(b, brokers, func(ctx context.Context) { _ = m.Run(ctx) },
		&wait{group: prefix + "retries", topics: []string{event.Topic(prefix, event.PostFailed)}})
	b.StopTimer()
	return txnRun{
		committed: counted(m.Metrics.Transactions.WithLabelValues("committed")),
		aborted:   counted(m.Metrics.Transactions.WithLabelValues("aborted")),
		seconds:   r.seconds, records: benchRecords, calls: int(calls.Load()),
	}
}

// txnBatches is how many records a run reads, at most 3 a batch.
const txnRecords = 3000

type txnRun struct {
	committed, aborted int
	seconds            float64
	records, calls     int // of the retries group
}

func (r *txnRun) add(o txnRun) {
	r.committed += o.committed
	r.aborted += o.aborted
	r.seconds += o.seconds
	r.records += o.records
	r.calls += o.calls
}

// runTxnBatches reads txnRecords fresh records in a new group with versions as the
// client's maximum request versions, until every record is in a committed batch.
func runTxnBatches(b *testing.B, brokers []string, versions *kversion.Versions, moves bool) txnRun {
	b.StopTimer()
	prefix := kafkatest.Prefix(b)
	input, out := prefix+"in", prefix+"out"
	var rs []*kgo.Record
	for i := range txnRecords {
		rs = append(rs, &kgo.Record{Topic: input, Partition: int32(i % grouptest.Partitions), Value: []byte(fmt.Sprint(i))})
	}
	grouptest.ProduceRecords(b, brokers, rs...)
	grouptest.ProduceRecords(b, brokers, &kgo.Record{Topic: out, Value: []byte("created")})
	group := prefix + "group"
	opts := append(consumers.MemberOptions(config.Kafka{Brokers: brokers}, group, input),
		consumers.TransactOptions(group, config.Member{TransactionTimeout: config.Duration(time.Minute)})...)
	session, err := kgo.NewGroupTransactSession(append(opts, kgo.MaxVersions(versions))...)
	if err != nil {
		b.Fatal(err)
	}
	defer session.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &countingHandler{out: out, moves: moves, done: cancel}
	loop := &consumers.Loop{Session: session, Client: session.Client(), Handler: h, Holds: &consumers.Holds{}, MaxRecords: 3,
		Metrics: consumers.NewMetrics(consumers.NewRegistry(), group), Log: quiet()}
	b.StartTimer()
	start := time.Now()
	if err := loop.Run(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	h.mu.Lock()
	defer h.mu.Unlock()
	return txnRun{committed: h.committed, aborted: h.aborted, seconds: time.Since(start).Seconds()}
}

// countingHandler moves each record to out (when moves is set) and counts the batches
// until txnRecords records are committed.
type countingHandler struct {
	out                string
	moves              bool
	done               func()
	mu                 sync.Mutex
	pending            int
	records            int
	committed, aborted int
}

func (h *countingHandler) Handle(ctx context.Context, tx *consumers.Tx, fs kgo.Fetches) error {
	h.mu.Lock()
	h.pending = fs.NumRecords()
	h.mu.Unlock()
	if h.moves {
		fs.EachRecord(func(r *kgo.Record) { tx.Produce(ctx, &kgo.Record{Topic: h.out, Value: r.Value}) })
	}
	return nil
}

func (h *countingHandler) Ended(committed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !committed {
		h.aborted++
		return
	}
	h.committed++
	if h.records += h.pending; h.records >= txnRecords {
		h.done()
	}
}

func counted(c prometheus.Counter) int {
	var m dto.Metric
	_ = c.Write(&m)
	return int(m.GetCounter().GetValue())
}
