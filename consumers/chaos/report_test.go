package chaos_test

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/resultsmd"
)

// section is the part of bench/RESULTS.md the long form rewrites.
const section = "chaos-consumers"

// report is a run's figures.
type report struct {
	seed     uint64
	records  int
	duration time.Duration
	long     bool
	took     time.Duration
	tallies  []tally
	faults   []*fault
	back     map[*fault]time.Duration // -1: not measured
	caught   map[*fault]time.Duration
	load     string
}

func (r *rig) report(tallies []tally, faults []*fault, seed uint64, start time.Time, load string) *report {
	rep := &report{seed: seed, records: len(r.in.events), duration: r.produceFor, long: *flagLong, took: time.Since(start),
		tallies: tallies, faults: faults, back: map[*fault]time.Duration{}, caught: map[*fault]time.Duration{}, load: load}
	for _, f := range faults {
		rep.back[f], rep.caught[f] = r.recovery(f)
	}
	return rep
}

// recovery is how long the group f hurt took to get going again, and to catch up:
//   - a member killed, or leaving: from the fault, until the committed offset of every
//     input partition has moved on (back: input keeps coming to every partition while the
//     faults run), and until the group has committed every record that was there at the
//     fault (caught up);
//   - an extra member joining (and one leaving later): the same, from the join;
//   - the broker restarted, killed or paused: the same for the slowest of the three
//     groups, from the stop, the kill or the pause;
//   - PostgreSQL: the same for the analytics group's offsets in the database, from the
//     shutdown;
//   - the action failing: from its healing, until a call is answered 2xx again (back), and
//     until every record whose call failed during the fault is called ok or dead-lettered
//     (caught up: that includes the retry topics' delays);
//   - the action slow: from its healing, until the retries group has committed every input
//     record there at the healing;
//   - Slack failing or slow: from its healing, until Slack takes a message in time again
//     (back), and until it has every message it failed to take in time during the fault.
//
// -1 is "not measured" (no sample from before the fault, or the input stopped first).
func (r *rig) recovery(f *fault) (back, caught time.Duration) {
	switch f.kind {
	case kill, leave, extra, pgRestart, pgCrash:
		return offsetRecovery(r.watch.of(f.group), f.start)
	case brokerStop, brokerKill, brokerStun:
		return r.brokerRecovery(f)
	case actionSlow:
		_, c := offsetRecovery(r.watch.of(f.group), f.healed)
		return -1, c
	case actionDown:
		return r.actionRecovery(f)
	}
	return r.slackRecovery(f)
}

// from is when f's recovery is measured from (see recovery).
func from(f *fault) time.Time {
	switch f.kind {
	case kill, leave, extra, pgRestart, pgCrash, brokerStop, brokerKill, brokerStun:
		return f.start
	}
	return f.healed
}

// brokerRecovery is offsetRecovery from the broker's fault of the slowest group: every
// group depends on the broker. -1 if a group's was not measured.
func (r *rig) brokerRecovery(f *fault) (back, caught time.Duration) {
	for _, g := range r.order {
		b, c := offsetRecovery(r.watch.of(g), f.start)
		if b < 0 || back < 0 {
			back = -1
		} else {
			back = max(back, b)
		}
		if c < 0 || caught < 0 {
			caught = -1
		} else {
			caught = max(caught, c)
		}
	}
	return back, caught
}

// offsetRecovery measures a group's progress in samples from a time on (see recovery).
func offsetRecovery(ss []sample, from time.Time) (back, caught time.Duration) {
	i := slices.IndexFunc(ss, func(s sample) bool { return s.at.After(from) }) - 1
	if i < 0 {
		return -1, -1
	}
	s0 := ss[i]
	var ps []tp
	for p := range s0.ends {
		ps = append(ps, p)
	}
	back, caught = -1, -1
	for _, s := range ss[i+1:] {
		if back < 0 && allOf(ps, func(p tp) bool { return s.committed[p] > s0.committed[p] }) {
			back = s.at.Sub(from)
		}
		if caught < 0 && allOf(ps, func(p tp) bool { return s.committed[p] >= s0.ends[p] }) {
			caught = s.at.Sub(from)
		}
	}
	return back, caught
}

func allOf[T any](xs []T, f func(T) bool) bool {
	for _, x := range xs {
		if !f(x) {
			return false
		}
	}
	return true
}

func (r *rig) actionRecovery(f *fault) (back, caught time.Duration) {
	calls, okAt := r.action.snapshot()
	deadAt := map[string]time.Time{}
	for _, rec := range r.tap.read(event.DLQTopic(r.prefix)) {
		deadAt[string(rec.Key)] = rec.Timestamp
	}
	back, caught = -1, -1
	hit := map[string]bool{}
	for _, c := range calls {
		if !c.at.Before(f.start) && !c.at.After(f.healed) && strings.HasPrefix(c.by, "down") {
			hit[c.key] = true
		}
		if back < 0 && c.at.After(f.healed) && c.status/100 == 2 {
			back = c.end.Sub(f.healed)
		}
	}
	for k := range hit {
		end := okAt[k]
		if end.IsZero() {
			end = deadAt[k]
		}
		if !end.IsZero() {
			caught = max(caught, end.Sub(f.healed))
		}
	}
	return back, caught
}

func (r *rig) slackRecovery(f *fault) (back, caught time.Duration) {
	posts := r.slack.snapshot()
	back, caught = -1, -1
	hit := map[[2]string]bool{}
	for _, p := range posts {
		id := [2]string{p.kind, p.id}
		inTime := p.status == 200 && !p.late
		switch {
		case !p.at.Before(f.start) && !p.at.After(f.healed) && !inTime:
			hit[id] = true
		case p.at.After(f.healed) && inTime:
			if back < 0 {
				back = p.end.Sub(f.healed)
			}
			if hit[id] {
				caught = max(caught, p.end.Sub(f.healed))
				delete(hit, id)
			}
		}
	}
	return back, caught
}

// markdown is the report as bench/RESULTS.md's section.
func (rep *report) markdown() string {
	var b strings.Builder
	form := "short form (`make test`)"
	if rep.long {
		form = "long form"
	}
	fmt.Fprintf(&b, "## Consumers under chaos (issue 15)\n\n")
	fmt.Fprintf(&b, "`make chaos-consumers` (`go test -run '^TestChaos$' ./consumers/chaos/ %s`), %s, on %s at commit %s; %s, %d CPUs, %s; load average %s at the start. ",
		rep.args(), form, time.Now().UTC().Format("2006-01-02 15:04 UTC"), commit(), runtime.Version(), runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH, rep.load)
	fmt.Fprintf(&b, "The three groups, two members each, as `bridge consume retries|alerts|analytics` processes built from the tree, "+
		"on a single-node broker of the test's own (Kafka 4.1.1, 3 partitions a topic), analytics on a PostgreSQL of the test's own, the retry action "+
		"and Slack httptest stand-ins; %d input records produced as the ingress writes them over %s, the faults on a schedule drawn from "+
		"the seed (the long form: first every kind of fault once, one at a time, then %s of faults on seven overlapping lanes); then, faults over, every record handled (committed offsets past the last record of every partition, Slack told what is "+
		"owed), the members stopped (SIGTERM), and every record accounted for. The run took %s.\n\n", rep.records, rep.duration, *flagDuration, rep.took.Round(time.Second))
	b.WriteString("| group | records in | effects out | lost | doubled | counted apart (documented) |\n|---|--:|---|--:|--:|---|\n")
	for _, t := range rep.tallies {
		fmt.Fprintf(&b, "| %s | %d | %s | %d | %d | %s |\n", t.group, t.in, strings.Join(t.out, "; "), t.lost, t.doubled, strings.Join(t.apart, "; "))
	}
	b.WriteString("\nRecovery of each fault (seconds; `back`: the work the fault held up moves again, `caught up`: what was waiting is done; " +
		"measured from the kill, the leave, the join, the broker's stop, kill or pause or the database's shutdown (for the broker: the slowest group), and from the healing of a failing or slow dependency; see `recovery` in " +
		"`consumers/chaos/report_test.go`; reported, never asserted; faults of different lanes overlap):\n\n")
	b.WriteString("| fault | group | alone: back | alone: caught up | with others: times | back: median / max | caught up: median / max |\n" +
		"|---|---|--:|--:|--:|--:|--:|\n")
	for _, k := range kinds {
		for _, g := range []string{"retries", "alerts", "analytics", allGroups} {
			var back, caught []time.Duration
			aloneBack, aloneCaught, n, seen := "–", "–", 0, false
			for _, f := range rep.faults {
				seen = seen || f.kind == k && f.group == g
				switch {
				case f.kind != k || f.group != g:
				case f.alone && rep.alone(f):
					aloneBack, aloneCaught = seconds(rep.back[f]), seconds(rep.caught[f])
				case f.alone:
					aloneBack, aloneCaught = seconds(rep.back[f])+" (overlapped)", seconds(rep.caught[f])+" (overlapped)"
				default:
					n++
					back, caught = appendMeasured(back, rep.back[f]), appendMeasured(caught, rep.caught[f])
				}
			}
			if seen {
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %s | %s |\n", k, g, aloneBack, aloneCaught, n, spread(back), spread(caught))
			}
		}
	}
	b.WriteString("\n`alone`: the long form's first phase, every fault once, one at a time (`overlapped`: its recovery outlasted the " +
		"spacing, and the next fault hurt the same group). `with others`: the faults of the lanes, which overlap: a member killed " +
		"while the database restarts, or while a member that left without a goodbye holds a rebalance for its 45 s session, " +
		"recovers with the slower of the two.\n")
	return b.String()
}

// alone reports whether no other fault of f's group was in force between f's start and
// its recovery (the later of back and caught up; its healing when neither was measured).
func (rep *report) alone(f *fault) bool {
	end := f.healed
	for _, d := range []time.Duration{rep.back[f], rep.caught[f]} {
		if t := from(f).Add(d); d >= 0 && t.After(end) {
			end = t
		}
	}
	for _, g := range rep.faults {
		if g != f && hurts(f, g) && g.start.Before(end) && g.healed.After(f.start) {
			return false
		}
	}
	return true
}

// faultLog is every fault, one a line, for the test's log.
func (rep *report) faultLog(t0 time.Time) string {
	var b strings.Builder
	for _, f := range rep.faults {
		alone := ""
		if rep.alone(f) {
			alone = "  alone"
		}
		fmt.Fprintf(&b, "%6.1fs %-48s %-9s %-22s in force %5.1fs  back %s  caught up %s%s\n", f.start.Sub(t0).Seconds(), f.kind, f.group,
			f.what, f.healed.Sub(f.start).Seconds(), seconds(rep.back[f]), seconds(rep.caught[f]), alone)
	}
	return b.String()
}

func appendMeasured(ds []time.Duration, d time.Duration) []time.Duration {
	if d < 0 {
		return ds
	}
	return append(ds, d)
}

func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	slices.Sort(ds)
	return seconds(ds[len(ds)/2]) + " / " + seconds(ds[len(ds)-1])
}

func seconds(d time.Duration) string {
	if d < 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", d.Seconds())
}

func (rep *report) args() string {
	a := fmt.Sprintf("-chaos.duration=%s -chaos.records=%d -chaos.seed=%d", rep.duration, rep.records, rep.seed)
	if rep.long {
		a = "-chaos.long " + a
	}
	return a
}

// write puts the report in the chaos-consumers section of the RESULTS.md at path.
func (rep *report) write(path string) error {
	return resultsmd.WriteSection(path, section, rep.markdown(), false)
}

// commit is the short hash of the tree's commit, or "unknown".
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// loadAverage is the machine's 1-minute load average, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}

// checkLogs fails the test on a member's exit nobody asked for, a panic, or (with
// -chaos.race) a race, and logs how many warnings and errors the members logged.
func (r *rig) checkLogs(t *testing.T) {
	for _, name := range r.order {
		g := r.groups[name]
		exits, refused := g.unexpected()
		for _, e := range exits {
			t.Error(e)
		}
		if n := g.stopsUnended(); n > 0 {
			t.Logf("chaos: %s members stopped %d times with their last batch not ended, the broker away (exit status 1; handled again)", name, n)
		}
		if refused > 0 {
			t.Logf("chaos: %s members exited %d times at their start for the database being away, and were started again", name, refused)
		}
		warn, errs := 0, 0
		var firstErrs []string
		for _, path := range g.logs() {
			b, _ := os.ReadFile(path)
			for _, line := range strings.Split(string(b), "\n") {
				switch {
				case strings.Contains(line, "WARNING: DATA RACE"), strings.HasPrefix(line, "panic:"):
					t.Errorf("%s: %s: %s", name, path, line)
				case strings.Contains(line, "level=WARN"):
					warn++
				case strings.Contains(line, "level=ERROR"):
					errs++
					if len(firstErrs) < 5 {
						firstErrs = append(firstErrs, line)
					}
				}
			}
		}
		t.Logf("chaos: %s members logged %d warnings and %d errors%s", name, warn, errs, strings.Join(append([]string{""}, firstErrs...), "\n  "))
	}
}
