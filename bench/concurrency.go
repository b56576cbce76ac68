package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
)

// A producer variant measured by -concurrency: settings of the bridge and of the direct
// producer alike, over the run's defaults.
type variant struct {
	name     string
	settings map[string]string // kafka key → value, as -variants gives them
}

// levelRun is what one variant did at one connection count: a bridge of its own and a direct
// producer of its own (topics of their own, so that each one's batches can be counted), and
// their phases, one per round.
type levelRun struct {
	v             *variant
	conns         int
	k             config.Kafka // the bridge's; the direct producer's topics are k.TopicPrefix + "direct."
	b             *bridgeProc
	pprofAddr     string // the bridge's --pprof, with -profile
	direct        *directProducer
	ledger        ledger
	bridge, p     []Phase // bridge and direct producer phases, one per round
	open          []Phase // at 50% load: the first connection count only
	batchesBridge batchStats
	batchesDirect batchStats
	verification  Verification
}

// batchStats is what the read-back found in a run's topics: record batches and their records.
type batchStats struct{ batches, records int }

func (b batchStats) perBatch() float64 { return float64(b.records) / max(1, float64(b.batches)) }

// parseVariants reads -variants: "name=key:value,key:value;name2=…", kafka keys linger,
// partitions and compression. An empty list is the defaults alone.
func parseVariants(s string) ([]*variant, error) {
	var vs []*variant
	for _, part := range strings.Split(s, ";") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		name, settings, _ := strings.Cut(part, "=")
		v := &variant{name: strings.TrimSpace(name), settings: map[string]string{}}
		if !validName(v.name) {
			return nil, fmt.Errorf("-variants: name %q: want letters, digits, '.', '-' or '_' (it goes into event ids)", v.name)
		}
		for _, kv := range strings.Split(settings, ",") {
			if kv = strings.TrimSpace(kv); kv == "" {
				continue
			}
			k, val, ok := strings.Cut(kv, ":")
			if !ok {
				return nil, fmt.Errorf("-variants: %q: want key:value", kv)
			}
			v.settings[k] = val
		}
		if _, err := v.apply(config.Default().Kafka); err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		vs = append(vs, &variant{name: "defaults", settings: map[string]string{}})
	}
	return vs, nil
}

func validName(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == ""
}

// apply returns k with the variant's settings.
func (v *variant) apply(k config.Kafka) (config.Kafka, error) {
	for key, val := range v.settings {
		switch key {
		case "linger":
			d, err := time.ParseDuration(val)
			if err != nil {
				return k, fmt.Errorf("-variants %s: linger: %w", v.name, err)
			}
			k.Linger = config.Duration(d)
		case "partitions":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return k, fmt.Errorf("-variants %s: partitions: want a positive number, got %q", v.name, val)
			}
			k.Partitions = int32(n)
		case "compression":
			k.Compression = val
		default:
			return k, fmt.Errorf("-variants %s: unknown key %q (linger, partitions, compression)", v.name, key)
		}
	}
	return k, nil
}

// concurrency measures, in one run, the bridge at each connection count of -concurrency
// against the direct franz-go producer at the same concurrency (as many goroutines, each
// producing a record and waiting for its acknowledgement), for each of -variants, with the
// broker's CPU per record of each phase (-broker-pid). Each round runs every variant and
// count once, bridge and direct producer one after the other; then, in the first round,
// each variant's bridge at the lowest count runs open loop at 50% of the first variant's
// maximum there, for its latency at the same load. Every answer is verified against Kafka,
// and the read-back counts each setup's record batches.
func (r *runner) concurrency(ctx context.Context) (string, error) {
	if r.o.brokerPid == 0 {
		return "", errors.New("-concurrency needs -broker-pid, to measure the broker's CPU per record")
	}
	vs, err := parseVariants(r.o.variants)
	if err != nil {
		return "", err
	}
	if err := checkFileLimit(2 * r.o.levels[len(r.o.levels)-1]); err != nil {
		return "", err
	}
	if r.o.profileDir != "" {
		if err := os.MkdirAll(r.o.profileDir, 0o755); err != nil {
			return "", err
		}
	}
	bin, err := r.bridgeBinary(ctx)
	if err != nil {
		return "", err
	}
	if _, err := r.checkBroker(ctx); err != nil {
		return "", err
	}
	runs, err := r.startLevels(ctx, bin, vs)
	defer func() {
		for _, l := range runs {
			l.close()
		}
	}()
	if err != nil {
		return "", err
	}
	load := loadAverage()
	for round := range r.o.rounds {
		r.logf("round %d of %d", round+1, r.o.rounds)
		for _, l := range rotate(runs, round) {
			if err := r.levelPhases(ctx, l, round); err != nil {
				return "", err
			}
		}
		if round == 0 {
			r.halfLoad(ctx, runs)
		}
	}
	passed := r.verifyLevels(ctx, runs)
	if !r.o.keepTopics {
		for _, l := range runs {
			r.deleteTopics(ctx, l.k.TopicPrefix, l.k.TopicPrefix+"direct.")
		}
	}
	report := concurrencyReport(runs, load+" at the start, "+loadAverage()+" at the end")
	if !passed {
		return report, errors.New("verification failed")
	}
	return report, nil
}

// startLevels starts a bridge and a direct producer for every variant and connection count,
// and warms each up.
func (r *runner) startLevels(ctx context.Context, bin string, vs []*variant) ([]*levelRun, error) {
	var runs []*levelRun
	for i, v := range vs {
		for j, conns := range r.o.levels {
			k, _ := v.apply(r.kafka(fmt.Sprintf("%sc%d-%d.", r.prefix, i, j)))
			l := &levelRun{v: v, conns: conns, k: k, ledger: ledger{}}
			runs = append(runs, l)
			var flags []string
			if r.o.profileDir != "" {
				var err error
				if l.pprofAddr, err = pprofPort(); err != nil {
					return runs, err
				}
				flags = []string{"--pprof", l.pprofAddr}
			}
			b, err := startBridge(ctx, bin, r.dir, fmt.Sprintf("conc-%d-%d", i, j), k, r.secret, false, "", flags...)
			if err != nil {
				return runs, fmt.Errorf("%s at %d connections: %w", v.name, conns, err)
			}
			l.b = b
			dk := k
			dk.TopicPrefix += "direct."
			if l.direct, err = newDirectProducer(ctx, dk, r.path); err != nil {
				return runs, err
			}
			extra := time.Duration(0)
			if len(runs) == 1 {
				extra = r.o.brokerWarmup
			}
			warm := r.batch(fmt.Sprintf("c%d-%dw", i, j), r.o.maxRequests/4, r.o.dupShare)
			l.ledger.add(warm, drive(ctx, schedule{conns: conns, duration: r.o.warmup + extra}, len(warm), webhooks(b.addr, warm)))
			r.directPhase(ctx, l, schedule{conns: conns, duration: r.o.warmup}, "warm-up", "")
		}
	}
	return runs, nil
}

// levelPhases runs one round of l: the bridge, then the direct producer, closed loop.
func (r *runner) levelPhases(ctx context.Context, l *levelRun, round int) error {
	name := fmt.Sprintf("%s, %d connections", l.v.name, l.conns)
	ds := r.batch(fmt.Sprintf("c%s-%d-%d", l.v.name, l.conns, round), r.o.maxRequests, r.o.dupShare)
	time.Sleep(time.Second)
	tag := fmt.Sprintf("%s-%d-r%d", l.v.name, l.conns, round+1)
	prof := r.startProfiles(ctx, "bridge-"+tag, l.pprofAddr, r.o.duration)
	meter := meterCPU(r.pids(l.b.pid()))
	run := drive(ctx, schedule{conns: l.conns, duration: r.o.duration}, len(ds), webhooks(l.b.addr, ds))
	used := meter.used()
	prof.stop(r)
	p := summarize("bridge, "+name, "bridge, "+name, run, used, "bridge")
	l.ledger.add(ds, run)
	r.record(p)
	l.bridge = append(l.bridge, p)
	d := r.directPhase(ctx, l, schedule{conns: l.conns, duration: r.o.duration}, "direct, "+name, "direct-"+tag)
	r.record(d)
	l.p = append(l.p, d)
	return ctx.Err()
}

// directPhase runs the direct producer of l as s says, on the run's direct records sent to
// l's topics, over and over: a record goes again only after all the others have been sent
// since, so never while it is still in flight.
// With -profile, a phase with a profile name is profiled.
func (r *runner) directPhase(ctx context.Context, l *levelRun, s schedule, name, profile string) Phase {
	if r.directRecs == nil {
		ds := r.batch("d", directRecords, 0)
		r.directTypes = make([]string, len(ds))
		for i := range ds {
			r.directTypes[i] = ds[i].typ
		}
		var err error
		if r.directRecs, err = l.direct.records(ds); err != nil {
			panic(err) // the records of valid deliveries always build
		}
	}
	for i, rec := range r.directRecs {
		rec.Topic = event.Topic(l.direct.k.TopicPrefix, r.directTypes[i])
	}
	time.Sleep(time.Second)
	var prof *profiling
	if profile != "" {
		prof = r.startProfiles(ctx, profile, "", s.duration)
	}
	meter := meterCPU(r.pids(0))
	run := drive(ctx, s, maxDirectSends, l.direct.cycle(r.directRecs))
	used := meter.used()
	prof.stop(r)
	return summarize(name, name, run, used, "loadgen")
}

// directRecords is how many records the direct producer cycles through, maxDirectSends
// the most it sends in a phase.
const (
	directRecords  = 100_000
	maxDirectSends = 2_000_000
)

// halfLoad runs every variant's bridge at the lowest connection count open loop at 50% of
// the first variant's maximum there.
func (r *runner) halfLoad(ctx context.Context, runs []*levelRun) {
	rate := runs[0].bridge[0].OKPerSec / 2
	for _, l := range runs {
		if l.conns != r.o.levels[0] {
			continue
		}
		s := schedule{conns: 4 * l.conns, duration: r.o.duration, rate: rate, grace: 10 * time.Second}
		ds := r.batch("h"+l.v.name, int(rate*r.o.duration.Seconds()), r.o.dupShare)
		time.Sleep(time.Second)
		meter := meterCPU(r.pids(l.b.pid()))
		run := drive(ctx, s, len(ds), webhooks(l.b.addr, ds))
		p := summarize("bridge, "+l.v.name+" at 50% load", "", run, meter.used(), "bridge")
		l.ledger.add(ds, run)
		r.record(p)
		l.open = append(l.open, p)
	}
}

// verifyLevels stops the bridges (flushing what each accepted), reads every setup's topics
// back, checks the bridges' answers and counts the batches.
func (r *runner) verifyLevels(ctx context.Context, runs []*levelRun) bool {
	passed := true
	for _, l := range runs {
		if err := l.b.stop(); err != nil {
			r.logf("%s at %d connections: %v", l.v.name, l.conns, err)
			passed = false
		}
		st, err := readBack(ctx, r.o.brokers, l.k.TopicPrefix)
		var dst *stored
		if err == nil {
			dst, err = readBack(ctx, r.o.brokers, l.k.TopicPrefix+"direct.")
		}
		if err != nil {
			r.logf("reading back %s: %v", l.k.TopicPrefix, err)
			passed = false
			continue // the other setups are still worth verifying
		}
		l.verification = verify(l.ledger, st, l.k.TopicPrefix)
		l.batchesBridge, l.batchesDirect = st.batches, dst.batches
		passed = passed && l.verification.Passed
	}
	return passed
}

// readBack reads the topics under prefix, within a bound of its own, so that one slow
// read-back neither starves the next nor hides the others' verification.
func readBack(ctx context.Context, brokers []string, prefix string) (*stored, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return readTopics(ctx, brokers, prefix)
}

func (l *levelRun) close() {
	if l.b != nil {
		_ = l.b.stop()
	}
	if l.direct != nil {
		l.direct.close()
	}
}

func concurrencyReport(runs []*levelRun, load string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d rounds; 1-minute load average %s. Medians of the rounds, [lowest–highest] in brackets; each ratio is the bridge's to the direct producer's in the same round. Broker CPU is the broker process's CPU time per record written (ms); records per batch is what the read-back found in each setup's topics, warm-ups included; CPU s / 1,000 records is the bridge process's, the load generator's while it drives the bridge (HTTP client, signing), and the direct producer's process (franz-go, no HTTP), each over its own phase.\n\n", len(runs[0].bridge), load)
	b.WriteString("| variant | connections | bridge records/s | direct records/s | bridge / direct | bridge p99 ms | direct p99 ms | broker CPU ms / record: bridge | direct | records per batch: bridge | direct | CPU s / 1,000: bridge | its load | direct |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	acc := func(p Phase) float64 { return p.AcceptedPerSec }
	p99 := func(p Phase) float64 { return p.Latency.P99 }
	broker := func(p Phase) float64 { return 1000 * p.CPUSeconds["broker"] / max(1, float64(p.Accepted)) }
	perK := func(proc string) func(Phase) float64 {
		return func(p Phase) float64 { return 1000 * p.CPUSeconds[proc] / max(1, float64(p.Accepted)) }
	}
	for _, l := range runs {
		ratios := make([]float64, len(l.bridge))
		for i := range l.bridge {
			ratios[i] = l.bridge[i].AcceptedPerSec / max(1, l.p[i].AcceptedPerSec)
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %s | %.2f | %.2f | %.4f | %.4f | %.1f | %.1f | %.3f | %.3f | %.3f |\n", l.v.name, l.conns,
			median(l.bridge, acc), median(l.p, acc), medianRange(ratios, "%.2f"), median(l.bridge, p99), median(l.p, p99),
			median(l.bridge, broker), median(l.p, broker), l.batchesBridge.perBatch(), l.batchesDirect.perBatch(),
			median(l.bridge, perK("bridge")), median(l.bridge, perK("loadgen")), median(l.p, perK("loadgen")))
	}
	b.WriteString("\nAt 50% load (open loop, the first variant's maximum at the lowest count, halved):\n\n| variant | rate/s | p50 ms | p99 ms | p99.9 ms | broker CPU ms / record |\n|---|--:|--:|--:|--:|--:|\n")
	for _, l := range runs {
		for _, p := range l.open {
			fmt.Fprintf(&b, "| %s | %.0f | %.2f | %.2f | %.2f | %.4f |\n", l.v.name, p.TargetRate, p.Latency.P50, p.Latency.P99, p.Latency.P999, broker(p))
		}
	}
	b.WriteString("\nVerification: ")
	for i, l := range runs {
		if i > 0 {
			b.WriteString("; ")
		}
		v := l.verification
		if v.IDsSent == 0 {
			fmt.Fprintf(&b, "%s at %d: not read back (see the log)", l.v.name, l.conns)
			continue
		}
		fmt.Fprintf(&b, "%s at %d: %d ids, %d answered 200, %d records, %d mismatches", l.v.name, l.conns, v.IDsSent, v.IDsAnswered, v.RecordsRead, v.Mismatches)
	}
	b.WriteString(".\n")
	return b.String()
}
