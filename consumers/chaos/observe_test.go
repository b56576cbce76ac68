package chaos_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// tp is a topic's partition.
type tp struct {
	topic     string
	partition int32
}

// offsets are an offset per partition.
type offsets map[tp]int64

// tap reads topics as a downstream reader does (read committed), from their start, the
// whole run long. It sees transaction markers too (kgo.KeepControlRecords), so that it knows
// when it has read a partition to its end: a marker, like an aborted record, takes an
// offset but is no record.
type tap struct {
	cl      *kgo.Client
	mu      sync.Mutex
	records map[string][]*kgo.Record // data records of each topic, in the order read
	pos     offsets                  // the next offset to read, markers counted
	last    offsets                  // the offset of the last data record
	done    chan struct{}
}

func startTap(brokers []string, topics ...string) (*tap, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return nil, err
	}
	t := &tap{cl: cl, records: map[string][]*kgo.Record{}, pos: offsets{}, last: offsets{}, done: make(chan struct{})}
	go t.run()
	return t, nil
}

func (t *tap) run() {
	defer close(t.done)
	for {
		fs := t.cl.PollFetches(context.Background())
		if fs.IsClientClosed() {
			return
		}
		t.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			p := tp{r.Topic, r.Partition}
			t.pos[p] = max(t.pos[p], r.Offset+1)
			if !r.Attrs.IsControl() {
				t.records[r.Topic] = append(t.records[r.Topic], r)
				t.last[p] = r.Offset
			}
		})
		t.mu.Unlock()
	}
}

func (t *tap) close() {
	t.cl.Close()
	<-t.done
}

// read returns the data records of topic read so far.
func (t *tap) read(topic string) []*kgo.Record {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*kgo.Record(nil), t.records[topic]...)
}

// reached reports whether the tap has read every partition up to ends, and if not, the
// first it has not.
func (t *tap) reached(ends offsets) (bool, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for p, end := range ends {
		if t.pos[p] < end {
			return false, fmt.Sprintf("the reader is at %d of %s[%d], whose end is %d", t.pos[p], p.topic, p.partition, end)
		}
	}
	return true, ""
}

// handled reports whether committed passes every data record the tap read of topics, and
// if not, the first partition where it does not.
func (t *tap) handled(committed offsets, topics ...string) (bool, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	want := map[string]bool{}
	for _, topic := range topics {
		want[topic] = true
	}
	for p, last := range t.last {
		if want[p.topic] && committed[p] <= last {
			return false, fmt.Sprintf("%s[%d]: committed %d, last record at %d", p.topic, p.partition, committed[p], last)
		}
	}
	return true, ""
}

// ends returns the end offsets (high watermarks) of topics.
func ends(ctx context.Context, adm *kadm.Client, topics ...string) (offsets, error) {
	l, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = l.Error()
	}
	if err != nil {
		return nil, err
	}
	out := offsets{}
	l.Each(func(o kadm.ListedOffset) { out[tp{o.Topic, o.Partition}] = o.Offset })
	return out, nil
}

// committed returns the offsets group committed in Kafka.
func committed(ctx context.Context, adm *kadm.Client, group string) (offsets, error) {
	r, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = r.Error()
	}
	if err != nil {
		return nil, err
	}
	out := offsets{}
	r.Each(func(o kadm.OffsetResponse) { out[tp{o.Topic, o.Partition}] = o.At })
	return out, nil
}

// stored returns the analytics group's offsets: the next offset of each partition, as its
// database holds them (the truth; what it commits to Kafka is a copy).
func stored(ctx context.Context, conn *pgx.Conn) (offsets, error) {
	rows, err := conn.Query(ctx, "SELECT topic, kafka_partition, next_offset FROM analytics_offsets")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := offsets{}
	for rows.Next() {
		var p tp
		var next int64
		if err := rows.Scan(&p.topic, &p.partition, &next); err != nil {
			return nil, err
		}
		out[p] = next
	}
	return out, rows.Err()
}

// sample is what the watcher saw of one group at one time: its committed offsets and the
// end offsets of its input topics.
type sample struct {
	at        time.Time
	committed offsets
	ends      offsets
}

// watcher samples each group's progress on its input topics every quarter of a second, for
// the time each fault took to recover from (see recovery).
type watcher struct {
	mu      sync.Mutex
	samples map[string][]sample // by group name
}

// progress is how the watcher reads one group: its input topics and where it is.
type progress struct {
	name   string
	inputs []string
	at     func(ctx context.Context) (offsets, error)
}

func (w *watcher) run(ctx context.Context, adm *kadm.Client, groups []progress) {
	w.samples = map[string][]sample{}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		for _, g := range groups {
			w.observe(ctx, adm, g)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *watcher) observe(ctx context.Context, adm *kadm.Client, g progress) {
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	e, err := ends(qctx, adm, g.inputs...)
	if err != nil {
		return
	}
	c, err := g.at(qctx)
	if err != nil {
		return // the database restarting, or the group not there yet: no sample
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples[g.name] = append(w.samples[g.name], sample{at: time.Now(), committed: c, ends: e})
}

// of returns the samples of group.
func (w *watcher) of(group string) []sample {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]sample(nil), w.samples[group]...)
}

// pgOffsets reads the analytics group's stored offsets through one connection, opened
// again after the database restarts.
type pgOffsets struct {
	dsn  string
	mu   sync.Mutex
	conn *pgx.Conn
}

func (p *pgOffsets) at(ctx context.Context) (offsets, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		conn, err := pgx.Connect(ctx, p.dsn)
		if err != nil {
			return nil, err
		}
		p.conn = conn
	}
	o, err := stored(ctx, p.conn)
	if err != nil {
		p.conn.Close(context.Background())
		p.conn = nil
	}
	return o, err
}

func (p *pgOffsets) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		p.conn.Close(context.Background())
	}
}
