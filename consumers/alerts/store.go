package alerts

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkaconn"
)

// partition is the state of the keys of one keyed partition owned by this member. Its
// maps hold what is committed in the state topic; mu guards them against the workers.
type partition struct {
	id         int32
	mu         sync.Mutex
	alerts     map[Key]*Alert
	published  map[Key]Published
	deliveries map[Key]Delivery
	working    map[Key]bool   // a worker posts this key's messages
	stream     time.Time      // the newest received_at decided on (at a load, of the state read)
	swept      time.Time      // the stream time of the last look for forgettable keys
	stop       chan struct{}  // closed when the partition is given up
	workers    sync.WaitGroup // the partition's workers
}

func newPartition(id int32) *partition {
	return &partition{id: id, alerts: map[Key]*Alert{}, published: map[Key]Published{}, deliveries: map[Key]Delivery{},
		working: map[Key]bool{}, stop: make(chan struct{})}
}

// apply reads one state record into p; a record without a value deletes the key's record
// of that kind.
func (p *partition) apply(r *kgo.Record) error {
	var parts []string
	if err := json.Unmarshal(r.Key, &parts); err == nil && len(parts) == 2 && parts[0] == kindMark {
		return nil
	} else if err != nil || len(parts) != 4 {
		return fmt.Errorf("state record at offset %d: bad key %q", r.Offset, r.Key)
	}
	k := Key{Source: parts[1], Profile: parts[2], Platform: parts[3]}
	var err error
	switch parts[0] {
	case kindAlert:
		err = applyTo(p.alerts, k, r.Value, func(a *Alert) *Alert { return a })
	case kindPublish:
		err = applyTo(p.published, k, r.Value, func(v *Published) Published { return *v })
	case kindDelivery:
		err = applyTo(p.deliveries, k, r.Value, func(d *Delivery) Delivery { return *d })
	}
	if err != nil {
		return fmt.Errorf("state record at offset %d: %w", r.Offset, err)
	}
	return nil
}

// applyTo sets m[k] to the JSON value v, or deletes it when v is nil.
func applyTo[T, V any](m map[Key]V, k Key, v []byte, val func(*T) V) error {
	if v == nil {
		delete(m, k)
		return nil
	}
	var t T
	if err := json.Unmarshal(v, &t); err != nil {
		return err
	}
	m[k] = val(&t)
	return nil
}

// loaded sets p's stream time from the state read: the newest time it holds of an event.
// It is at most the true one, which only makes keys forgotten later.
func (p *partition) loaded() {
	for _, a := range p.alerts {
		p.stream = later(p.stream, a.RaisedAt)
		if a.Resolution != nil {
			p.stream = later(p.stream, a.Resolution.At)
		}
	}
	for _, v := range p.published {
		p.stream = later(p.stream, v.At)
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// eachKey calls f once for each key with state in p or in c. Call with p.mu held.
func (p *partition) eachKey(c *changes, f func(Key)) {
	for k := range p.alerts {
		f(k)
	}
	for k := range p.published {
		if p.alerts[k] == nil {
			f(k)
		}
	}
	for k := range p.deliveries {
		if p.alerts[k] == nil && p.published[k].At.IsZero() {
			f(k)
		}
	}
	for k := range c.keys {
		if p.alerts[k] == nil && p.published[k].At.IsZero() && !p.hasDelivery(k) {
			f(k)
		}
	}
}

func (p *partition) hasDelivery(k Key) bool {
	_, ok := p.deliveries[k]
	return ok
}

// keys is the number of keys with state in p.
func (p *partition) keys() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	p.eachKey(&changes{}, func(Key) { n++ })
	return n
}

// load reads the state topic's partitions ids whole into new partitions, and returns how
// many records it read. "Whole" is up to a marker it first writes at the end of each:
// every committed transaction before it is read, and one still open (a crashed member's)
// is waited for until the broker ends it.
func load(ctx context.Context, k config.Kafka, writer *kgo.Client, topic string, ids []int32) (map[int32]*partition, int, error) {
	out := make(map[int32]*partition, len(ids))
	want := map[int32]kgo.Offset{}
	marks := map[int32]string{}
	rs := make([]*kgo.Record, 0, len(ids))
	for _, id := range ids {
		out[id] = newPartition(id)
		want[id] = kgo.NewOffset().AtStart()
		marks[id] = nonce()
		rs = append(rs, &kgo.Record{Topic: topic, Partition: id, Key: markKey(id), Value: []byte(marks[id])})
	}
	if err := writer.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return nil, 0, fmt.Errorf("mark the end of %s%v: %w", topic, ids, err)
	}
	n, err := read(ctx, k, topic, want, marks, out)
	for _, p := range out {
		p.loaded()
	}
	return out, n, err
}

// markKey is the key of partition id's load marker: one key per partition, so compaction
// keeps one marker each.
func markKey(id int32) []byte { return mustJSON([]string{kindMark, strconv.Itoa(int(id))}) }

func nonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// read consumes the partitions in want until each shows its marker, and returns how many
// records it read.
func read(ctx context.Context, k config.Kafka, topic string, want map[int32]kgo.Offset, marks map[int32]string, into map[int32]*partition) (int, error) {
	cl, err := kgo.NewClient(append(kafkaconn.Options(k),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: want}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	n := 0
	for len(marks) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("reading %s: %w", topic, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		fs.EachRecord(func(r *kgo.Record) {
			n++
			if m, ok := marks[r.Partition]; ok && bytes.Equal(r.Key, markKey(r.Partition)) && string(r.Value) == m {
				delete(marks, r.Partition)
			}
			if err := into[r.Partition].apply(r); err != nil && ferr == nil {
				ferr = err
			}
		})
		if ferr != nil {
			return n, fmt.Errorf("reading %s: %w", topic, ferr)
		}
	}
	return n, nil
}

func (p *partition) stopped() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// parts are the keyed partitions this member owns, with their state.
type parts struct {
	mu sync.Mutex
	m  map[int32]*partition
}

func (ps *parts) get(id int32) *partition {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.m[id]
}

func (ps *parts) add(loaded map[int32]*partition) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.m == nil {
		ps.m = map[int32]*partition{}
	}
	for id, p := range loaded {
		ps.m[id] = p
	}
}

// drop gives up partitions ids (all with nil): their workers stop, a POST in flight is
// finished and recorded, and drop returns when they are done.
func (ps *parts) drop(ids []int32, all bool) {
	ps.mu.Lock()
	var gone []*partition
	for id, p := range ps.m {
		if all || contains(ids, id) {
			gone = append(gone, p)
			delete(ps.m, id)
		}
	}
	ps.mu.Unlock()
	for _, p := range gone {
		close(p.stop)
	}
	for _, p := range gone {
		p.workers.Wait()
	}
}

func contains(ids []int32, id int32) bool {
	for _, i := range ids {
		if i == id {
			return true
		}
	}
	return false
}

// keys is the number of keys with state in the partitions owned.
func (ps *parts) keys() int {
	ps.mu.Lock()
	all := make([]*partition, 0, len(ps.m))
	for _, p := range ps.m {
		all = append(all, p)
	}
	ps.mu.Unlock()
	n := 0
	for _, p := range all {
		n += p.keys()
	}
	return n
}
