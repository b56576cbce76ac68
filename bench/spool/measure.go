package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/producer"
	"github.com/socialbridge/bridge/bridge/spool"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/topics"
)

const source = "bench"

// records makes the spool's records: a source header and unique key, as the ingress's, with
// an incompressible value (lz4 would shrink a repeated one to nothing).
type records struct {
	topic string
	size  int
	n     atomic.Uint64
}

func (r *records) next() *kgo.Record {
	n := r.n.Add(1)
	value := make([]byte, r.size)
	rng := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)})
	rng.Read(value)
	now := time.Now()
	return &kgo.Record{
		Topic: r.topic, Key: fmt.Appendf(nil, "evt_%09d", n), Value: value, Timestamp: now,
		Headers: []kgo.RecordHeader{
			{Key: "event-type", Value: []byte(event.PostPublished)},
			{Key: "source", Value: []byte(source)},
			{Key: "provider", Value: []byte("postiz")},
			{Key: "received-at", Value: now.UTC().AppendFormat(nil, time.RFC3339Nano)},
		},
	}
}

func openSpool(dir string) (*spool.Spool, string, error) {
	sub, err := os.MkdirTemp(dir, "spool-bench-")
	if err != nil {
		return nil, "", err
	}
	s, err := spool.Open(sub, spool.Options{MaxBytes: 8 << 30, Sources: []string{source}})
	return s, sub, err
}

// fill appends n records from writers goroutines and returns the rate.
func fill(s *spool.Spool, recs *records, n, writers int) (float64, error) {
	var left atomic.Int64
	left.Store(int64(n))
	errs := make(chan error, writers)
	start := time.Now()
	for range writers {
		go func() {
			for left.Add(-1) >= 0 {
				if err := s.Append(recs.next()); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// appendRates measures appends per second at several numbers of appenders, for 3 s each.
func appendRates(o options) (string, error) {
	var rows []string
	for _, writers := range []int{1, 16, 64, 256} {
		s, dir, err := openSpool(o.dir)
		if err != nil {
			return "", err
		}
		recs := &records{topic: "social.post.published", size: o.size}
		var count atomic.Int64
		deadline := time.Now().Add(3 * time.Second)
		var wg sync.WaitGroup
		var failed atomic.Value
		start := time.Now()
		for range writers {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					if err := s.Append(recs.next()); err != nil {
						failed.Store(err)
						return
					}
					count.Add(1)
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		st := s.Stats()
		s.Close()
		os.RemoveAll(dir)
		if err, _ := failed.Load().(error); err != nil {
			return "", err
		}
		rows = append(rows, fmt.Sprintf("| %d | %.0f | %d | %.1f |", writers, float64(count.Load())/elapsed.Seconds(), st.Syncs, float64(count.Load())/float64(st.Syncs)))
	}
	return "Appends, each durable (written and fsynced) before it returns, for 3 s at each number of\nappenders waiting at once:\n\n" +
		"| appenders | appends/s | fsyncs | appends per fsync |\n|--:|--:|--:|--:|\n" + strings.Join(rows, "\n") + "\n", nil
}

// localDrain times the spool's own share of a drain: read back, handed to a producer that
// acknowledges at once, acked, reclaimed.
func localDrain(o options) (string, error) {
	const n = 200_000
	s, dir, err := openSpool(o.dir)
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	defer s.Close()
	before := heap()
	if _, err := fill(s, &records{topic: "social.post.published", size: o.size}, n, 256); err != nil {
		return "", err
	}
	perRecord := float64(heap()-before) / n
	took := drainAll(s, ackAll{})
	return fmt.Sprintf("The spool's share of a drain (%d records read back in order, handed to a producer that\nacknowledges at once, acknowledged in the spool and their segments deleted): **%.0f records/s**.\n"+
		"Memory the spool holds per record not yet drained (its index entry; the record itself is on disk): %.0f bytes\n(heap after GC, %d records).\n",
		n, float64(n)/took.Seconds(), perRecord, n), nil
}

// heap is the live heap after a collection.
func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

type ackAll struct{}

func (ackAll) TryProduce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	promise(r, nil)
}

// drainAll runs s's drainer on p until s is empty and reclaimed, and returns how long it took.
func drainAll(s *spool.Spool, p spool.Producer) time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() { s.Drain(ctx, p, spool.DrainOptions{}); close(done) }()
	for st := s.Stats(); st.Records > 0 || st.Segments > 1; st = s.Stats() {
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	cancel()
	<-done
	return took
}

// kafkaDrain fills a spool with o.records records and drains it into the broker with the
// bridge's drainer client, then checks the topic holds them all.
func kafkaDrain(ctx context.Context, o options) (string, error) {
	cfg := config.Default()
	cfg.Kafka.Brokers = []string{o.brokers}
	cfg.Kafka.TopicPrefix = fmt.Sprintf("spoolbench%d.", time.Now().UnixNano()%1e9)
	cfg.Kafka.ReplicationFactor, cfg.Kafka.Partitions = 1, 6
	cfg.Sources = []config.Source{{Name: source, Provider: "postiz", Secrets: []string{"0e1d2c3b4a5968778695a4b3c2d1e0f9"}}}
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	k := cfg.Kafka
	cl, err := kgo.NewClient(producer.DrainOptions(k)...)
	if err != nil {
		return "", err
	}
	defer cl.Close()
	topic := event.Topic(k.TopicPrefix, event.PostPublished)
	tctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := topics.Ensure(tctx, cl, k, nil, topics.Events(k.TopicPrefix)...); err != nil {
		return "", err
	}
	defer kadm.NewClient(cl).DeleteTopics(context.Background(), event.Topics(k.TopicPrefix)...)
	s, dir, err := openSpool(o.dir)
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	defer s.Close()
	fillRate, err := fill(s, &records{topic: topic, size: o.size}, o.records, 256)
	if err != nil {
		return "", err
	}
	bytes := s.Stats().Bytes
	took := drainAll(s, cl)
	got, err := endOffsets(ctx, cl, topic)
	if err != nil {
		return "", err
	}
	if got != int64(o.records) {
		return "", fmt.Errorf("drained %d records, the topic holds %d", o.records, got)
	}
	return fmt.Sprintf("A spool of %d records (%d MiB, filled at %.0f appends/s by 256 appenders) drained into\nKafka (one broker on loopback, 6 partitions, lz4, acks=all, idempotent) by the bridge's drainer client, in\nbatches of up to 1,024 records: **%s, %.0f records/s**; the topic then held all %d.\n",
		o.records, bytes>>20, fillRate, took.Round(100*time.Millisecond), float64(o.records)/took.Seconds(), got), nil
}

func endOffsets(ctx context.Context, cl *kgo.Client, topic string) (int64, error) {
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n, ends.Error()
}

// idleCost runs BenchmarkSpoolIdle (bridge/ingress) o.rounds times and reports the medians of
// its figures over the runs.
func idleCost(ctx context.Context, o options) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkSpoolIdle$", "-benchtime", "2s",
		"-count", strconv.Itoa(o.rounds), "./bridge/ingress/").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("BenchmarkSpoolIdle: %v\n%s", err, out)
	}
	m := parseMetrics(out)
	if len(m["idle/none"]) != o.rounds {
		return "", fmt.Errorf("BenchmarkSpoolIdle: %d runs read of %d:\n%s", len(m["idle/none"]), o.rounds, out)
	}
	return fmt.Sprintf("The request path with a spool idle (the source spools, the spool is empty, Kafka up) against\n"+
		"the same source without one: `BenchmarkSpoolIdle` (bridge/ingress), a signed CodivUpload delivery\n"+
		"through the ingress's handler without a network (verify, normalize, dedup, encode, the no-op\n"+
		"producer, answer); the cases alternate in chunks of 64 requests within one run, each timed by\n"+
		"its median chunk, and a second server without a spool is the control (what the method cannot\n"+
		"tell from 1). Medians of %d runs of 2 s:\n\n"+
		"| case | ns per request | allocs per request |\n|---|--:|--:|\n| no spool | %.0f | %.0f |\n| spool idle | %.0f | %.0f |\n\n"+
		"Ratio spool idle / no spool: **%.3f** (runs: %s); control / no spool: %.3f (runs: %s).\n",
		o.rounds, median(m["none-ns/req"]), median(m["none-allocs/req"]), median(m["idle-ns/req"]), median(m["idle-allocs/req"]),
		median(m["idle/none"]), fmtRatios(m["idle/none"]), median(m["control/none"]), fmtRatios(m["control/none"])), nil
}

// parseMetrics reads the metrics of BenchmarkSpoolIdle's lines: unit → one value per run.
func parseMetrics(out []byte) map[string][]float64 {
	res := map[string][]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "BenchmarkSpoolIdle") {
			continue
		}
		for j := 3; j < len(f); j += 2 {
			if v, err := strconv.ParseFloat(f[j-1], 64); err == nil {
				res[f[j]] = append(res[f[j]], v)
			}
		}
	}
	return res
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[len(s)/2]
}

func fmtRatios(rs []float64) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = strconv.FormatFloat(r, 'f', 3, 64)
	}
	return strings.Join(out, ", ")
}

func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s", cpu, runtime.NumCPU(), runtime.Version())
}
