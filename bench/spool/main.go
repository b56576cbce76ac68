// Command spool measures the local spool (bridge/spool, docs/spool.md) and writes its section
// of bench/RESULTS.md:
//
//   - appends per second, each fsynced before it returns (group commit), at 1 to 256
//     appenders at once;
//   - the drain rate: records per second read back, handed to a producer that acknowledges at
//     once, and reclaimed (the spool's own share);
//   - the time to drain a spool of -records records (1,000,000 by default) into a real broker
//     with the bridge's drainer client, checked against the topic's end offsets;
//   - the request path's cost with a spool idle (empty, Kafka up) against no spool, as the
//     median of -rounds same-run pairs of BenchmarkSpoolIdle (bridge/ingress).
//
// make spool-bench starts a broker and runs it; -records 100000 is a quick form.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/socialbridge/bridge/internal/resultsmd"
)

type options struct {
	brokers string
	dir     string
	records int
	rounds  int
	results string
	size    int
}

func main() {
	var o options
	flag.StringVar(&o.brokers, "brokers", "", "a broker to drain into (host:port); empty: skip the drain into Kafka")
	flag.StringVar(&o.dir, "dir", os.TempDir(), "where the spools are written (the disk measured)")
	flag.IntVar(&o.records, "records", 1_000_000, "records drained into Kafka")
	flag.IntVar(&o.rounds, "rounds", 5, "same-run pairs of the idle-spool benchmark")
	flag.StringVar(&o.results, "results", "", "bench/RESULTS.md to write the section to (empty: print only)")
	flag.IntVar(&o.size, "size", 1024, "bytes of a record's value")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "spool bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	var sections []string
	appends, err := appendRates(o)
	if err != nil {
		return err
	}
	sections = append(sections, appends)
	local, err := localDrain(o)
	if err != nil {
		return err
	}
	sections = append(sections, local)
	if o.brokers != "" {
		kafka, err := kafkaDrain(ctx, o)
		if err != nil {
			return err
		}
		sections = append(sections, kafka)
	}
	idle, err := idleCost(ctx, o)
	if err != nil {
		return err
	}
	sections = append(sections, idle)
	body := header(o) + strings.Join(sections, "\n")
	fmt.Println(body)
	if o.results == "" {
		return nil
	}
	return resultsmd.WriteSection(o.results, "spool-bench", body, false)
}

func header(o options) string {
	return fmt.Sprintf(`## Spool

The local spool (docs/spool.md), measured by `+"`make spool-bench`"+` (`+"`go run ./bench/spool`"+`)
on %s, %s; spool files in %s; records of %d bytes (a typical spooled record is 1 KiB).

`, time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine(), o.dir, o.size)
}
