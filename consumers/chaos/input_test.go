package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers/internal/grouptest"
	"github.com/socialbridge/bridge/event"
)

// class is how the stand-in action answers the calls for one post.failed event, when no
// fault is in force.
type class int

const (
	okFirst     class = iota // 2xx at the first call
	okAfter1                 // 500 at the first call, then 2xx
	okAfter2                 // 500 at the first two calls, then 2xx
	rateLimited              // 429 with Retry-After: 1 at the first call, then 2xx
	refused                  // 404: the provider refuses the post (dead-lettered at once)
	failing                  // 503 at every call (retries exhausted, dead-lettered)
	permanent                // never called: retryable false, or an error code classed permanent
)

var classNames = [...]string{"ok first", "ok after 1 failure", "ok after 2 failures", "rate limited once", "refused", "always failing", "permanent"}

func (c class) String() string { return classNames[c] }

// classWeights: how often each class is drawn, in that order.
var classWeights = [...]int{45, 12, 8, 8, 7, 7, 13}

// input is what a run produces, in order, and what the stand-ins and the accounting need
// to know of it.
type input struct {
	events    []*event.Event
	partition []int32          // of each event, in its topic
	class     map[string]class // of each post.failed event, by id
	// refuseBlocks: profiles whose alerts Slack refuses with blocks (invalid_blocks), and
	// takes as text only.
	refuseBlocks map[string]bool
}

// platforms and profiles the events speak of.
var platforms = []string{"instagram", "tiktok", "x"}

// generate draws about n events: post.failed for the retries group (40%), post.retry
// (10%), and for alerts post.token_expired and post.published (50%, and the few more the
// last key's script takes): scripted keys, each one to three rounds of one or two expiries and
// then a publish, and keys that only publish. Each key's events are received in script
// order and the last is a publish, so that, whatever order the group reads the two topics
// in, no alert is left open at the end. Events are interleaved at random, keeping each
// key's order; received_at grows by a millisecond an event from base.
func generate(rng *rand.Rand, n int, base time.Time) *input {
	in := &input{class: map[string]class{}, refuseBlocks: map[string]bool{}}
	var streams [][]*event.Event
	single := func(ev *event.Event) { streams = append(streams, []*event.Event{ev}) }
	for i := range n * 40 / 100 {
		single(in.failed(rng, i))
	}
	for i := range n / 10 {
		single(eventOf(event.PostRetry, fmt.Sprintf("evt_r_%06d", i), profileOf(rng)))
	}
	alerts := n - len(streams)
	seq := 0
	for k := 0; alerts > 0; k++ {
		prof, plat := fmt.Sprintf("prof_%04d", k), platforms[k%len(platforms)]
		script := keyScript(rng, k%5 == 4)
		if rng.IntN(10) == 0 {
			in.refuseBlocks[prof] = true
		}
		var s []*event.Event
		for _, typ := range script { // whole: every key's last event is a publish
			seq++
			letter := map[string]string{event.PostTokenExpired: "e", event.PostPublished: "p"}[typ]
			ev := eventOf(typ, fmt.Sprintf("evt_%s_%06d", letter, seq), [2]string{prof, plat})
			if typ == event.PostTokenExpired {
				ev.ReconnectURL = grouptest.Str("https://app.example.com/reconnect/" + prof)
			}
			s = append(s, ev)
		}
		alerts -= len(s)
		streams = append(streams, s)
	}
	in.interleave(rng, streams, base)
	return in
}

// keyScript is the types of one key's events in order: a publish-only key, or rounds of
// expiries each ended by a publish.
func keyScript(rng *rand.Rand, publishOnly bool) []string {
	if publishOnly {
		return []string{event.PostPublished, event.PostPublished}
	}
	var s []string
	for range 1 + rng.IntN(3) {
		for range 1 + rng.IntN(2) {
			s = append(s, event.PostTokenExpired)
		}
		s = append(s, event.PostPublished)
	}
	return s
}

// failed is the i-th post.failed event, of a drawn class.
func (in *input) failed(rng *rand.Rand, i int) *event.Event {
	id := fmt.Sprintf("evt_f_%06d", i)
	c := draw(rng)
	in.class[id] = c
	ev := eventOf(event.PostFailed, id, profileOf(rng))
	ev.PostID = grouptest.Str("post_" + id)
	ev.ErrorCode, ev.Retryable = grouptest.Str("rate_limited"), new(bool)
	*ev.Retryable = true
	if c == permanent {
		if rng.IntN(2) == 0 {
			ev.ErrorCode, *ev.Retryable = grouptest.Str("invalid_media"), false
		} else {
			ev.ErrorCode, ev.Retryable = grouptest.Str("token_revoked"), nil // classed permanent by its code
		}
	}
	return ev
}

func draw(rng *rand.Rand) class {
	total := 0
	for _, w := range classWeights {
		total += w
	}
	x := rng.IntN(total)
	for c, w := range classWeights {
		if x < w {
			return class(c)
		}
		x -= w
	}
	panic("unreachable")
}

func profileOf(rng *rand.Rand) [2]string {
	return [2]string{fmt.Sprintf("prof_%04d", rng.IntN(200)), platforms[rng.IntN(len(platforms))]}
}

// eventOf is an event as a provider's webhook gives it; times are set by interleave.
func eventOf(typ, id string, who [2]string) *event.Event {
	return &event.Event{ID: id, Type: typ, Source: "acme", Provider: "codivupload",
		ProfileName: grouptest.Str(who[0]), Platform: grouptest.Str(who[1]), PostID: grouptest.Str("post_" + id), Raw: []byte(`{}`)}
}

// interleave orders the streams' events at random, each stream's in its order, and sets
// their times and partitions.
func (in *input) interleave(rng *rand.Rand, streams [][]*event.Event, base time.Time) {
	var slots []int
	for i, s := range streams {
		for range s {
			slots = append(slots, i)
		}
	}
	rng.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
	next := make([]int, len(streams))
	for i, s := range slots {
		ev := streams[s][next[s]]
		next[s]++
		ev.ReceivedAt = base.Add(time.Duration(i) * time.Millisecond)
		ev.OccurredAt = ev.ReceivedAt.Add(-time.Duration(rng.IntN(90)) * time.Minute)
		in.events = append(in.events, ev)
		in.partition = append(in.partition, int32(rng.IntN(grouptest.Partitions)))
	}
}

// produce writes the events to their topics as the ingress does, spread evenly over d,
// a batch every 50 ms, until done or ctx ends; it returns the first error.
func (in *input) produce(ctx context.Context, brokers []string, prefix string, d time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	const tick = 50 * time.Millisecond
	per := max(1, int(float64(len(in.events))*tick.Seconds()/d.Seconds()))
	t := time.NewTicker(tick)
	defer t.Stop()
	for i := 0; i < len(in.events); i += per {
		var rs []*kgo.Record
		for j := i; j < min(i+per, len(in.events)); j++ {
			r, err := grouptest.Record(prefix, in.partition[j], in.events[j])
			if err != nil {
				return err
			}
			rs = append(rs, r)
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
