// Package dbtest gives the analytics tests a database of each kind the store supports: an
// SQLite file in the test's temporary folder, and a schema of its own in the PostgreSQL of the
// test command (BRIDGE_TEST_POSTGRES), dropped when the test ends. Import it only from tests.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"

	"github.com/socialbridge/bridge/internal/testenv"
)

// Kinds are the names Run gives its subtests, one per kind of database.
var Kinds = []string{"sqlite", "postgres"}

// Run runs fn as a subtest for each kind of database, with the value of the config key
// consumers.analytics.database that reaches a fresh, empty one.
func Run(t *testing.T, fn func(t *testing.T, database string)) {
	for _, kind := range Kinds {
		t.Run(kind, func(t *testing.T) { fn(t, New(t, kind)) })
	}
}

// New returns a fresh, empty database of kind ("sqlite" or "postgres"), as the config key
// consumers.analytics.database names it. The PostgreSQL one needs BRIDGE_TEST_POSTGRES: the
// test is skipped without it, or fails under CI.
func New(t testing.TB, kind string) string {
	t.Helper()
	if kind == "sqlite" {
		return "sqlite:" + filepath.Join(t.TempDir(), "analytics.db")
	}
	return postgresSchema(t, testenv.Require(t, testenv.Postgres))
}

func postgresSchema(t testing.TB, base string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "analytics_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("dbtest: create schema: %v", err)
	}
	t.Cleanup(func() { dropSchema(t, base, schema) })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("dbtest: %s: %v", testenv.Postgres, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	t.Logf("dbtest: postgres schema %s", schema)
	return u.String()
}

func dropSchema(t testing.TB, base, schema string) {
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Errorf("dbtest: %v", err)
		return
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
		t.Errorf("dbtest: drop schema %s: %v", schema, err)
	}
}
