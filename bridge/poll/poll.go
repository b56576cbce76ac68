// Package poll runs the sources of providers that send no webhooks (Post-Bridge): on an
// interval it asks the provider's API for results newer than its cursor, and hands each to
// the ingress's request path as if it had been delivered, so that it becomes the same
// canonical event on the same topic, deduplicated by its id. The cursor is kept in Kafka
// (see KafkaCursors): a restarted bridge resumes where it stopped.
package poll

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
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

// Options are what a Poller is built from; Client, Now and Registerer may be nil.
type Options struct {
	Sources    []Source
	Sink       Sink
	Cursors    Cursors
	Client     *http.Client
	Log        *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Poller polls its sources until its context ends.
type Poller struct {
	o     Options
	polls *prometheus.CounterVec
	mu    sync.Mutex
	dirty map[string]Cursor // cursors moved but not yet saved
}

// Limits of one poll.
const (
	maxPages     = 50       // a poll reads at most this many pages down to its cursor
	maxPageBytes = 16 << 20 // a page larger than this is refused
	pollTimeout  = time.Minute
)

// New returns a Poller; its metric, bridge_polls_total{source,outcome}, goes to
// o.Registerer.
func New(o Options) *Poller {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	p := &Poller{o: o, dirty: map[string]Cursor{}, polls: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bridge_polls_total", Help: "Polls of the polled sources, by outcome (ok or error).",
	}, []string{"source", "outcome"})}
	if o.Registerer != nil {
		o.Registerer.MustRegister(p.polls)
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
		cur = next
		outcome := "ok"
		if err != nil && ctx.Err() == nil {
			outcome = "error"
			p.o.Log.Warn("poll failed; the next one tries again from the same place", "source", src.Name, "err", err)
		}
		p.polls.WithLabelValues(src.Name, outcome).Inc()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once polls src once from cur and returns the cursor after it. It reads the listing down
// to the first result cur has seen, and emits the new results oldest first; then the
// cursor moves past them and is saved. A first poll (cur not started) only takes its place
// at the head of the listing, as a webhook subscription starts with the events after it.
// When an emit fails, the cursor moves past the results emitted before it, and the rest is
// read again next time; when the save fails, the next poll saves again. Should the bridge
// stop before a save, the results read again are duplicates the sink drops by id.
func (p *Poller) Once(ctx context.Context, src *Source, cur Cursor) (Cursor, error) {
	fresh, err := p.fetch(ctx, src, cur)
	if err != nil {
		return cur, p.saveDirty(ctx, src, err)
	}
	if !cur.Started {
		next := cur.advance(ids(fresh))
		p.o.Log.Info("first poll: later results become events", "source", src.Name, "listed", len(fresh))
		return next, p.save(ctx, src, next)
	}
	done := 0
	for i := len(fresh) - 1; i >= 0 && err == nil; i-- {
		if err = p.emit(ctx, src, fresh[i]); err == nil {
			done++
		}
	}
	next := cur.advance(ids(fresh[len(fresh)-done:]))
	if done == 0 {
		return cur, p.saveDirty(ctx, src, err)
	}
	return next, errors.Join(err, p.save(ctx, src, next))
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

// fetch returns the results newer than cur, newest first: every result down to the first
// cur has seen (for a first poll, the first page).
func (p *Poller) fetch(ctx context.Context, src *Source, cur Cursor) ([]providers.Item, error) {
	var fresh []providers.Item
	for page := 0; page < maxPages; page++ {
		items, more, err := p.page(ctx, src, len(fresh))
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if cur.seen(it.ID) {
				return fresh, nil
			}
			fresh = append(fresh, it)
		}
		if !more || !cur.Started {
			return fresh, nil
		}
	}
	p.o.Log.Warn("more new results than a poll reads: the older ones are skipped", "source", src.Name, "read", len(fresh))
	return fresh, nil
}

func (p *Poller) page(ctx context.Context, src *Source, offset int) ([]providers.Item, bool, error) {
	req, err := src.Preset.PageRequest(ctx, src.BaseURL, src.APIKey, offset)
	if err != nil {
		return nil, false, err
	}
	resp, err := p.o.Client.Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBytes+1))
	switch {
	case err != nil:
		return nil, false, fmt.Errorf("read the page at offset %d: %w", offset, err)
	case resp.StatusCode != http.StatusOK:
		return nil, false, fmt.Errorf("the API answered %s to the page at offset %d", resp.Status, offset)
	case len(body) > maxPageBytes:
		return nil, false, fmt.Errorf("the page at offset %d is larger than %d bytes", offset, maxPageBytes)
	}
	return src.Preset.Page(body)
}

// emit hands one result to the sink: normalized, or quarantined if it cannot be.
func (p *Poller) emit(ctx context.Context, src *Source, it providers.Item) error {
	now := p.o.Now()
	var ev event.Event
	if err := src.Preset.Normalize(noHeaders{}, it.Raw, &ev); err != nil {
		if failure.KindOf(err) != failure.Unnormalizable {
			return err
		}
		fe, _ := errors.AsType[*failure.Error](err)
		return p.o.Sink.Quarantine(src.Name, it.Raw, fe.Reason, now)
	}
	_, err := p.o.Sink.Emit(ctx, src.Name, &ev, it.Raw, now)
	return err
}

// noHeaders are the headers of a polled result: it has none.
type noHeaders struct{}

func (noHeaders) Peek(string) []byte { return nil }
