package alerts

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing/synctest"
	"time"

	"github.com/socialbridge/bridge/event"
)

// mAlert is an alert as the model decides it.
type mAlert struct {
	id        string
	at, until time.Time
	res       string // the publish that resolved it
}

// mKey is a key as the model sees it: every alert raised, in order, and its last publish.
type mKey struct {
	alerts    []*mAlert
	last      time.Time
	published []time.Time // every publish decided
	history   []string    // every event decided, in order, for messages
}

func (k *mKey) cur() *mAlert {
	if len(k.alerts) == 0 {
		return nil
	}
	return k.alerts[len(k.alerts)-1]
}

// decide is the specification, over the whole history: an expiry alerts unless a publish
// received at or after it was seen, or it is the current alert, or the current alert is
// open and its cool-down not over; a publish resolves the current alert when it is open
// and raised at or before it.
func (k *mKey) decide(n *notice) {
	t, cur := n.ReceivedAt, k.cur()
	k.history = append(k.history, n.ID+"@"+t.Format("15:04"))
	switch n.Type {
	case event.PostTokenExpired:
		if !t.After(k.last) || cur != nil && (cur.id == n.ID || cur.res == "" && t.Before(cur.until)) {
			return
		}
		k.alerts = append(k.alerts, &mAlert{id: n.ID, at: t, until: t.Add(modelCooldown)})
	case event.PostPublished:
		k.published = append(k.published, t)
		if t.After(k.last) {
			k.last = t
		}
		if cur != nil && cur.res == "" && !t.Before(cur.at) {
			cur.res = n.ID
		}
	}
}

// model replays the committed keyed records, in each partition's order (the order they
// are decided in), through the specification.
func (w *world) model() map[Key]*mKey {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[Key]*mKey{}
	for _, log := range w.logs[Keyed(modelPrefix)] {
		for _, e := range log {
			if !e.visible() {
				continue
			}
			n, err := readNotice(e.r.Value)
			if err != nil {
				w.t.Fatalf("keyed record at %d: %v", e.r.Offset, err)
			}
			if out[n.Key] == nil {
				out[n.Key] = &mKey{}
			}
			out[n.Key].decide(&n)
		}
	}
	for key, k := range out {
		checkSpec(w, key, k)
	}
	return out
}

// checkSpec checks the model's decisions against the promises themselves, so that the
// model cannot drift from them: one alert per cool-down unless resolved in between, and
// the last alert resolved whenever a publish received at or after it was decided.
func checkSpec(w *world, key Key, k *mKey) {
	for i := 1; i < len(k.alerts); i++ {
		a, b := k.alerts[i-1], k.alerts[i]
		if a.res == "" && b.at.Before(a.until) {
			w.t.Fatalf("%v: model alerted %s inside the cool-down of open alert %s", key, b.id, a.id)
		}
	}
	if cur := k.cur(); cur != nil && cur.res == "" {
		for _, p := range k.published {
			if !p.Before(cur.at) {
				w.t.Fatalf("%v: model left alert %s open though a publish received at %s, after it, was decided", key, cur.id, p)
			}
		}
	}
}

func (w *world) slackEvents() []slackEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.slack.events)
}

// checkAccepted checks what Slack took against the model: only messages it decided, each
// once unless marked, a resolution after its alert.
func (w *world) checkAccepted(model map[Key]*mKey) {
	unmarked := map[string]int{}
	had := map[Key]map[string]bool{}
	for _, e := range w.slackEvents() {
		p, k := e.p, model[e.p.key]
		if k == nil {
			w.t.Fatalf("slack got %s for %v, for which nothing was decided", p.name(), p.key)
		}
		if had[p.key] == nil {
			had[p.key] = map[string]bool{}
		}
		switch p.kind {
		case msgAlert:
			if !slices.ContainsFunc(k.alerts, func(a *mAlert) bool { return a.id == p.id }) {
				w.t.Fatalf("slack got alert %s for %v, which the model did not raise (alerts %s)", p.id, p.key, alertIDs(k))
			}
		case msgResolution:
			i := slices.IndexFunc(k.alerts, func(a *mAlert) bool { return a.res == p.id })
			if i < 0 {
				w.t.Fatalf("slack got resolution %s for %v, which resolved nothing in the model (alerts %s)", p.id, p.key, alertIDs(k))
			}
			if !had[p.key][msgAlert+":"+k.alerts[i].id] {
				w.t.Fatalf("slack got resolution %s for %v before its alert %s", p.id, p.key, k.alerts[i].id)
			}
		}
		if !e.gaveUp && !p.repeat {
			if unmarked[p.name()]++; unmarked[p.name()] > 1 {
				w.t.Fatalf("slack got %s for %v twice without the repeat marker", p.name(), p.key)
			}
		}
		had[p.key][p.name()] = true
	}
}

func alertIDs(k *mKey) string {
	var s []string
	for _, a := range k.alerts {
		s = append(s, fmt.Sprintf("%s@%s→%s", a.id, a.at.Format("15:04"), a.res))
	}
	return fmt.Sprint(s, ", decided in the order ", k.history)
}

// settle lets everything finish: Slack answers every POST (its fates still apply), each
// member consumes what it owns, timers fire; until nothing moves.
func (w *world) settle() {
	for range 500 {
		synctest.Wait()
		moved := false
		for _, c := range w.take(func(*call) bool { return true }) {
			w.answer(w.t, c, "ok")
			moved = true
		}
		for _, m := range w.members {
			if fs, polled := w.fetch(m, 1000); len(polled) > 0 {
				w.batch(m, fs, polled, "commit")
				moved = true
			}
		}
		if !moved {
			time.Sleep(5 * time.Minute) // every wait between tries ends
			synctest.Wait()
			if len(w.pending()) == 0 && !w.unread() {
				return
			}
		}
	}
	w.t.Fatalf("not settled: %d POSTs in flight, unread records %v", len(w.pending()), w.unread())
}

// unread reports whether a partition has visible records its owner has not read.
func (w *world) unread() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, tp := range w.readPartitions() {
		for _, e := range w.logs[tp.topic][tp.part][w.members[w.owner[tp]].pos[tp]:] {
			if e.visible() {
				return true
			}
		}
	}
	return false
}

// checkSettled checks, once everything is consumed and Slack healthy, that every key's
// messages end as the model's decisions do, and that nothing is owed or being sent.
func (w *world) checkSettled() {
	model := w.model()
	w.checkAccepted(model)
	seq := map[Key][]*posted{}
	seen := map[string]bool{}
	for _, e := range w.slackEvents() {
		if !seen[e.p.name()] {
			seen[e.p.name()] = true
			seq[e.p.key] = append(seq[e.p.key], e.p)
		}
	}
	for key, k := range model {
		w.checkKeySettled(key, k, seq[key])
	}
	for _, m := range w.members {
		for _, p := range m.h.parts.m {
			p.mu.Lock()
			for key, a := range p.alerts {
				if kind, id := owed(a, p.deliveries[key]); kind != "" || p.working[key] {
					w.t.Fatalf("%v: settled, yet %s %s is owed (working %v)", key, kind, id, p.working[key])
				}
			}
			p.mu.Unlock()
		}
	}
}

func (w *world) checkKeySettled(key Key, k *mKey, got []*posted) {
	cur := k.cur()
	if cur == nil {
		if len(got) > 0 {
			w.t.Fatalf("%v: no alert decided, yet slack got %s", key, got[0].name())
		}
		return
	}
	want := msgAlert + ":" + cur.id
	if cur.res != "" {
		want = msgResolution + ":" + cur.res
	}
	if len(got) == 0 || got[len(got)-1].name() != want {
		w.t.Fatalf("%v: slack's last message is %v, want %s (alerts %s)", key, names(got), want, alertIDs(k))
	}
	for i, p := range got[:len(got)-1] {
		if p.kind != msgAlert {
			continue
		}
		a := k.alerts[slices.IndexFunc(k.alerts, func(a *mAlert) bool { return a.id == p.id })]
		if !slices.ContainsFunc(got[i+1:], func(q *posted) bool { return q.kind == msgAlert || q.id == a.res }) {
			w.t.Fatalf("%v: alert %s was neither resolved nor followed by a newer alert: %v", key, p.id, names(got))
		}
	}
}

func names(ps []*posted) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.name())
	}
	return out
}

// tick moves every keyed partition's time past forget_after and a cool-down, with a
// publish of its tick key.
func (w *world) tick() {
	at := w.newest.Add(modelForgetAfter + modelCooldown + time.Hour)
	for _, k := range w.ticks {
		w.produce(k, event.PostPublished, at, 0)
	}
}

// consumeAll has the members consume every record, Slack answering nothing.
func (w *world) consumeAll() {
	for range 100 {
		synctest.Wait()
		if !w.unread() {
			return
		}
		for _, m := range w.members {
			if fs, polled := w.fetch(m, 1000); len(polled) > 0 {
				w.batch(m, fs, polled, "commit")
			}
		}
	}
	w.t.Fatalf("records left unread")
}

// checkBounded checks that only keys with an open alert, and the tick keys, have state:
// in the members' memory and in the state topic.
func (w *world) checkBounded() {
	want := map[Key]bool{}
	for key, k := range w.model() {
		if cur := k.cur(); cur != nil && cur.res == "" {
			want[key] = true
		}
	}
	for _, k := range w.ticks {
		want[k] = true
	}
	inMemory := map[Key]bool{}
	for _, m := range w.members {
		for _, p := range m.h.parts.m {
			p.mu.Lock()
			p.eachKey(&changes{}, func(k Key) { inMemory[k] = true })
			p.mu.Unlock()
		}
	}
	if !maps.Equal(inMemory, want) {
		w.t.Fatalf("keys in memory %v, want only the open alerts and the ticks %v", slices.Collect(maps.Keys(inMemory)), slices.Collect(maps.Keys(want)))
	}
	if live := w.liveState(); !maps.Equal(live, want) {
		w.t.Fatalf("keys live in the state topic %v, want only the open alerts and the ticks %v", slices.Collect(maps.Keys(live)), slices.Collect(maps.Keys(want)))
	}
}

// liveState is the keys the state topic holds once compacted: those with a record whose
// last value is not a tombstone.
func (w *world) liveState() map[Key]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	last := map[string][]byte{}
	for _, log := range w.logs[State(modelPrefix)] {
		for _, e := range log {
			if e.visible() {
				last[string(e.r.Key)] = e.r.Value
			}
		}
	}
	out := map[Key]bool{}
	for rk, v := range last {
		var parts []string
		if err := json.Unmarshal([]byte(rk), &parts); err != nil || parts[0] == kindMark || v == nil {
			continue
		}
		out[Key{Source: parts[1], Profile: parts[2], Platform: parts[3]}] = true
	}
	return out
}
