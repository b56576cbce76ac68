package chaos_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers/alerts"
	"github.com/socialbridge/bridge/consumers/internal/grouptest"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/pgserver"
	"github.com/socialbridge/bridge/internal/testkit"
	"github.com/socialbridge/bridge/internal/topics"
)

var (
	flagLong     = flag.Bool("chaos.long", false, "the long form (make chaos-consumers): faults of every kind, repeated on every lane")
	flagDuration = flag.Duration("chaos.duration", 12*time.Second, "how long input is produced while the faults run (the long form adds its first phase, one fault at a time, about 7 minutes)")
	flagRecords  = flag.Int("chaos.records", 600, "input records, over the four event topics")
	flagSeed     = flag.Uint64("chaos.seed", 0, "seed of the input and of the fault schedule (0: drawn, and logged)")
	flagReport   = flag.String("chaos.report", "", "write the figures into this RESULTS.md (its chaos-consumers section)")
	flagRace     = flag.Bool("chaos.race", false, "build the bridge binary with the race detector, and fail on a race it reports")
	flagLogLevel = flag.String("chaos.loglevel", "info", "the members' log.level")
	flagLogs     = flag.String("chaos.logs", "", "keep the members' configurations and logs in this folder (default: a temporary one)")
)

// Settings of the run's groups: short delays and timeouts, so that a run takes seconds.
const (
	actionTimeout = 2 * time.Second
	slackTimeout  = 2 * time.Second
	cooldown      = time.Hour
)

var delays = []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}

// TestChaos runs the three consumer groups, two members each (`bridge consume retries`,
// `alerts` and `analytics` processes, built from this tree), against a real broker of the
// test's own, a PostgreSQL of the test's own, and stand-ins for the retry action and
// Slack, while input is produced as the bridge writes it and faults are injected on a
// seeded schedule: SIGKILLed members started again, members leaving and new ones joining,
// extra members joining (rebalances), the broker restarted, SIGKILLed or paused,
// PostgreSQL restarted or crashed, the action and Slack failing and slow. Then, with the faults over,
// it waits until every group has handled every record (its committed offsets, or the
// database's, past the last record of every partition it reads, and Slack told what is
// owed), stops the members, and accounts for every input record: see accountRetries,
// accountAlerts and accountAnalytics. Nothing may be lost or doubled; what the
// documentation allows (calls repeated under an idempotency key, Slack messages marked as
// possible repeats) is counted apart. How long each fault took to recover from is logged
// (and, with -chaos.report, written to bench/RESULTS.md), never asserted.
func TestChaos(t *testing.T) {
	seed := *flagSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("chaos: seed %d (replay the input and the schedule with -chaos.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	load := loadAverage()
	r := newRig(t, rng)
	lanes, produceFor := schedule(rand.New(rand.NewPCG(rng.Uint64(), 1)), *flagDuration, *flagLong)
	r.produceFor = produceFor
	start := time.Now()
	r.runFaults(t, rng, lanes)
	r.drain(t)
	r.stop(t)
	r.finalRead(t)
	tallies := []tally{r.accountRetries(), r.accountAlerts(), r.accountAnalytics(context.Background())}
	rep := r.report(tallies, all(lanes), seed, start, load)
	t.Log("chaos: the faults\n" + rep.faultLog(start))
	t.Log("\n" + rep.markdown())
	for _, tl := range tallies {
		for _, p := range tl.problems[:min(len(tl.problems), 20)] {
			t.Errorf("%s: %s", tl.group, p)
		}
		if tl.lost != 0 || tl.doubled != 0 {
			t.Errorf("%s: %d input records, %d lost, %d doubled (want 0 and 0)", tl.group, tl.in, tl.lost, tl.doubled)
		}
	}
	r.checkLogs(t)
	if *flagReport != "" && !t.Failed() {
		if err := rep.write(*flagReport); err != nil {
			t.Error(err)
		}
	}
}

// rig is the run: the broker's topics, the database, the stand-ins, the groups, and the
// readers that watch them.
type rig struct {
	t        *testing.T
	broker   *kafkatest.Broker // the run's own, which the broker's faults stop, kill and pause
	brokers  []string
	prefix   string
	in       *input
	pg       *pgserver.Server
	action   *action
	slack    *slack
	groups   map[string]*group
	order    []string // group names
	adm      *kadm.Client
	tap      *tap
	watch    *watcher
	pgOff    *pgOffsets
	delays   []time.Duration
	cooldown time.Duration
	// produceFor is how long the input is produced.
	produceFor time.Duration
}

func newRig(t *testing.T, rng *rand.Rand) *rig {
	r := &rig{t: t, prefix: kafkatest.Prefix(t), delays: delays, cooldown: cooldown,
		order: []string{"retries", "alerts", "analytics"}, groups: map[string]*group{}}
	r.pg = pgserver.Require(t)
	r.broker = kafkatest.StartBroker(t)
	r.brokers = []string{r.broker.Addr()}
	r.in = generate(rand.New(rand.NewPCG(rng.Uint64(), 2)), *flagRecords, time.Now().UTC().Truncate(time.Millisecond))
	r.action = newAction(t, rand.New(rand.NewPCG(rng.Uint64(), 3)), r.in.class, actionTimeout)
	r.slack = newSlack(t, rand.New(rand.NewPCG(rng.Uint64(), 4)), r.in.refuseBlocks, slackTimeout)
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	r.adm = kadm.NewClient(cl)
	// The ingress's topics, made as the bridge makes them at its start.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := topics.Ensure(ctx, cl, grouptest.Parse(t, r.yaml("", "")).Kafka, testkit.Logger(t), topics.Events(r.prefix)...); err != nil {
		t.Fatal(err)
	}
	bin, dir := bridgeBinary(t), *flagLogs
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range r.order {
		r.groups[name] = newGroup(t, name, name != "analytics", bin, dir, r.yaml)
		for range 2 {
			if _, err := r.groups[name].add(); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.waitStable(t)
	if r.tap, err = startTap(r.brokers, r.topics()...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.tap.close)
	r.pgOff = &pgOffsets{dsn: r.pg.DSN()}
	t.Cleanup(r.pgOff.close)
	return r
}

// yaml is the configuration of a member of group name with instance (empty: none).
func (r *rig) yaml(name, instance string) string {
	id := func(g string) string {
		if g == name {
			return instance
		}
		return ""
	}
	quoted := make([]string, len(r.delays))
	for i, d := range r.delays {
		quoted[i] = fmt.Sprintf("%q", d.String())
	}
	return grouptest.Kafka(r.brokers, r.prefix) + fmt.Sprintf(`log:
  level: %s
consumers:
  retries:
    group: %q
    delays: [%s]
    action:
      url: %q
      method: POST
      timeout: %s
    concurrency: 8
    listen: "127.0.0.1:0"
    instance_id: %q
    transaction_timeout: 20s
  alerts:
    group: %q
    cooldown: %s
    slack_webhook_url: %q
    slack_timeout: %s
    slack_rate: 200
    listen: "127.0.0.1:0"
    instance_id: %q
    transaction_timeout: 20s
  analytics:
    group: %q
    database: %q
    listen: "127.0.0.1:0"
`, *flagLogLevel, r.groupID("retries"), strings.Join(quoted, ", "), r.action.srv.URL+"/v1/posts/{post_id}/retry", actionTimeout, id("retries"),
		r.groupID("alerts"), r.cooldown, r.slack.srv.URL+"/services/T000/B000/XXXX", slackTimeout, id("alerts"),
		r.groupID("analytics"), r.pg.DSN())
}

func (r *rig) groupID(name string) string { return r.prefix + name }

// inputs are the topics the ingress writes that the groups read.
func (r *rig) inputs() []string {
	var out []string
	for _, typ := range analyticsTypes {
		out = append(out, event.Topic(r.prefix, typ))
	}
	return out
}

// topics are every topic the accounting reads: the inputs, and what the groups write.
func (r *rig) topics() []string {
	out := append(r.inputs(), event.DLQTopic(r.prefix), alerts.Keyed(r.prefix), alerts.DLQ(r.prefix))
	for n := range r.delays {
		out = append(out, event.RetryTopic(r.prefix, n+1))
	}
	return out
}

// waitStable waits until each group has its two members and is stable: the groups have
// made their topics and hold every partition.
func (r *rig) waitStable(t *testing.T) {
	ids := make([]string, len(r.order))
	for i, g := range r.order {
		ids[i] = r.groupID(g)
	}
	r.eventually(t, 3*time.Minute, "every group stable with its two members", func(ctx context.Context) (bool, string) {
		gs, err := r.adm.DescribeGroups(ctx, ids...)
		if err != nil {
			return false, err.Error()
		}
		for _, g := range gs.Sorted() {
			if g.Err != nil || g.State != "Stable" || len(g.Members) != 2 {
				return false, fmt.Sprintf("%s: %s, %d members, %v", g.Group, g.State, len(g.Members), g.Err)
			}
		}
		return true, ""
	})
}

// eventually waits with testkit.Eventually until cond holds, checking it twice a second
// (each check is a few requests to the broker and the database), and on failure shows
// cond's last word on why not and the members' exits nobody asked for.
func (r *rig) eventually(t *testing.T, limit time.Duration, what string, cond func(context.Context) (bool, string)) {
	t.Helper()
	var why string
	testkit.Eventually(t, limit, what, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ok, w := cond(ctx)
		if why = w; !ok {
			time.Sleep(480 * time.Millisecond)
		}
		return ok
	}, func() string { return why + "\n" + r.exits() })
}

// runFaults produces the input over r.produceFor while the lanes of faults run,
// with the watcher sampling each group's progress, and returns when both are done.
func (r *rig) runFaults(t *testing.T, rng *rand.Rand, lanes []lane) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.watch = &watcher{}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	t.Cleanup(stopWatch)
	go r.watch.run(watchCtx, r.adm, r.progress())
	t0 := time.Now()
	var wg sync.WaitGroup
	var perr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		perr = r.in.produce(ctx, r.brokers, r.prefix, r.produceFor)
	}()
	var onTest []lane // the broker's, in order: see lane.onTest
	for _, l := range lanes {
		lrng := rand.New(rand.NewPCG(rng.Uint64(), 5))
		if l.onTest() {
			onTest = append(onTest, l)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.run(ctx, r, t0, lrng)
		}()
	}
	slices.SortFunc(onTest, func(a, b lane) int { return int(a[0].at - b[0].at) })
	for _, l := range onTest {
		l.run(ctx, r, t0, rand.New(rand.NewPCG(rng.Uint64(), 6)))
	}
	wg.Wait()
	if perr != nil {
		t.Fatalf("producing the input: %v", perr)
	}
	for _, f := range all(lanes) {
		if f.err != nil {
			t.Errorf("fault %q on %s: %v", f.kind, f.group, f.err)
		}
	}
	t.Logf("chaos: %d records produced in %s, %d faults", len(r.in.events), time.Since(t0).Round(time.Millisecond), len(all(lanes)))
}

// progress says how the watcher reads each group.
func (r *rig) progress() []progress {
	kafka := func(name string) func(context.Context) (offsets, error) {
		return func(ctx context.Context) (offsets, error) { return committed(ctx, r.adm, r.groupID(name)) }
	}
	return []progress{
		{name: "retries", inputs: []string{event.Topic(r.prefix, event.PostFailed)}, at: kafka("retries")},
		{name: "alerts", inputs: []string{event.Topic(r.prefix, event.PostTokenExpired), event.Topic(r.prefix, event.PostPublished)}, at: kafka("alerts")},
		{name: "analytics", inputs: r.inputs(), at: r.pgOff.at},
	}
}

// drain waits, with the faults over, until every group has handled every record: the
// reader has read every topic to its end, each group's committed offsets (the database's
// for analytics) pass the last record of every partition it reads, and Slack has each
// key's last decided message.
func (r *rig) drain(t *testing.T) {
	start := time.Now()
	limit := 3 * time.Minute
	if *flagLong {
		limit = 15 * time.Minute
	}
	retriesTopics := []string{event.Topic(r.prefix, event.PostFailed)}
	for n := range r.delays {
		retriesTopics = append(retriesTopics, event.RetryTopic(r.prefix, n+1))
	}
	alertsTopics := []string{event.Topic(r.prefix, event.PostTokenExpired), event.Topic(r.prefix, event.PostPublished), alerts.Keyed(r.prefix)}
	r.eventually(t, limit, "every record handled", func(ctx context.Context) (bool, string) {
		rc, err := committed(ctx, r.adm, r.groupID("retries"))
		if err != nil {
			return false, err.Error()
		}
		ac, err := committed(ctx, r.adm, r.groupID("alerts"))
		if err != nil {
			return false, err.Error()
		}
		sc, err := r.pgOff.at(ctx)
		if err != nil {
			return false, err.Error()
		}
		e, err := ends(ctx, r.adm, r.topics()...)
		if err != nil {
			return false, err.Error()
		}
		for _, check := range []func() (bool, string){
			func() (bool, string) { return r.tap.reached(e) },
			func() (bool, string) { return prefixed("retries: ")(r.tap.handled(rc, retriesTopics...)) },
			func() (bool, string) { return prefixed("alerts: ")(r.tap.handled(ac, alertsTopics...)) },
			func() (bool, string) { return prefixed("analytics: ")(r.tap.handled(sc, r.inputs()...)) },
			r.slackSettled,
		} {
			if ok, why := check(); !ok {
				return false, why
			}
		}
		return true, ""
	})
	t.Logf("chaos: every record handled %s after the input and the faults ended", time.Since(start).Round(time.Millisecond))
}

func prefixed(p string) func(bool, string) (bool, string) {
	return func(ok bool, why string) (bool, string) { return ok, p + why }
}

// slackSettled reports whether Slack has taken, for every key, the last message the rules
// decide for it so far (the worker of a key sends them in order).
func (r *rig) slackSettled() (bool, string) {
	events := map[string]*event.Event{}
	for _, ev := range r.in.events {
		events[ev.ID] = ev
	}
	decided, _ := decide(r.tap.read(alerts.Keyed(r.prefix)), events, r.cooldown)
	last := map[string][2]string{}
	for _, p := range r.slack.snapshot() {
		if p.taken {
			last[p.key] = [2]string{p.kind, p.id}
		}
	}
	for k, ds := range decided {
		d := ds[len(ds)-1]
		if last[k] != [2]string{d.kind, d.id} {
			var tries []string
			for _, p := range r.slack.snapshot() {
				if p.key == k {
					tries = append(tries, fmt.Sprintf("%s %s %s repeat=%v status=%d late=%v", p.at.Format("15:04:05.000"), p.kind, p.id, p.repeat, p.status, p.late))
				}
			}
			return false, fmt.Sprintf("alerts: Slack's last message for %s is %v, the last decided %s %s (decided %v; Slack got:\n%s)",
				k, last[k], d.kind, d.id, ds, strings.Join(tries, "\n"))
		}
	}
	return true, ""
}

// stop stops every member of every group gracefully, at once.
func (r *rig) stop(t *testing.T) {
	var wg sync.WaitGroup
	bad := make([][]string, len(r.order))
	for i, g := range r.order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bad[i] = r.groups[g].stop()
		}()
	}
	wg.Wait()
	for _, b := range bad {
		for _, e := range b {
			t.Error(e)
		}
	}
}

// finalRead waits until the reader has read every topic to its end, with the members
// stopped.
func (r *rig) finalRead(t *testing.T) {
	r.eventually(t, time.Minute, "every topic read to its end", func(ctx context.Context) (bool, string) {
		e, err := ends(ctx, r.adm, r.topics()...)
		if err != nil {
			return false, err.Error()
		}
		return r.tap.reached(e)
	})
}

// exits are the members' exits nobody asked for.
func (r *rig) exits() string {
	var all []string
	for _, g := range r.order {
		exits, _ := r.groups[g].unexpected()
		all = append(all, exits...)
	}
	return strings.Join(all, "\n")
}

// bridgeBinary builds the bridge binary the members run; with -chaos.race, with the race
// detector.
func bridgeBinary(t *testing.T) string {
	if *flagRace {
		return testkit.BuildBridge(t, "-race")
	}
	return testkit.BuildBridge(t)
}
