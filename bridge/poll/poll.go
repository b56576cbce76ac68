// Package poll runs the sources of providers that send no webhooks (Post-Bridge): on an
// interval it asks the provider's API for results newer than its cursor, and hands each to
// the ingress's request path as if it had been delivered, so that it becomes the same
// canonical event on the same topic, deduplicated by its id, oldest first. A result that
// cannot be produced for good goes to the quarantine topic instead of blocking the newer
// ones. A backlog is worked off in bounded rounds (see resume.go). The cursor is kept in
// Kafka (see KafkaCursors): a restarted bridge resumes where it stopped.
package poll

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
)

// Sink takes a poll's results the way the ingress takes deliveries (ingress.Server is one).
type Sink interface {
	// Emit dedups, encodes and produces ev, whose raw payload is raw, and returns once
	// Kafka has it; dup reports an id already accepted.
	Emit(ctx context.Context, source string, ev *event.Event, raw []byte, now time.Time) (dup bool, err error)
	// Quarantine keeps a result that cannot be normalized in the dead-letter topic.
	Quarantine(source string, raw []byte, reason string, now time.Time) error
}

// Source is one polled source.
type Source struct {
	Name     string
	Preset   providers.Poller
	APIKey   string // the provider's API key; never logged
	BaseURL  string
	Interval time.Duration
}

// Options are what a Poller is built from; Client, Now, Registerer and MaxPollBytes may be
// zero.
type Options struct {
	Sources    []Source
	Sink       Sink
	Cursors    Cursors
	Client     *http.Client
	Log        *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
	// MaxPollBytes bounds the bytes of pages one round holds (DefaultMaxPollBytes when 0).
	MaxPollBytes int
}

// Poller polls its sources until its context ends.
type Poller struct {
	o       Options
	polls   *prometheus.CounterVec
	results *prometheus.CounterVec
	backlog *prometheus.GaugeVec
	mu      sync.Mutex
	dirty   map[string]Cursor // cursors moved but not yet saved
}

// pollTimeout bounds one round.
const pollTimeout = time.Minute

// New returns a Poller; its metrics (bridge_polls_total, bridge_poll_results_total,
// bridge_poll_backlog) go to o.Registerer.
func New(o Options) *Poller {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	p := &Poller{o: o, dirty: map[string]Cursor{},
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_polls_total", Help: "Poll rounds of the polled sources, by outcome (ok or error).",
		}, []string{"source", "outcome"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bridge_poll_results_total",
			Help: "Results of polled sources handled, by outcome: produced, duplicate, quarantined, or lost (could be neither produced nor quarantined; logged).",
		}, []string{"source", "outcome"}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bridge_poll_backlog", Help: "Results of a polled source known to wait above its cursor, at least (0: caught up).",
		}, []string{"source"}),
	}
	for _, src := range o.Sources { // from 0: increase() does not count a series' first value
		for _, outcome := range []string{"ok", "error"} {
			p.polls.WithLabelValues(src.Name, outcome)
		}
		for _, outcome := range []string{"produced", "duplicate", "quarantined", "lost"} {
			p.results.WithLabelValues(src.Name, outcome)
		}
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(p.polls, p.results, p.backlog)
	}
	return p
}

// loadRetry is how long Run waits before it tries again to load the cursors.
const loadRetry = 5 * time.Second

// Run loads the cursors, trying again while Kafka cannot give them, and then polls every
// source on its interval, the first time at once, until ctx ends.
func (p *Poller) Run(ctx context.Context) {
	cursors, err := p.o.Cursors.Load(ctx)
	for err != nil {
		p.o.Log.Warn("cannot load the poll cursors; polls wait for them", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(loadRetry):
		}
		cursors, err = p.o.Cursors.Load(ctx)
	}
	var wg sync.WaitGroup
	for i := range p.o.Sources {
		src := &p.o.Sources[i]
		wg.Go(func() { p.run(ctx, src, cursors[src.Name]) })
	}
	wg.Wait()
}

func (p *Poller) run(ctx context.Context, src *Source, cur Cursor) {
	t := time.NewTicker(src.Interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, pollTimeout)
		next, err := p.Once(pctx, src, cur)
		cancel()
		moved := next.Depth != cur.Depth || !slices.Equal(next.Seen, cur.Seen)
		cur = next
		outcome := "ok"
		if err != nil && ctx.Err() == nil {
			outcome = "error"
			p.o.Log.Warn("poll failed; the next one tries again from the same place", "source", src.Name, "err", err)
		}
		p.polls.WithLabelValues(src.Name, outcome).Inc()
		p.backlog.WithLabelValues(src.Name).Set(float64(cur.Depth))
		if err == nil && cur.Depth > 0 && moved && ctx.Err() == nil {
			continue // a backlog: the next round at once
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once runs one round of polling src from cur and returns the cursor after it. It reads the
// listing down to the first result cur has handled, from where cur's backlog ends (see
// resume.go), and emits the new results it holds oldest first; then the cursor moves past
// them and is saved. A first poll (cur not started) only takes its place at the head of the
// listing, as a webhook subscription starts with the events after it. A result that cannot
// be produced for good is quarantined; when an emit fails otherwise (Kafka unavailable), the
// cursor moves past the results emitted before it, and the rest is read again next time;
// when the save fails, the next poll saves again. Should the bridge stop before a save, the
// results read again are duplicates the sink drops by id.
func (p *Poller) Once(ctx context.Context, src *Source, cur Cursor) (Cursor, error) {
	if !cur.Started {
		return p.first(ctx, src, cur)
	}
	sp, err := p.read(ctx, src, cur)
	if err != nil {
		return cur, p.saveDirty(ctx, src, err)
	}
	if !sp.found {
		p.o.Log.Info("poll: a backlog longer than one round reads; the next round reads on", "source", src.Name, "read_down_to", sp.reached)
		next := cur
		next.Depth = sp.reached
		return next, p.save(ctx, src, next)
	}
	done, err := p.emitAll(ctx, src, sp.items)
	next := cur.advance(ids(sp.items[len(sp.items)-done:]), sp.start+len(sp.items)-done)
	if done == 0 && next.Depth == cur.Depth {
		return cur, p.saveDirty(ctx, src, err)
	}
	return next, errors.Join(err, p.save(ctx, src, next))
}

// first takes the cursor's place at the head of the listing.
func (p *Poller) first(ctx context.Context, src *Source, cur Cursor) (Cursor, error) {
	items, _, _, err := p.page(ctx, src, 0)
	if err != nil {
		return cur, p.saveDirty(ctx, src, err)
	}
	next := cur.advance(ids(items), 0)
	p.o.Log.Info("first poll: later results become events", "source", src.Name, "listed", len(items))
	return next, p.save(ctx, src, next)
}

// emitAll emits items, newest first, from the last, and returns how many it emitted before
// one failed.
func (p *Poller) emitAll(ctx context.Context, src *Source, items []providers.Item) (int, error) {
	for i := len(items) - 1; i >= 0; i-- {
		if err := p.emit(ctx, src, items[i]); err != nil {
			return len(items) - 1 - i, err
		}
	}
	return len(items), nil
}

func ids(items []providers.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

// save saves c, or remembers it for the next poll to save.
func (p *Poller) save(ctx context.Context, src *Source, c Cursor) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.o.Cursors.Save(ctx, src.Name, c); err != nil {
		p.dirty[src.Name] = c
		return err
	}
	delete(p.dirty, src.Name)
	return nil
}

// saveDirty saves a cursor an earlier poll could not, and adds its failure to err.
func (p *Poller) saveDirty(ctx context.Context, src *Source, err error) error {
	p.mu.Lock()
	c, ok := p.dirty[src.Name]
	p.mu.Unlock()
	if !ok {
		return err
	}
	return errors.Join(err, p.save(ctx, src, c))
}

// page asks for the page at offset and returns its items, whether more follow, and its
// size in bytes.
func (p *Poller) page(ctx context.Context, src *Source, offset int) ([]providers.Item, bool, int, error) {
	req, err := src.Preset.PageRequest(ctx, src.BaseURL, src.APIKey, offset)
	if err != nil {
		return nil, false, 0, err
	}
	resp, err := p.o.Client.Do(req)
	if err != nil {
		return nil, false, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBytes+1))
	switch {
	case err != nil:
		return nil, false, 0, fmt.Errorf("read the page at offset %d: %w", offset, err)
	case resp.StatusCode != http.StatusOK:
		return nil, false, 0, fmt.Errorf("the API answered %s to the page at offset %d", resp.Status, offset)
	case len(body) > maxPageBytes:
		return nil, false, 0, fmt.Errorf("the page at offset %d is larger than %d bytes", offset, maxPageBytes)
	}
	items, more, err := src.Preset.Page(body)
	return items, more, len(body), err
}

// emit hands one result to the sink: normalized and produced, or quarantined if it cannot
// be normalized, or cannot be produced for good. Only a failure that may pass (Kafka
// unavailable) is returned, for the result to be tried again.
func (p *Poller) emit(ctx context.Context, src *Source, it providers.Item) error {
	now := p.o.Now()
	var ev event.Event
	err := src.Preset.Normalize(noHeaders{}, it.Raw, &ev)
	if err == nil {
		var dup bool
		if dup, err = p.o.Sink.Emit(ctx, src.Name, &ev, it.Raw, now); err == nil {
			outcome := "produced"
			if dup {
				outcome = "duplicate"
			}
			p.results.WithLabelValues(src.Name, outcome).Inc()
			return nil
		}
	}
	if transient(err) {
		return err
	}
	return p.quarantine(src, it, err, now)
}

// transient reports whether err may pass when the result is tried again.
func transient(err error) bool {
	k := failure.KindOf(err)
	return k == failure.Unavailable || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// quarantine keeps a result that cause keeps out of its topic in the quarantine topic, with
// cause's reason. One that cannot be kept there either, for good, is logged and skipped:
// holding it would hold every newer result.
func (p *Poller) quarantine(src *Source, it providers.Item, cause error, now time.Time) error {
	reason := cause.Error()
	if fe, ok := errors.AsType[*failure.Error](cause); ok {
		reason = fe.Reason
	}
	if failure.KindOf(cause) != failure.Unnormalizable {
		reason = "cannot be produced: " + reason
	}
	err := p.o.Sink.Quarantine(src.Name, it.Raw, reason, now)
	switch {
	case err == nil:
		p.results.WithLabelValues(src.Name, "quarantined").Inc()
		return nil
	case transient(err):
		return err
	}
	p.results.WithLabelValues(src.Name, "lost").Inc()
	p.o.Log.Error("poll: a result could be neither produced nor quarantined; skipped", "source", src.Name, "id", it.ID, "reason", reason, "err", err)
	return nil
}

// noHeaders are the headers of a polled result: it has none.
type noHeaders struct{}

func (noHeaders) Peek(string) []byte { return nil }
