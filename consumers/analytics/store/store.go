// Package store keeps the analytics consumer's hourly aggregates, and the Kafka offsets they
// include, in one SQL database through database/sql: embedded SQLite (modernc.org/sqlite,
// pure Go) or PostgreSQL (pgx). The same schema and statements serve both (PostgreSQL gets
// its rows as arrays, SQLite as multi-row VALUES).
//
// Per (hour, platform, profile) a row holds the counts and an encoded sketch of the publish
// delays (package sketch); two rollups, per (hour, platform) and per (day, platform,
// profile), are written in the same transaction, so that queries over a month read
// thousands of rows, not hundreds of thousands. Queries run in a View: one snapshot.
//
// Exactly-once rests on one rule: a batch's aggregates and the next offset of each of its
// partitions are written in one transaction, which counts only the records not counted yet
// and never stores an offset past a record it does not count (see Tx.Apply). The database,
// not the group's committed offsets, says where each partition resumes. Batches write one at a time (see Begin), which also
// makes merging a batch's sketches into the stored ones safe.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	sqlitedriver "modernc.org/sqlite"  // registers "sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Store is an open analytics database whose schema is current. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect dialect
	cache   sketchCache
}

type dialect int

const (
	sqlite dialect = iota
	postgres
)

// Open connects to database, "sqlite:PATH" or a "postgres://" DSN (the forms of the config key
// consumers.analytics.database), and migrates its schema to the current version.
func Open(ctx context.Context, database string) (*Store, error) {
	s, err := connect(database)
	if err != nil {
		return nil, err
	}
	if err := s.firstConnection(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("store: open: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

func connect(database string) (*Store, error) {
	switch {
	case strings.HasPrefix(database, "sqlite:"):
		db, err := sql.Open("sqlite", sqliteDSN(strings.TrimPrefix(database, "sqlite:")))
		if err != nil {
			return nil, fmt.Errorf("store: open sqlite: %w", err)
		}
		return &Store{db: db, dialect: sqlite}, nil
	case strings.HasPrefix(database, "postgres://"), strings.HasPrefix(database, "postgresql://"):
		db, err := sql.Open("pgx", database)
		if err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", err)
		}
		return &Store{db: db, dialect: postgres}, nil
	}
	return nil, errors.New("store: database must be sqlite:PATH or a postgres:// DSN")
}

// busyTimeout is how long an SQLite connection waits for another's write lock.
const busyTimeout = 30 * time.Second

// firstConnection opens a first connection. On SQLite, that turns a new file to WAL mode,
// which needs the file to itself: a connection that finds another doing the same is answered
// SQLITE_BUSY at once, without waiting for the busy timeout, so consumers starting together
// on a new file would fail. It is tried again until busyTimeout; once the file is in WAL
// mode, connections open without needing it alone.
func (s *Store) firstConnection(ctx context.Context) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		err := s.db.PingContext(ctx)
		var e *sqlitedriver.Error
		if err == nil || !errors.As(err, &e) || e.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// sqliteDSN opens path in WAL mode, so the dashboard reads while the consumer writes, and
// starts every transaction with the write lock (BEGIN IMMEDIATE), so two consumers sharing
// the file queue at BEGIN instead of failing at their first write. synchronous=NORMAL may lose
// the last transactions on power loss, never on a crash of the process; they would lose their
// offsets with them, so the records are counted again, once.
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// System names the database as the OpenTelemetry conventions do (db.system.name).
func (s *Store) System() string {
	if s.dialect == postgres {
		return "postgresql"
	}
	return "sqlite"
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }
