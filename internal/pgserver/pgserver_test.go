package pgserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/socialbridge/bridge/internal/pgserver"
)

// TestRestartsKeepCommittedData stops and crashes the server with a committed row in it:
// each start brings the row back, at the same address.
func TestRestartsKeepCommittedData(t *testing.T) {
	s := pgserver.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	exec(ctx, t, s.DSN(), "CREATE TABLE kept (n INT)", "INSERT INTO kept VALUES (42)")
	for name, down := range map[string]func() error{"stop": s.Stop, "crash": s.Crash} {
		if err := down(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := pgx.Connect(ctx, s.DSN()); err == nil {
			t.Fatalf("after %s: a connection was accepted", name)
		}
		if err := s.Start(); err != nil {
			t.Fatalf("start after %s: %v", name, err)
		}
		conn, err := pgx.Connect(ctx, s.DSN())
		if err != nil {
			t.Fatal(err)
		}
		var n int
		err = conn.QueryRow(ctx, "SELECT n FROM kept").Scan(&n)
		conn.Close(ctx)
		if err != nil || n != 42 {
			t.Fatalf("after %s and a start: row %d, %v; want 42", name, n, err)
		}
	}
}

func exec(ctx context.Context, t *testing.T, dsn string, stmts ...string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
