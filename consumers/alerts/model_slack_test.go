package alerts

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"pgregory.net/rapid"
)

// fakeSlack is the model test's Slack: every POST waits in flight until a step answers
// it, and what it accepted is kept in order.
type fakeSlack struct {
	inFlight []*call
	events   []slackEvent // in order
	fate     map[string]int
}

// slackEvent is a message Slack accepted, or refused in its text-only form: the sender
// then gave it up.
type slackEvent struct {
	p      *posted
	gaveUp bool
}

// The fate of a message, drawn when Slack first sees it: taken when Slack answers 200,
// or refused for good with its blocks (a link Slack will not take), or in every form.
const (
	fateFine = iota
	fateRefusesBlocks
	fateRefusesAll
)

// call is one POST in flight.
type call struct {
	m      *member
	msg    *posted
	answer chan error
}

// part is the keyed partition of the call's key.
func (c *call) part() int32 {
	return int32(modelHash.Partition(&kgo.Record{Key: c.msg.key.bytes()}, modelKeyedParts))
}

// posted is a message as Slack sees it.
type posted struct {
	key    Key
	kind   string // msgAlert, msgResolution
	id     string // the event id it is about
	repeat bool   // marked as a possible repeat
	blocks bool   // posted with blocks (else text only)
	known  bool   // the sender learnt that Slack took it
}

func (p *posted) name() string { return p.kind + ":" + p.id }

// fakePoster is the poster of one member's process.
type fakePoster struct {
	w *world
	m *member
}

func (f *fakePoster) Post(_ context.Context, body []byte) error {
	w := f.w
	w.mu.Lock()
	if f.m.dead {
		w.mu.Unlock()
		return errDead
	}
	c := &call{m: f.m, msg: parse(w.t, body), answer: make(chan error)}
	w.slack.inFlight = append(w.slack.inFlight, c)
	w.mu.Unlock()
	return <-c.answer
}

var (
	reEvent = regexp.MustCompile(`event ([a-z0-9]+)`)
	reWho   = regexp.MustCompile(`: (\S+) on (\S+) \(source (\S+)\)`)
)

// parse reads back what a Slack message says.
func parse(t *rapid.T, body []byte) *posted {
	var m struct {
		Text   string `json:"text"`
		Blocks []any  `json:"blocks"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("slack got %s: %v", body, err)
	}
	ev, who := reEvent.FindSubmatch(body), reWho.FindStringSubmatch(m.Text)
	if ev == nil || who == nil {
		t.Fatalf("slack got a message without its event or key: %s", body)
	}
	p := &posted{key: Key{Source: who[3], Profile: who[1], Platform: who[2]}, id: string(ev[1]),
		repeat: strings.Contains(m.Text, "sent again"), blocks: m.Blocks != nil}
	switch {
	case strings.HasPrefix(m.Text, ":warning:"):
		p.kind = msgAlert
	case strings.HasPrefix(m.Text, ":white_check_mark:"):
		p.kind = msgResolution
	default:
		t.Fatalf("slack got a message of no known kind: %s", body)
	}
	return p
}

// pending are the POSTs in flight, in an order that does not depend on which worker ran
// first.
func (w *world) pending() []*call {
	w.mu.Lock()
	defer w.mu.Unlock()
	return sorted(w.slack.inFlight)
}

func sorted(calls []*call) []*call {
	return slices.SortedStableFunc(slices.Values(calls), func(a, b *call) int {
		return cmp.Or(cmp.Compare(a.m.id, b.m.id), cmp.Compare(a.msg.key.Profile, b.msg.key.Profile), cmp.Compare(a.msg.name(), b.msg.name()))
	})
}

// take removes the POSTs in flight that match, to be answered.
func (w *world) take(match func(*call) bool) []*call {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out, rest []*call
	for _, c := range w.slack.inFlight {
		if match(c) {
			out = append(out, c)
		} else {
			rest = append(rest, c)
		}
	}
	w.slack.inFlight = rest
	return sorted(out)
}

// accept records that Slack took c's message; known: the sender hears it.
func (w *world) accept(c *call, known bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := *c.msg
	p.known = known
	w.slack.events = append(w.slack.events, slackEvent{p: &p})
}

func (w *world) refuse(c *call) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !c.msg.blocks {
		w.slack.events = append(w.slack.events, slackEvent{p: c.msg, gaveUp: true})
	}
}

func (w *world) fateOf(t *rapid.T, c *call) int {
	w.mu.Lock()
	f, ok := w.slack.fate[c.msg.name()]
	w.mu.Unlock()
	if !ok {
		f = rapid.SampledFrom([]int{fateFine, fateFine, fateFine, fateFine, fateRefusesBlocks, fateRefusesAll}).Draw(t, "fate")
		w.mu.Lock()
		w.slack.fate[c.msg.name()] = f
		w.mu.Unlock()
	}
	return f
}

// GoString is how rapid prints a drawn call.
func (c *call) GoString() string {
	return fmt.Sprintf("POST of member %d: %s for %s (repeat %v, blocks %v)", c.m.id, c.msg.name(), c.msg.key.Profile, c.msg.repeat, c.msg.blocks)
}
