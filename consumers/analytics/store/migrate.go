package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"
)

// migrations holds the schema as numbered steps, NNNN_name.sql, each run once, in order.
// A released step never changes: a change of schema is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the PostgreSQL advisory lock that serializes migrations (any fixed number
// of this program's own).
const migrationLock = 7_411_203_937

type migration struct {
	version int
	name    string
	sql     string
}

// converters are the parts of steps that SQL cannot do, by version: each runs after the SQL
// of its step, in the same transaction.
var converters = map[int]func(context.Context, *sql.Tx, dialect) error{
	2: sketchBuckets,
}

// migrate brings the schema to the latest version in one transaction that first takes a lock
// (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), so consumers starting together
// never apply a step twice, and a failed step leaves the schema as it was. That is all a
// migration library would do here, and the ones we know lock PostgreSQL but not an SQLite
// file shared by two processes.
func (s *Store) migrate(ctx context.Context) error {
	steps, err := loadMigrations()
	if err != nil {
		return err
	}
	return s.migrateTo(ctx, steps)
}

// migrateTo applies, in one transaction, the steps the database has not had.
func (s *Store) migrateTo(ctx context.Context, steps []migration) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if s.dialect == postgres {
			if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
				return fmt.Errorf("store: lock for migration: %w", err)
			}
		}
		current, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if latest := len(steps); current > latest {
			return fmt.Errorf("store: the database has schema version %d, newer than this program's %d: run a newer bridge", current, latest)
		}
		for _, m := range steps {
			if m.version > current {
				if err := apply(ctx, tx, s.dialect, m); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func schemaVersion(ctx context.Context, tx *sql.Tx) (int, error) {
	const create = `CREATE TABLE IF NOT EXISTS analytics_schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at BIGINT  NOT NULL)`
	if _, err := tx.ExecContext(ctx, create); err != nil {
		return 0, fmt.Errorf("store: create migrations table: %w", err)
	}
	var v int
	err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM analytics_schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("store: read schema version: %w", err)
	}
	return v, nil
}

func apply(ctx context.Context, tx *sql.Tx, d dialect, m migration) error {
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("store: migration %04d_%s: %w", m.version, m.name, err)
	}
	if convert := converters[m.version]; convert != nil {
		if err := convert(ctx, tx, d); err != nil {
			return fmt.Errorf("store: migration %04d_%s: %w", m.version, m.name, err)
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO analytics_schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
		m.version, m.name, time.Now().Unix())
	if err != nil {
		return fmt.Errorf("store: record migration %04d: %w", m.version, err)
	}
	return nil
}

func loadMigrations() ([]migration, error) {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, f := range files {
		base := strings.TrimSuffix(strings.TrimPrefix(f, "migrations/"), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("store: migration file %s: want NNNN_name.sql", f)
		}
		body, err := migrations.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(body)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("store: migrations must be numbered 1, 2, 3…: %04d_%s is number %d", m.version, m.name, i+1)
		}
	}
	return out, nil
}

// inTx runs fn in a transaction, committed when fn returns nil and rolled back otherwise.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}
