// Command rebuild measures how fast a memory dedup store is rebuilt from Kafka at start, on a
// real broker: it fills the bridge's topics with n records shaped as the bridge writes them
// (single-object Avro of a 400-800 byte body, the bridge's headers and compression), spread
// over the last 23 hours, then times dedup.Rebuild over a 24 h window next to a plain
// franz-go read of the same records, then writes the store's snapshot and times a rebuild
// from it plus the records since, and prints ids per second and memory.
//
//	go run ./bench/rebuild -brokers 127.0.0.1:39092 -records 1000000,10000000
//
// It is not part of CI: 10 M records are about 10 GB for the broker to write and read.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/producer"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rebuild:", err)
		os.Exit(1)
	}
}

type options struct {
	brokers []string
	counts  []int
	keep    bool
}

func parse() (options, error) {
	var o options
	brokers := flag.String("brokers", "127.0.0.1:39092", "Kafka seed brokers, comma-separated; loopback only")
	counts := flag.String("records", "1000000,10000000", "record counts to measure, comma-separated")
	flag.BoolVar(&o.keep, "keep", false, "keep the topics (and reuse them on the next run with the same count)")
	flag.Parse()
	for _, b := range strings.Split(*brokers, ",") {
		host, _, err := net.SplitHostPort(b)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			return o, fmt.Errorf("broker %q: loopback host:port only", b)
		}
		o.brokers = append(o.brokers, b)
	}
	for _, c := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n <= 0 {
			return o, fmt.Errorf("-records: bad count %q", c)
		}
		o.counts = append(o.counts, n)
	}
	return o, nil
}

func run(ctx context.Context) error {
	o, err := parse()
	if err != nil {
		return err
	}
	fmt.Printf("| records | ids restored | read records/s (plain franz-go) | rebuild s | rebuild ids/s | heap after (MiB) | peak RSS (MiB) | snapshot write s | snapshot MiB | rebuild from snapshot s | ids/s | records since, from Kafka |\n|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, n := range o.counts {
		res, err := measure(ctx, o, n)
		if err != nil {
			return err
		}
		fmt.Println(res.row())
	}
	return nil
}

// kafka is the configuration of the measured topics: the bridge's defaults under a prefix
// of the count's own.
func kafka(o options, n int) config.Kafka {
	k := config.Default().Kafka
	k.Brokers, k.TopicPrefix, k.Retention = o.brokers, fmt.Sprintf("rebuildbench.%d.", n), 0
	return k
}

func measure(ctx context.Context, o options, n int) (*result, error) {
	k := kafka(o, n)
	// The delivery timeout counts from a record's timestamp, here up to 23 h old.
	cl, err := kgo.NewClient(append(producer.Options(k), kgo.ProducerLinger(5*time.Millisecond),
		kgo.RecordDeliveryTimeout(48*time.Hour), kgo.ProduceRequestTimeout(30*time.Second))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if !o.keep {
		defer func() { _, _ = adm.DeleteTopics(context.Background(), event.Topics(k.TopicPrefix)...) }()
	}
	have, err := stored(ctx, adm, k.TopicPrefix)
	if err != nil {
		return nil, err
	}
	if have != int64(n) {
		if have > 0 {
			return nil, fmt.Errorf("topics %s* hold %d records, not %d: delete them first", k.TopicPrefix, have, n)
		}
		if err := fill(ctx, cl, adm, k, n); err != nil {
			return nil, err
		}
	}
	return rebuild(ctx, cl, k, n)
}

// stored counts the records of the bridge's topics under prefix.
func stored(ctx context.Context, adm *kadm.Client, prefix string) (int64, error) {
	starts, err := adm.ListStartOffsets(ctx, event.Topics(prefix)...)
	if err != nil {
		return 0, err
	}
	ends, err := adm.ListEndOffsets(ctx, event.Topics(prefix)...)
	if err != nil {
		return 0, err
	}
	var n int64
	ends.Each(func(e kadm.ListedOffset) {
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok && e.Err == nil && s.Err == nil {
			n += e.Offset - s.Offset
		}
	})
	return n, nil
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "rebuild: "+format+"\n", a...)
}

func heapMiB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// peakRSSMiB is this process's peak resident set (VmHWM).
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

var errShort = errors.New("read fewer records than stored")
