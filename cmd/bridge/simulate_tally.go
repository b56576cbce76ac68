package main

import (
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/socialbridge/bridge/bridge/providers"
)

// tally counts the answers of a simulation by outcome, and those that were not expected.
type tally struct {
	mu    sync.Mutex
	by    map[string]int
	n     int
	wrong int
}

func (t *tally) add(outcome string, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.by == nil {
		t.by = map[string]int{}
	}
	t.by[outcome]++
	t.n++
	if !ok {
		t.wrong++
	}
}

func (t *tally) total() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

func (t *tally) unexpected() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.wrong
}

// print writes the summary: how many went where in how long, then the count of each outcome.
func (t *tally) print(w io.Writer, took time.Duration, target string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(w, "\n%d deliveries to %s in %v (%.1f/s)\n", t.n, target, took.Round(time.Millisecond), float64(t.n)/max(took.Seconds(), 1e-9))
	for _, o := range slices.Sorted(maps.Keys(t.by)) {
		fmt.Fprintf(w, "  %-16s %d\n", o, t.by[o])
	}
	fmt.Fprintf(w, "as expected: %d, unexpected: %d\n", t.n-t.wrong, t.wrong)
}

// redeliveryWindow keeps redeliveries inside every preset's replay window (Standard
// Webhooks refuses a timestamp more than 5 minutes old): an older delivery is not repeated.
const redeliveryWindow = 4 * time.Minute

// redeliveries remembers the latest accepted deliveries of a run, for --duplicates to repeat.
type redeliveries struct {
	mu   sync.Mutex
	ring []sent
	next int
}

type sent struct {
	d   providers.Delivery
	typ string
	at  time.Time
}

const redeliveryPool = 64

func (r *redeliveries) add(d providers.Delivery, typ string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ring) < redeliveryPool {
		r.ring = append(r.ring, sent{d, typ, at})
		return
	}
	r.ring[r.next] = sent{d, typ, at}
	r.next = (r.next + 1) % redeliveryPool
}

// pick returns one of the remembered deliveries sent within redeliveryWindow of now.
func (r *redeliveries) pick(now time.Time) (providers.Delivery, string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ring) == 0 {
		return providers.Delivery{}, "", false
	}
	s := r.ring[rand.IntN(len(r.ring))]
	if now.Sub(s.at) > redeliveryWindow {
		return providers.Delivery{}, "", false
	}
	return s.d, s.typ, true
}
