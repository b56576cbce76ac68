package chaos_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"
)

// kind is a kind of fault.
type kind string

const (
	kill       kind = "SIGKILL a member, start it again"
	leave      kind = "a member leaves (SIGTERM), a new one joins"
	extra      kind = "an extra member joins, a member leaves (SIGTERM) later"
	brokerStop kind = "broker restarted (SIGTERM)"
	brokerKill kind = "broker SIGKILLed, started again"
	brokerStun kind = "broker paused (SIGSTOP), resumed"
	pgRestart  kind = "PostgreSQL restarted (fast shutdown)"
	pgCrash    kind = "PostgreSQL crashed (immediate shutdown), started again"
	actionDown kind = "action API failing (5xx, 429, no answer)"
	actionSlow kind = "action API slow"
	slackDown  kind = "Slack failing (5xx, 429, no answer)"
	slackSlow  kind = "Slack slow (some answers after the timeout)"
)

// kinds in the order the report lists them.
var kinds = []kind{kill, leave, extra, brokerStop, brokerKill, brokerStun, pgRestart, pgCrash, actionDown, actionSlow, slackDown, slackSlow}

// fault is one thing that goes wrong, and when it did.
type fault struct {
	kind   kind
	group  string        // the group whose member it hits, or that depends on what fails; every group for the broker (allGroups)
	at     time.Duration // after input starts
	length time.Duration // how long it is in force: a killed member's or the database's time down, a failing or slow window
	alone  bool          // of the long form's first phase, one fault at a time
	// Filled in as it runs:
	start, healed time.Time // when it began and ended (a member started again, the database back, the window over)
	what          string    // who it hit
	err           error
}

// allGroups is the group of a fault of the broker, which every group depends on.
const allGroups = "all three"

// hurts reports whether f and g hurt a group in common.
func hurts(f, g *fault) bool {
	return f.group == g.group || f.group == allGroups || g.group == allGroups
}

// lane is a sequence of faults that never overlap: those of one group's members, of the
// database, of the action, of Slack. Lanes run at once.
type lane []*fault

// schedule draws the faults of a run, and returns them with how long input is produced.
// The short form (make test, d of input) has one fault of each quick kind: a SIGKILL in
// retries and in alerts, a member leaving and one joining, then an extra member joining
// and one leaving, in analytics (its members have no instance_id, so a leaving one gives
// its partitions up at once, where a static member keeps them for its session), the
// broker paused, a database restart, and a failing and a
// slow window of the action and of Slack. The long form first has every kind of fault once, one at a time
// (aloneSchedule), so that each one's recovery is its own, then d of faults of every kind
// on every lane, 20 s apart on average.
func schedule(rng *rand.Rand, d time.Duration, long bool) ([]lane, time.Duration) {
	if long {
		alone, length := aloneSchedule(rng)
		return append(chaosSchedule(rng, d, length), alone), length + d
	}
	at := func(from, to float64) time.Duration {
		return time.Duration((from + rng.Float64()*(to-from)) * float64(d))
	}
	pg := pgRestart
	if rng.IntN(2) == 0 {
		pg = pgCrash
	}
	// Not a broker restart: a transaction in flight then holds a group up to its end's
	// timeout (80 s; see docs/testing.md), too long for make test. The long form has them.
	broker := &fault{kind: brokerStun, group: allGroups, at: at(0.3, 0.7), length: secs(rng, 2, 4)}
	return []lane{
		{{kind: kill, group: "retries", at: at(0.15, 0.6), length: secs(rng, 0, 1)}},
		{{kind: kill, group: "alerts", at: at(0.15, 0.6), length: secs(rng, 0, 1)}},
		{{kind: leave, group: "analytics", at: at(0.1, 0.35)}, {kind: extra, group: "analytics", at: at(0.45, 0.7), length: secs(rng, 1, 3)}},
		{broker},
		{{kind: pg, group: "analytics", at: at(0.2, 0.6), length: secs(rng, 1, 3)}},
		{{kind: actionDown, group: "retries", at: at(0.05, 0.3), length: secs(rng, 2, 4)}, {kind: actionSlow, group: "retries", at: at(0.45, 0.6), length: secs(rng, 2, 4)}},
		{{kind: slackDown, group: "alerts", at: at(0.05, 0.3), length: secs(rng, 2, 4)}, {kind: slackSlow, group: "alerts", at: at(0.45, 0.6), length: secs(rng, 2, 4)}},
	}, d
}

// secs is a duration drawn between from and to seconds.
func secs(rng *rand.Rand, from, to float64) time.Duration {
	return time.Duration((from + rng.Float64()*(to-from)) * float64(time.Second))
}

// aloneSchedule is every kind of fault on every group it applies to, one after the other,
// far enough apart for each to be recovered from before the next in the usual case: a
// minute where a member leaves the group without a goodbye (a static member stopped, an
// analytics member killed: the group waits for its 45 s session), 40 s after the broker's
// restarts (its start takes 10 to 30 s here), 25 s otherwise. It returns the lane and its
// length.
func aloneSchedule(rng *rand.Rand) (lane, time.Duration) {
	plan := []struct {
		kind   kind
		group  string
		length time.Duration
		apart  time.Duration
	}{
		{kill, "retries", time.Second, 25 * time.Second},
		{kill, "alerts", time.Second, 25 * time.Second},
		{kill, "analytics", time.Second, time.Minute},
		{leave, "retries", 0, time.Minute},
		{leave, "alerts", 0, time.Minute},
		{leave, "analytics", 0, 25 * time.Second},
		{extra, "retries", 3 * time.Second, time.Minute},
		{extra, "alerts", 3 * time.Second, time.Minute},
		{extra, "analytics", 3 * time.Second, 25 * time.Second},
		{brokerStun, allGroups, 5 * time.Second, 25 * time.Second},
		{brokerStop, allGroups, 2 * time.Second, 40 * time.Second},
		{brokerKill, allGroups, 2 * time.Second, 40 * time.Second},
		{pgRestart, "analytics", 3 * time.Second, 25 * time.Second},
		{pgCrash, "analytics", 3 * time.Second, 25 * time.Second},
		{actionDown, "retries", 5 * time.Second, 25 * time.Second},
		{actionSlow, "retries", 5 * time.Second, 25 * time.Second},
		{slackDown, "alerts", 5 * time.Second, 25 * time.Second},
		{slackSlow, "alerts", 5 * time.Second, 25 * time.Second},
	}
	rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	var l lane
	at := 10 * time.Second
	for _, p := range plan {
		l = append(l, &fault{kind: p.kind, group: p.group, at: at, length: p.length, alone: true})
		at += p.length + p.apart
	}
	return l, at
}

// chaosSchedule is d of faults on seven lanes, from offset on: each group's members (a
// SIGKILL, a member leaving and another joining, or an extra member joining and one
// leaving later), the broker, the database, the action and Slack.
func chaosSchedule(rng *rand.Rand, d, offset time.Duration) []lane {
	pick := func(a, b kind, pa float64) kind {
		if rng.Float64() < pa {
			return a
		}
		return b
	}
	draw := func(group string, next func() (kind, time.Duration)) lane {
		var l lane
		for at := secs(rng, 3, 15); at < d*9/10; at += secs(rng, 5, 35) {
			k, length := next()
			l = append(l, &fault{kind: k, group: group, at: offset + at, length: length})
		}
		return l
	}
	members := func() (kind, time.Duration) {
		if rng.Float64() < 0.2 {
			return extra, secs(rng, 1, 10)
		}
		return pick(kill, leave, 0.75), secs(rng, 0, 3)
	}
	broker := func() (kind, time.Duration) {
		if rng.Float64() < 0.4 {
			return brokerStun, secs(rng, 1, 8)
		}
		return pick(brokerKill, brokerStop, 0.5), secs(rng, 0, 3)
	}
	return []lane{
		draw("retries", members),
		draw("alerts", members),
		draw("analytics", members),
		draw(allGroups, broker),
		draw("analytics", func() (kind, time.Duration) { return pick(pgRestart, pgCrash, 0.5), secs(rng, 1, 5) }),
		draw("retries", func() (kind, time.Duration) { return pick(actionDown, actionSlow, 0.5), secs(rng, 2, 8) }),
		draw("alerts", func() (kind, time.Duration) { return pick(slackDown, slackSlow, 0.5), secs(rng, 2, 8) }),
	}
}

// all returns every fault of the lanes, by start.
func all(lanes []lane) []*fault {
	var out []*fault
	for _, l := range lanes {
		out = append(out, l...)
	}
	slices.SortFunc(out, func(a, b *fault) int { return int(a.at - b.at) })
	return out
}

// onTest reports whether the lane has a fault of the broker, whose methods (kafkatest)
// must be called on the test's goroutine.
func (l lane) onTest() bool {
	return slices.ContainsFunc(l, func(f *fault) bool { return f.group == allGroups })
}

// run injects the lane's faults one after the other, each at its time after t0 (or at
// once, when the one before it ran late), until ctx ends.
func (l lane) run(ctx context.Context, r *rig, t0 time.Time, rng *rand.Rand) {
	for _, f := range l {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(t0.Add(f.at))):
		}
		r.inject(f, rng)
		r.t.Logf("chaos: %5.1fs %s (%s %s) for %.1fs: %v", f.start.Sub(t0).Seconds(), f.kind, f.group, f.what, f.healed.Sub(f.start).Seconds(), f.err)
	}
}

// inject makes f happen, and ends it.
func (r *rig) inject(f *fault, rng *rand.Rand) {
	f.start = time.Now()
	defer func() { f.healed = time.Now() }()
	switch f.kind {
	case kill:
		f.what, f.err = r.groups[f.group].kill(rng, f.length)
	case leave:
		f.what, f.err = r.groups[f.group].leave(rng)
	case extra:
		f.what, f.err = r.groups[f.group].extra(rng, f.length)
	case brokerStop, brokerKill:
		f.what = r.broker.Addr()
		if f.kind == brokerKill {
			r.broker.Kill()
		} else {
			r.broker.Stop()
		}
		time.Sleep(f.length)
		r.broker.Start()
	case brokerStun:
		f.what = r.broker.Addr()
		r.broker.Pause()
		time.Sleep(f.length)
		r.broker.Resume()
	case pgRestart, pgCrash:
		down := r.pg.Stop
		if f.kind == pgCrash {
			down = r.pg.Crash
		}
		if f.err = down(); f.err == nil {
			time.Sleep(f.length)
			f.err = r.pg.Start()
		}
	case actionDown, actionSlow, slackDown, slackSlow:
		sw := &r.action.mode
		if f.kind == slackDown || f.kind == slackSlow {
			sw = &r.slack.mode
		}
		m := down
		if f.kind == actionSlow || f.kind == slackSlow {
			m = slow
		}
		sw.set(m)
		time.Sleep(f.length)
		sw.set(healthy)
	}
}
