package main

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// provider sends deliveries as a webhook provider does, for the fault suite: each new id at
// its place in a steady schedule, to either replica at random; any answer but 200 (or no
// answer) is retried with backoff, to either replica again, until it is 200; a share of the
// ids answered 200 are delivered again a little later (a redelivery, which must be answered
// "duplicate"). It ignores Retry-After, which would only slow the suite down.
type provider struct {
	replicas  []atomic.Pointer[string] // the current address of each replica
	client    *http.Client
	phase     atomic.Pointer[string] // the phase new ids belong to
	redeliver float64
	giveUp    context.Context // ends the retries of the ids never answered 200

	mu       sync.Mutex
	ids      map[string]*idRecord
	attempts []attempt
	wg       sync.WaitGroup
}

// idRecord is what happened to one id.
type idRecord struct {
	typ, phase          string
	accepted, duplicate int
	answered            bool // at least one 200
}

// attempt is one request: when, to which replica, and its status code (0: no answer).
type attempt struct {
	start, end time.Time
	replica    int
	code       int
	id         string
}

func newProvider(giveUp context.Context, addrs []string, redeliver float64) *provider {
	p := &provider{
		replicas: make([]atomic.Pointer[string], len(addrs)),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			Proxy: nil, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
		}},
		redeliver: redeliver,
		giveUp:    giveUp,
		ids:       map[string]*idRecord{},
	}
	for i, a := range addrs {
		p.setReplica(i, a)
	}
	return p
}

func (p *provider) setReplica(i int, addr string) { p.replicas[i].Store(&addr) }

func (p *provider) setPhase(name string) { p.phase.Store(&name) }

// run sends ds at rate per second until ctx ends or ds runs out; each delivery goes on in
// the background until it is answered 200 (see wait).
func (p *provider) run(ctx context.Context, ds []delivery, rate float64) {
	start := time.Now()
	for i := range ds {
		if !sleepUntil(ctx, start.Add(time.Duration(float64(i)/rate*float64(time.Second)))) {
			return
		}
		d := &ds[i]
		p.mu.Lock()
		p.ids[d.id] = &idRecord{typ: d.typ, phase: *p.phase.Load()}
		p.mu.Unlock()
		p.wg.Go(func() { p.deliver(d, true) })
	}
}

// wait waits until every delivery sent so far has been answered 200, or giveUp ends.
func (p *provider) wait() { p.wg.Wait() }

// deliver sends d until it is answered 200; then, for a first delivery, maybe again later.
func (p *provider) deliver(d *delivery, first bool) {
	backoff := 100 * time.Millisecond
	for p.giveUp.Err() == nil {
		code, status := p.send(d)
		if code == http.StatusOK {
			p.answered(d.id, status)
			if first && rand.Float64() < p.redeliver {
				time.Sleep(time.Duration(rand.Int64N(int64(3 * time.Second))))
				p.deliver(d, false)
			}
			return
		}
		time.Sleep(backoff + time.Duration(rand.Int64N(int64(backoff))))
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (p *provider) send(d *delivery) (int, outcome) {
	i := rand.IntN(len(p.replicas))
	a := attempt{start: time.Now(), replica: i, id: d.id}
	req, _ := http.NewRequestWithContext(p.giveUp, http.MethodPost, "http://"+*p.replicas[i].Load()+webhookPath, bytes.NewReader(d.body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CodivUpload-Event", d.typ)
	req.Header.Set("X-CodivUpload-Signature", d.signature)
	var out outcome
	if resp, err := p.client.Do(req); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		a.code, out = resp.StatusCode, classify(resp.StatusCode, body)
	}
	a.end = time.Now()
	p.mu.Lock()
	p.attempts = append(p.attempts, a)
	p.mu.Unlock()
	return a.code, out
}

func (p *provider) answered(id string, o outcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.ids[id]
	r.answered = true
	switch o {
	case accepted:
		r.accepted++
	case duplicate:
		r.duplicate++
	}
}

// ledger returns the answers per id, for verify.
func (p *provider) ledger() ledger {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := ledger{}
	for id, r := range p.ids {
		a := &answers{typ: r.typ, accepted: r.accepted, duplicate: r.duplicate}
		if !r.answered {
			a.rejected = 1
		}
		l[id] = a
	}
	return l
}
