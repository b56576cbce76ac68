package alerts

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/internal/telemetry"
)

// deliverer runs one worker per key that owes Slack a message: a key's messages go out in
// order, each retried with backoff until Slack accepts it, and a key whose messages fail
// never holds back another's. A message Slack refuses for good (a 4xx other than 429) is
// sent again as text only; refused again, it is given up, counted and logged, and the
// key's next message goes.
//
// The guarantee: a message is never lost (but given up), and is posted twice only when
// Slack may have taken a try whose answer was lost: the process stopped between Slack's
// answer and the record of it (a crash, or a rebalance that takes the partition meanwhile),
// or the try got no answer (a timeout, a cut connection); the tries after it then say it
// may be a repeat. Before each first POST the worker records Sending in the state topic;
// after Slack accepts, the message's id; a start that finds Sending sends it marked.
type deliverer struct {
	slack   poster
	write   func(ctx context.Context, r *kgo.Record) error // records a delivery (the batch transactions write decisions)
	topic   string
	metrics *consumers.Metrics
	sent    *prometheus.CounterVec // by kind
	gaveUp  *prometheus.CounterVec // by kind
	log     *slog.Logger
	backoff func() backoff.BackOff
}

// produceSync is deliverer.write with a plain producer.
func produceSync(cl *kgo.Client) func(context.Context, *kgo.Record) error {
	return func(ctx context.Context, r *kgo.Record) error { return cl.ProduceSync(ctx, r).FirstErr() }
}

// kick starts the worker of key k in p when k owes a message and none runs. Call with p.mu
// held.
func (d *deliverer) kick(p *partition, k Key) {
	if kind, _ := owed(p.alerts[k], p.deliveries[k]); kind == "" || p.working[k] || p.stopped() {
		return
	}
	p.working[k] = true
	p.workers.Add(1)
	go d.work(p, k)
}

// work posts k's owed messages until none is left or p is given up. A POST in flight when
// p is given up is finished and recorded; a wait between tries is cut short.
func (d *deliverer) work(p *partition, k Key) {
	defer p.workers.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		p.mu.Lock()
		a, del := p.alerts[k], p.deliveries[k]
		kind, id := owed(a, del)
		if kind == "" || ctx.Err() != nil {
			delete(p.working, k)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		next := d.send(ctx, p.id, k, a, del, kind, id)
		p.mu.Lock()
		p.deliveries[k] = next
		p.mu.Unlock()
	}
}

// send posts one message and records it, unless ctx ends first. It returns the key's
// delivery record as it now is.
func (d *deliverer) send(ctx context.Context, part int32, k Key, a *Alert, del Delivery, kind, id string) Delivery {
	mark := kind + ":" + id
	repeat := del.Sending == mark
	if !repeat {
		del.Sending = mark
		if !d.record(ctx, part, k, del) {
			return del
		}
	}
	msg := func(repeat bool) message { return alertMessage(a, repeat) }
	parent := a.Traceparent
	if kind == msgResolution {
		msg = func(repeat bool) message { return resolutionMessage(a, repeat) }
		parent = a.Resolution.Traceparent
	}
	ctx = telemetry.WithRemote(ctx, parent) // each POST is a client span of the decision's trace
	if !d.post(ctx, k, kind, id, msg, repeat) {
		return del
	}
	del.Sending = ""
	if kind == msgAlert {
		del.Alert = id
	} else {
		del.Resolution = id
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	d.record(wctx, part, k, del)
	return del
}

// recordTimeout bounds recording a message Slack accepted while the worker stops.
const recordTimeout = 30 * time.Second

// post sends msg until Slack accepts it, or refuses it and its text-only form (then it is
// given up), and reports whether it is done; false when ctx ended first. Once a try's
// answer is lost, Slack may have the message: the tries after it say it may be a repeat.
func (d *deliverer) post(ctx context.Context, k Key, kind, id string, msg func(repeat bool) message, repeat bool) bool {
	err := d.try(ctx, k, kind, func(r bool) []byte { return msg(r).withBlocks() }, &repeat)
	if errors.Is(err, errRefused) {
		d.log.Warn("slack refused the message; sending it as text only", "kind", kind, "event_id", id,
			"source", k.Source, "profile", k.Profile, "platform", k.Platform, "err", err)
		err = d.try(ctx, k, kind, func(r bool) []byte { return msg(r).textOnly() }, &repeat)
	}
	switch {
	case err == nil:
		d.sent.WithLabelValues(kind).Inc()
		return true
	case errors.Is(err, errRefused):
		d.gaveUp.WithLabelValues(kind).Inc()
		d.log.Error("slack refused the message and its text-only form; given up", "kind", kind, "event_id", id,
			"source", k.Source, "profile", k.Profile, "platform", k.Platform, "err", err)
		return true
	}
	return false
}

// try posts body(*repeat) until Slack accepts or refuses it, or ctx ends; a try without an
// answer sets *repeat.
func (d *deliverer) try(ctx context.Context, k Key, kind string, body func(repeat bool) []byte, repeat *bool) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		start := time.Now()
		err := d.slack.Post(ctx, body(*repeat))
		outcome := "ok"
		if err != nil {
			outcome = "failed"
		}
		d.metrics.Effect.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
		*repeat = *repeat || errors.Is(err, errNoAnswer)
		if errors.Is(err, errRefused) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(d.backoff()), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, wait time.Duration) {
			d.log.Warn("slack did not take a message; retrying", "kind", kind, "profile", k.Profile, "platform", k.Platform, "source", k.Source, "in", wait, "err", err)
		}))
	return err
}

// record writes del for k, trying until Kafka takes it or ctx ends.
func (d *deliverer) record(ctx context.Context, part int32, k Key, del Delivery) bool {
	r := &kgo.Record{Topic: d.topic, Partition: part, Key: k.stateKey(kindDelivery), Value: mustJSON(del)}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		return struct{}{}, d.write(ctx, r)
	}, backoff.WithBackOff(d.backoff()), backoff.WithMaxElapsedTime(0))
	if err != nil {
		d.log.Error("delivery not recorded; the message will be sent again, marked as a possible repeat", "source", k.Source, "profile", k.Profile, "platform", k.Platform, "err", err)
	}
	return err == nil
}

// defaultBackoff is the wait between tries of one message: from half a second, doubling,
// up to a minute, forever.
func defaultBackoff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 500 * time.Millisecond
	b.Multiplier = 2
	b.MaxInterval = time.Minute
	return b
}
