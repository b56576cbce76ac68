package alerts

import "time"

// changes are what the open batch decided for the keys of one partition: written to the
// state topic in the batch's transaction, and made the partition's state if it commits.
type changes struct {
	keys   map[Key]*entry
	stream time.Time // the newest received_at the batch decided on
	swept  time.Time // the stream time of this batch's sweep, if it swept
}

// entry is one key's alert and last publish as the open batch leaves them.
type entry struct {
	alert     *Alert
	last      Published
	alertSet  bool // the batch changed alert
	lastSet   bool // the batch changed last
	forgotten bool // the key's state is deleted
	// trace is the traceparent of the decision that changed the key last in the batch, with
	// tracing on: the state records are produced in its trace.
	trace string
}

// entry returns k's entry, starting from p's committed state.
func (c *changes) entry(p *partition, k Key) *entry {
	e := c.keys[k]
	if e == nil || e.forgotten {
		p.mu.Lock()
		e = &entry{alert: p.alerts[k], last: p.published[k]}
		p.mu.Unlock()
		c.keys[k] = e
	}
	return e
}

func (e *entry) setAlert(a *Alert, changed bool) {
	if changed {
		e.alert, e.alertSet = a, true
	}
}

func (e *entry) setLast(last Published, changed bool) {
	if changed {
		e.last, e.lastSet = last, true
	}
}

// commit makes c p's state and starts the workers of the messages it owes.
func (p *partition) commit(c *changes, d *deliverer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, e := range c.keys {
		if e.forgotten {
			delete(p.alerts, k)
			delete(p.published, k)
			delete(p.deliveries, k)
			continue
		}
		if e.lastSet {
			p.published[k] = e.last
		}
		if e.alertSet {
			p.alerts[k] = e.alert
			d.kick(p, k)
		}
	}
	if c.stream.After(p.stream) {
		p.stream = c.stream
	}
	if !c.swept.IsZero() {
		p.swept = c.swept
	}
}
