package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
)

// database is a kind of database the consumer supports; fresh returns the config value
// (consumers.analytics.database) of a new, empty one.
type database struct {
	kind  string
	fresh func(ctx context.Context) (string, error)
}

// databases returns SQLite (files in a temporary folder) and, with a base DSN, PostgreSQL
// (a schema of its own per call), and a func that removes them all.
func databases(ctx context.Context, pgBase string) ([]database, func(), error) {
	dir, err := os.MkdirTemp("", "analytics-bench-")
	if err != nil {
		return nil, nil, err
	}
	n := 0
	dbs := []database{{kind: "SQLite", fresh: func(context.Context) (string, error) {
		n++
		return "sqlite:" + filepath.Join(dir, fmt.Sprintf("bench%d.db", n)), nil
	}}}
	var schemas []string
	cleanup := func() {
		os.RemoveAll(dir)
		dropSchemas(pgBase, schemas)
	}
	if pgBase != "" {
		dbs = append(dbs, database{kind: "PostgreSQL", fresh: func(ctx context.Context) (string, error) {
			dsn, schema, err := createSchema(ctx, pgBase)
			if err == nil {
				schemas = append(schemas, schema)
			}
			return dsn, err
		}})
	}
	return dbs, cleanup, nil
}

func createSchema(ctx context.Context, base string) (string, string, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "analytics_bench_" + hex.EncodeToString(b[:])
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", "", err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		return "", "", fmt.Errorf("postgres: create schema: %w", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", "", err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), schema, nil
}

func dropSchemas(base string, schemas []string) {
	if len(schemas) == 0 {
		return
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		return
	}
	defer db.Close()
	for _, s := range schemas {
		_, _ = db.Exec(`DROP SCHEMA ` + s + ` CASCADE`)
	}
}
