// Command bench measures the analytics consumer on a real broker and databases, and writes
// its section of bench/RESULTS.md:
//   - throughput: events per second counted into SQLite and into PostgreSQL, against a bare
//     franz-go group consumer reading the same records in the same run (the ratio is the
//     figure; the aim is at least 0.5);
//   - the latency of GET /analytics/api/summary (and of the dashboard page) over a month of
//     hourly aggregates for 100 profiles on 6 platforms, on each database.
//
// make bench-analytics starts a broker and PostgreSQL and runs
//
//	go run ./bench/analytics -brokers 127.0.0.1:39092 -postgres postgres://…
//
// It talks to loopback only, and every phase is bounded in count and time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/socialbridge/bridge/internal/resultsmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	brokers   []string
	postgres  string
	events    int
	rounds    int
	days      int
	profiles  int
	platforms int
	requests  int
	results   string // the RESULTS.md whose analytics section to replace; "" writes none
	timeout   time.Duration
	profile   string // CPU profile of the throughput phases
}

func parse(args []string, out io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(out)
	var o options
	var brokers string
	fs.StringVar(&brokers, "brokers", os.Getenv("BRIDGE_TEST_KAFKA"), "seed brokers, comma-separated (default $BRIDGE_TEST_KAFKA)")
	fs.StringVar(&o.postgres, "postgres", os.Getenv("BRIDGE_TEST_POSTGRES"), "a postgres:// DSN the bench may create a schema in (default $BRIDGE_TEST_POSTGRES; empty: SQLite only)")
	fs.IntVar(&o.events, "events", 200_000, "events produced for the throughput phases")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of the throughput phases (the median is reported)")
	fs.IntVar(&o.days, "days", 30, "days of hourly aggregates for the summary phases")
	fs.IntVar(&o.profiles, "profiles", 100, "profiles per platform")
	fs.IntVar(&o.platforms, "platforms", 6, "platforms")
	fs.IntVar(&o.requests, "requests", 20, "timed requests per summary query")
	fs.StringVar(&o.results, "results", "bench/RESULTS.md", "file whose analytics section is replaced (or appended); empty: print only")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound on each phase")
	fs.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of the throughput phases to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			o.brokers = append(o.brokers, b)
		}
	}
	if len(o.brokers) == 0 {
		return o, errors.New("no brokers: give -brokers or set BRIDGE_TEST_KAFKA")
	}
	if o.events <= 0 || o.rounds <= 0 || o.days <= 0 || o.profiles <= 0 || o.platforms <= 0 || o.requests <= 0 {
		return o, errors.New("-events, -rounds, -days, -profiles, -platforms and -requests must be positive")
	}
	return o, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parse(args, out)
	if err != nil {
		return err
	}
	r := &report{opts: o, started: time.Now().UTC(), load: loadAverage()}
	dbs, cleanup, err := databases(ctx, o.postgres)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := throughput(ctx, o, dbs, r); err != nil {
		return err
	}
	if err := latency(ctx, o, dbs, r); err != nil {
		return err
	}
	r.loadEnd = loadAverage()
	md := r.markdown()
	fmt.Fprint(out, md)
	if o.results == "" {
		return nil
	}
	return resultsmd.WriteSection(o.results, section, md, false)
}
