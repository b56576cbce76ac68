package alerts

import (
	"context"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers"
)

// deliverer runs one worker per key that owes Slack a message: a key's messages go out in
// order, each retried with backoff until Slack accepts it, and a key whose messages fail
// never holds back another's.
//
// The guarantee: a message is never lost, and is posted twice only when the process stops
// between Slack's answer and the record of it (a crash, or a rebalance that takes the
// partition while the answer is lost); the second post then says it may be a repeat.
// Before each first POST the worker records Sending in the state topic; after Slack
// accepts, the message's id.
type deliverer struct {
	slack   *Slack
	writer  *kgo.Client // plain producer of delivery records; the batch transactions write decisions
	topic   string
	metrics *consumers.Metrics
	sent    *prometheus.CounterVec
	log     *slog.Logger
	backoff func() backoff.BackOff
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
		if !d.write(ctx, part, k, del) {
			return del
		}
	}
	msg := alertMessage(a, repeat)
	if kind == msgResolution {
		msg = resolutionMessage(a, repeat)
	}
	if !d.post(ctx, k, kind, msg) {
		return del
	}
	d.sent.WithLabelValues(kind).Inc()
	del.Sending = ""
	if kind == msgAlert {
		del.Alert = id
	} else {
		del.Resolution = id
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	d.write(wctx, part, k, del)
	return del
}

// recordTimeout bounds recording a message Slack accepted while the worker stops.
const recordTimeout = 30 * time.Second

// post tries msg until Slack accepts it or ctx ends. Each POST runs to its own timeout even
// when ctx ends meanwhile: its outcome is then known and recorded.
func (d *deliverer) post(ctx context.Context, k Key, kind string, msg []byte) bool {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		start := time.Now()
		err := d.slack.Post(context.WithoutCancel(ctx), msg)
		outcome := "ok"
		if err != nil {
			outcome = "failed"
		}
		d.metrics.Effect.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
		return struct{}{}, err
	}, backoff.WithBackOff(d.backoff()), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, wait time.Duration) {
			d.log.Warn("slack refused a message; retrying", "kind", kind, "profile", k.Profile, "platform", k.Platform, "source", k.Source, "in", wait, "err", err)
		}))
	return err == nil
}

// write records del for k, trying until Kafka takes it or ctx ends.
func (d *deliverer) write(ctx context.Context, part int32, k Key, del Delivery) bool {
	r := &kgo.Record{Topic: d.topic, Partition: part, Key: k.stateKey(kindDelivery), Value: mustJSON(del)}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		return struct{}{}, d.writer.ProduceSync(ctx, r).FirstErr()
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
