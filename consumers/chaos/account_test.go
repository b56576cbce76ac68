package chaos_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers/alerts"
	"github.com/socialbridge/bridge/consumers/retries"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// tally is one group's account at the end of a run.
type tally struct {
	group    string
	in       int      // input records
	out      []string // effects out, in words
	lost     int      // input records with no effect
	doubled  int      // effects that happened twice (the documented repeats apart)
	apart    []string // what the documentation allows, counted apart
	problems []string // each lost or doubled record and each broken rule, for the test's log
}

func (t *tally) problem(format string, args ...any) {
	t.problems = append(t.problems, fmt.Sprintf(format, args...))
}

// countBy counts records' keys.
func countBy[R any](rs []R, key func(R) string) map[string]int {
	out := map[string]int{}
	for _, r := range rs {
		out[key(r)]++
	}
	return out
}

// accountRetries: every post.failed record ends exactly once, as called ok (its action
// answered 2xx to its Idempotency-Key: calls repeated under the key are allowed, counted
// apart) or in the dead-letter topic; never in a retry topic twice, nor both ok and
// dead-lettered; a permanent failure is never called.
func (r *rig) accountRetries() tally {
	t := tally{group: "retries"}
	ins := r.tap.read(event.Topic(r.prefix, event.PostFailed))
	t.in = len(ins)
	calls, okAt := r.action.snapshot()
	callsOf := countBy(calls, func(c call) string { return c.key })
	dlq := r.tap.read(event.DLQTopic(r.prefix))
	inDLQ := countBy(dlq, func(rec *kgo.Record) string { return string(rec.Key) })
	moved := map[int]map[string]int{}
	for n := 1; n <= len(r.delays); n++ {
		rs := r.tap.read(event.RetryTopic(r.prefix, n))
		moved[n] = countBy(rs, func(rec *kgo.Record) string { return string(rec.Key) })
		for _, rec := range rs {
			if a := kafkatest.Header(rec, retries.HeaderAttempt); a != strconv.Itoa(n) {
				t.problem("%s in retry topic %d says attempt %q", rec.Key, n, a)
			}
		}
	}
	for _, rec := range ins {
		id := string(rec.Key)
		ok, dead := !okAt[id].IsZero(), inDLQ[id]
		switch {
		case !ok && dead == 0:
			t.lost++
			t.problem("%s (%s): neither called ok nor dead-lettered (%d calls)", id, r.in.class[id], callsOf[id])
		case dead > 1 || ok && dead > 0:
			t.doubled++
			t.problem("%s (%s): called ok %v, dead-lettered %d times", id, r.in.class[id], ok, dead)
		}
		for n, m := range moved {
			if m[id] > 1 {
				t.doubled++
				t.problem("%s is in retry topic %d %d times", id, n, m[id])
			}
		}
		if r.in.class[id] == permanent && callsOf[id] > 0 {
			t.problem("%s is a permanent failure, yet the action was called %d times", id, callsOf[id])
		}
	}
	checkOrigins(&t, ins, dlq)
	repeats, movedN := 0, 0
	for _, c := range calls {
		if ok := okAt[c.key]; !ok.IsZero() && c.at.After(ok) {
			repeats++
		}
	}
	for _, m := range moved {
		for _, n := range m {
			movedN += n
		}
	}
	t.out = []string{
		fmt.Sprintf("%d calls of the action, %d keys answered 2xx", len(calls), len(okAt)),
		fmt.Sprintf("%d moves to the retry topics", movedN),
		fmt.Sprintf("%d dead-lettered (%s)", len(dlq), reasons(dlq)),
	}
	t.apart = []string{fmt.Sprintf("%d calls repeated under a key already answered 2xx", repeats)}
	return t
}

// checkOrigins: a dead-lettered record says where it first entered, which is where the
// input record is.
func checkOrigins(t *tally, ins, dlq []*kgo.Record) {
	at := map[string]string{}
	for _, rec := range ins {
		at[string(rec.Key)] = fmt.Sprintf("%s/%d/%d", rec.Topic, rec.Partition, rec.Offset)
	}
	for _, rec := range dlq {
		got := strings.Join([]string{kafkatest.Header(rec, retries.HeaderOriginTopic), kafkatest.Header(rec, retries.HeaderOriginPartition), kafkatest.Header(rec, retries.HeaderOriginOffset)}, "/")
		if want := at[string(rec.Key)]; got != want {
			t.problem("%s in the DLQ says it came from %s, it is at %s", rec.Key, got, want)
		}
	}
}

// reasons counts dead-lettered records by the kind of their retry-error.
func reasons(dlq []*kgo.Record) string {
	n := map[string]int{}
	for _, rec := range dlq {
		e := kafkatest.Header(rec, retries.HeaderError)
		switch {
		case strings.HasPrefix(e, "permanent failure"):
			n["permanent"]++
		case strings.HasPrefix(e, "retries exhausted"):
			n["exhausted"]++
		case strings.Contains(e, "404"):
			n["refused"]++
		default:
			n["other"]++
		}
	}
	var parts []string
	for _, k := range []string{"permanent", "refused", "exhausted", "other"} {
		if n[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[k], k))
		}
	}
	return strings.Join(parts, ", ")
}

// accountAlerts: every expiry and publish is re-keyed exactly once; Slack has only
// messages the group's rules decide, from the committed keyed log; each at most once but
// for copies marked "may be a repeat" (counted apart); an alert before its resolution;
// each key's last message the resolution of its last alert; and no decided message left
// unsent, except one a newer alert of its key made moot before it went out (counted apart).
func (r *rig) accountAlerts() tally {
	t := tally{group: "alerts"}
	events := map[string]*event.Event{}
	for _, ev := range r.in.events {
		if ev.Type == event.PostTokenExpired || ev.Type == event.PostPublished {
			events[ev.ID] = ev
			t.in++
		}
	}
	keyed := r.tap.read(alerts.Keyed(r.prefix))
	rekeyed := countBy(keyed, func(rec *kgo.Record) string { _, id, _ := noticeID(rec.Value); return id })
	for id := range events {
		switch n := rekeyed[id]; {
		case n == 0:
			t.lost++
			t.problem("%s was never re-keyed", id)
		case n > 1:
			t.doubled++
			t.problem("%s was re-keyed %d times", id, n)
		}
	}
	decided, strange := decide(keyed, events, r.cooldown)
	for _, s := range strange {
		t.problem("keyed record of no input event: %s", s)
	}
	posts := r.slack.snapshot()
	byKey := map[string][]post{}
	var sentA, sentR, repeats, textOnly int
	for _, p := range posts {
		if p.kind == "" || p.id == "" || p.key == "" {
			t.problem("a message Slack cannot place: %s", p.body)
			continue
		}
		if p.taken {
			byKey[p.key] = append(byKey[p.key], p)
		}
	}
	superseded := 0
	for k := range keysOf(decided, byKey) {
		s := checkKey(&t, k, decided[k], byKey[k])
		sentA, sentR, repeats, textOnly, superseded = sentA+s.alerts, sentR+s.resolutions, repeats+s.repeats, textOnly+s.textOnly, superseded+s.superseded
	}
	nA, nR := 0, 0
	for _, ds := range decided {
		for _, d := range ds {
			if d.kind == "alert" {
				nA++
			} else {
				nR++
			}
		}
	}
	t.out = []string{
		fmt.Sprintf("%d records re-keyed", len(keyed)),
		fmt.Sprintf("%d alerts and %d resolutions decided", nA, nR),
		fmt.Sprintf("%d alerts and %d resolutions in Slack (%d as text only after Slack refused their blocks)", sentA, sentR, textOnly),
	}
	t.apart = []string{
		fmt.Sprintf("%d copies marked \"may be a repeat\"", repeats),
		fmt.Sprintf("%d decided messages never sent because a newer alert of their key came first", superseded),
	}
	return t
}

// keySent is what Slack has of one key.
type keySent struct{ alerts, resolutions, repeats, textOnly, superseded int }

// checkKey checks one key's messages in Slack (in the order it got them) against the
// decisions for it.
func checkKey(t *tally, key string, ds []decision, msgs []post) keySent {
	var s keySent
	decided := map[[2]string]decision{}
	for _, d := range ds {
		decided[[2]string{d.kind, d.id}] = d
	}
	seen := map[[2]string]int{} // index of the first copy
	for i, m := range msgs {
		id := [2]string{m.kind, m.id}
		d, ok := decided[id]
		switch _, again := seen[id]; {
		case !ok:
			t.doubled++
			t.problem("%s: Slack has %s %s, which the rules never decided", key, m.kind, m.id)
		case again && m.repeat:
			s.repeats++
		case again:
			t.doubled++
			t.problem("%s: Slack has %s %s again, not marked as a possible repeat", key, m.kind, m.id)
		default:
			seen[id] = i
			s.textOnly += b2i(m.textOnly)
			if m.kind == "alert" {
				s.alerts++
			} else {
				s.resolutions++
				if first, ok := seen[[2]string{"alert", d.alert}]; !ok || first > i {
					t.problem("%s: resolution %s reached Slack before its alert %s", key, m.id, d.alert)
				}
			}
		}
	}
	for i, d := range ds {
		if _, ok := seen[[2]string{d.kind, d.id}]; ok {
			continue
		}
		if slices.ContainsFunc(ds[i+1:], func(n decision) bool { return n.kind == "alert" }) {
			s.superseded++
			continue
		}
		t.lost++
		t.problem("%s: %s %s was decided and never reached Slack", key, d.kind, d.id)
	}
	if len(ds) > 0 && ds[len(ds)-1].kind != "resolution" {
		t.problem("%s: the last decision is %+v, but every key's last event is a publish", key, ds[len(ds)-1])
	}
	return s
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// keysOf is the union of the maps' keys.
func keysOf[A, B any](a map[string]A, b map[string]B) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// accountAnalytics: the database's totals per (platform, profile) and type equal the
// input's, and its offsets are at the end of every input partition.
func (r *rig) accountAnalytics(ctx context.Context) tally {
	t := tally{group: "analytics"}
	want := map[string]int64{}
	for _, ev := range r.in.events {
		want[*ev.Platform+"/"+*ev.ProfileName+"/"+ev.Type]++
		t.in++
	}
	got, err := r.counted(ctx)
	if err != nil {
		t.problem("reading the aggregates: %v", err)
		return t
	}
	var total [4]int64
	for k := range keysOf(want, got) {
		switch w, g := want[k], got[k]; {
		case g < w:
			t.lost += int(w - g)
			t.problem("%s: counted %d, want %d", k, g, w)
		case g > w:
			t.doubled += int(g - w)
			t.problem("%s: counted %d, want %d", k, g, w)
		}
		total[slices.Index(analyticsTypes, k[strings.LastIndexByte(k, '/')+1:])] += got[k]
	}
	t.out = []string{fmt.Sprintf("counted %d published, %d failed, %d token expiries, %d retries", total[0], total[1], total[2], total[3])}
	return t
}

var analyticsTypes = []string{event.PostPublished, event.PostFailed, event.PostTokenExpired, event.PostRetry}

// counted reads the analytics totals per platform/profile/type from the database.
func (r *rig) counted(ctx context.Context) (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, r.pg.DSN())
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT platform, profile, SUM(published), SUM(failed), SUM(token_expired), SUM(retries)
		FROM analytics_hourly GROUP BY platform, profile`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var plat, prof string
		var n [4]int64
		if err := rows.Scan(&plat, &prof, &n[0], &n[1], &n[2], &n[3]); err != nil {
			return nil, err
		}
		for i, typ := range analyticsTypes {
			if n[i] > 0 {
				out[plat+"/"+prof+"/"+typ] = n[i]
			}
		}
	}
	return out, rows.Err()
}
