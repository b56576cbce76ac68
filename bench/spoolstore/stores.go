package main

import (
	"context"
	"database/sql"
	"encoding/binary"
	"path/filepath"
	"sync"
	"time"

	"github.com/tidwall/wal"
	"github.com/twmb/franz-go/pkg/kgo"
	bolt "go.etcd.io/bbolt"
	_ "modernc.org/sqlite"

	"github.com/socialbridge/bridge/bridge/spool"
)

// committer group-commits appends for the stores without a group commit of their own: one
// goroutine takes every append waiting and commits them together.
type committer struct {
	mu      sync.Mutex
	pending []pendingAppend
	wake    chan struct{}
	commit  func(batch [][]byte) error
}

type pendingAppend struct {
	data []byte
	done chan error
}

func newCommitter(commit func([][]byte) error) *committer {
	c := &committer{wake: make(chan struct{}, 1), commit: commit}
	go c.loop()
	return c
}

func (c *committer) append(data []byte) error {
	done := make(chan error, 1)
	c.mu.Lock()
	c.pending = append(c.pending, pendingAppend{data, done})
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return <-done
}

func (c *committer) loop() {
	for range c.wake {
		c.mu.Lock()
		batch := c.pending
		c.pending = nil
		c.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		datas := make([][]byte, len(batch))
		for i, p := range batch {
			datas[i] = p.data
		}
		err := c.commit(datas)
		for _, p := range batch {
			p.done <- err
		}
	}
}

const drainBatch = 1024

// segments is bridge/spool itself, drained by its drainer into a producer that acknowledges
// at once.
type segments struct{ s *spool.Spool }

func openSegments(dir string) (store, error) {
	s, err := spool.Open(dir, spool.Options{MaxBytes: 8 << 30, Sources: []string{"bench"}})
	return &segments{s}, err
}

var seq struct {
	sync.Mutex
	n uint64
}

func (g *segments) append(data []byte) error {
	seq.Lock()
	seq.n++
	id := binary.BigEndian.AppendUint64(nil, seq.n)
	seq.Unlock()
	return g.s.Append(&kgo.Record{
		Topic: "social.post.published", Key: id, Value: data, Timestamp: time.Now(),
		Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("bench")}},
	})
}

type ackAll struct{}

func (ackAll) TryProduce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	promise(r, nil)
}

func (g *segments) drain() (int, error) {
	before := g.s.Stats()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.s.Drain(ctx, ackAll{}, spool.DrainOptions{MaxRecords: drainBatch}); close(done) }()
	for g.s.Stats().Records > 0 || g.s.Stats().Segments > 1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	return before.Records, nil
}

func (g *segments) close() error { return g.s.Close() }

// walStore is github.com/tidwall/wal: WriteBatch writes a group and fsyncs once;
// TruncateFront drops what is drained.
type walStore struct {
	log  *wal.Log
	last uint64
	c    *committer
}

func openWAL(dir string) (store, error) {
	l, err := wal.Open(dir, &wal.Options{SegmentSize: 16 << 20, NoCopy: true})
	if err != nil {
		return nil, err
	}
	w := &walStore{log: l}
	w.c = newCommitter(func(batch [][]byte) error {
		var b wal.Batch
		for _, d := range batch {
			w.last++
			b.Write(w.last, d)
		}
		return l.WriteBatch(&b)
	})
	return w, nil
}

func (w *walStore) append(data []byte) error { return w.c.append(data) }

func (w *walStore) drain() (int, error) {
	first, err := w.log.FirstIndex()
	if err != nil {
		return 0, err
	}
	last, err := w.log.LastIndex()
	if err != nil {
		return 0, err
	}
	n := 0
	for i := first; i <= last; i++ {
		if _, err := w.log.Read(i); err != nil {
			return n, err
		}
		n++
		if n%drainBatch == 0 && i < last {
			if err := w.log.TruncateFront(i + 1); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func (w *walStore) close() error { return w.log.Close() }

// boltStore is go.etcd.io/bbolt: one read-write transaction (two fsyncs) per group, keys in
// append order; the drain reads and deletes a batch per transaction.
type boltStore struct {
	db   *bolt.DB
	next uint64
	c    *committer
}

var bucket = []byte("spool")

func openBolt(dir string) (store, error) {
	db, err := bolt.Open(filepath.Join(dir, "spool.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists(bucket); return err }); err != nil {
		return nil, err
	}
	b := &boltStore{db: db}
	b.c = newCommitter(func(batch [][]byte) error {
		return db.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket(bucket)
			for _, d := range batch {
				b.next++
				if err := bk.Put(binary.BigEndian.AppendUint64(nil, b.next), d); err != nil {
					return err
				}
			}
			return nil
		})
	})
	return b, nil
}

func (b *boltStore) append(data []byte) error { return b.c.append(data) }

func (b *boltStore) drain() (int, error) {
	n := 0
	for {
		var keys [][]byte
		err := b.db.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket(bucket)
			c := bk.Cursor()
			for k, v := c.First(); k != nil && len(keys) < drainBatch; k, v = c.Next() {
				_ = append([]byte(nil), v...) // the record, handed to Kafka
				keys = append(keys, append([]byte(nil), k...))
			}
			for _, k := range keys {
				if err := bk.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || len(keys) == 0 {
			return n, err
		}
		n += len(keys)
	}
}

func (b *boltStore) close() error { return b.db.Close() }

// sqliteStore is modernc.org/sqlite in WAL mode with synchronous=FULL (an fsync per commit):
// one transaction per group; the drain selects and deletes a batch per transaction.
type sqliteStore struct {
	db *sql.DB
	c  *committer
}

func openSQLite(dir string) (store, error) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "spool.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE spool (id INTEGER PRIMARY KEY, data BLOB NOT NULL)`); err != nil {
		return nil, err
	}
	s := &sqliteStore{db: db}
	s.c = newCommitter(func(batch [][]byte) error {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		defer tx.Rollback()
		stmt, err := tx.Prepare(`INSERT INTO spool (data) VALUES (?)`)
		if err != nil {
			return err
		}
		for _, d := range batch {
			if _, err := stmt.Exec(d); err != nil {
				return err
			}
		}
		return tx.Commit()
	})
	return s, nil
}

func (s *sqliteStore) append(data []byte) error { return s.c.append(data) }

func (s *sqliteStore) drain() (int, error) {
	n := 0
	for {
		tx, err := s.db.Begin()
		if err != nil {
			return n, err
		}
		rows, err := tx.Query(`SELECT id, data FROM spool ORDER BY id LIMIT ?`, drainBatch)
		if err != nil {
			tx.Rollback()
			return n, err
		}
		var last int64
		got := 0
		for rows.Next() {
			var data []byte
			if err := rows.Scan(&last, &data); err != nil {
				rows.Close()
				tx.Rollback()
				return n, err
			}
			got++
		}
		rows.Close()
		if got == 0 {
			tx.Rollback()
			return n, nil
		}
		if _, err := tx.Exec(`DELETE FROM spool WHERE id <= ?`, last); err != nil {
			tx.Rollback()
			return n, err
		}
		if err := tx.Commit(); err != nil {
			return n, err
		}
		n += got
	}
}

func (s *sqliteStore) close() error { return s.db.Close() }
