package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// table describes the statements a batch runs on one table of aggregates: an upsert of many
// rows, and a read of the stored sketches of many keys. Rows travel column by column, each
// column a []int64, []string or [][]byte of the same length.
type table struct {
	name    string
	columns []string
	types   []string // PostgreSQL's type of each column, for unnest
	key     int      // the first key columns are the primary key
	update  string   // the ON CONFLICT … DO UPDATE SET clause
}

// upsert writes the rows of cols. PostgreSQL gets one statement of arrays, whose text never
// changes, so it is planned once per connection however many rows a batch has; SQLite gets
// multi-row VALUES statements under its limit of bound parameters.
func (t table) upsert(ctx context.Context, tx *sql.Tx, d dialect, cols ...any) error {
	if rows(cols) == 0 {
		return nil
	}
	head := `INSERT INTO ` + t.name + ` (` + strings.Join(t.columns, ", ") + `) `
	tail := ` ON CONFLICT (` + strings.Join(t.columns[:t.key], ", ") + `) DO UPDATE SET ` + t.update
	if d == postgres {
		if _, err := tx.ExecContext(ctx, head+`SELECT * FROM `+t.unnest(len(cols))+tail, cols...); err != nil {
			return fmt.Errorf("store: write %s: %w", t.name, err)
		}
		return nil
	}
	return chunks(cols, func(args []any, n int) error {
		if _, err := tx.ExecContext(ctx, head+`VALUES `+placeholders(len(cols), n)+tail, args...); err != nil {
			return fmt.Errorf("store: write %s: %w", t.name, err)
		}
		return nil
	})
}

// readDelays calls scan with each stored row, among the keys of keyCols, that has a sketch:
// its key columns, then delays.
func (t table) readDelays(ctx context.Context, tx *sql.Tx, d dialect, scan func(*sql.Rows) error, keyCols ...any) error {
	if rows(keyCols) == 0 {
		return nil
	}
	keys := strings.Join(t.columns[:t.key], ", ")
	run := func(q string, args []any) error {
		rs, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("store: read %s: %w", t.name, err)
		}
		defer rs.Close()
		for rs.Next() {
			if err := scan(rs); err != nil {
				return fmt.Errorf("store: read %s: %w", t.name, err)
			}
		}
		if err := rs.Err(); err != nil {
			return fmt.Errorf("store: read %s: %w", t.name, err)
		}
		return nil
	}
	if d == postgres {
		q := `SELECT ` + keys + `, delays FROM ` + t.unnest(t.key) + ` AS k(` + keys + `) JOIN ` + t.name +
			` USING (` + keys + `) WHERE delays IS NOT NULL`
		return run(q, keyCols)
	}
	return chunks(keyCols, func(args []any, n int) error {
		q := `SELECT ` + keys + `, delays FROM ` + t.name + ` WHERE (` + keys + `) IN (VALUES ` +
			placeholders(t.key, n) + `) AND delays IS NOT NULL`
		return run(q, args)
	})
}

// unnest is PostgreSQL's table of the first n columns' arrays: unnest($1::bigint[], …).
func (t table) unnest(n int) string {
	parts := make([]string, n)
	for i := range n {
		parts[i] = fmt.Sprintf("$%d::%s[]", i+1, t.types[i])
	}
	return `unnest(` + strings.Join(parts, ", ") + `)`
}

func rows(cols []any) int {
	switch c := cols[0].(type) {
	case []int64:
		return len(c)
	case []string:
		return len(c)
	case [][]byte:
		return len(c)
	}
	panic(fmt.Sprintf("store: column of %T", cols[0]))
}

// maxParams keeps a statement under SQLite's limit of bound parameters (32766).
const maxParams = 30000

// chunks calls run with the rows of cols laid out row by row, as many rows per call as the
// parameter limit allows, and the number of rows. SQLite's parameters are plain "?": it looks
// numbered ones ($1) up in a list, a cost that grows with the square of their number.
func chunks(cols []any, run func(args []any, rows int) error) error {
	n, width := rows(cols), len(cols)
	per := maxParams / width
	args := make([]any, 0, min(n, per)*width)
	for start := 0; start < n; start += per {
		end := min(n, start+per)
		args = args[:0]
		for i := start; i < end; i++ {
			for _, c := range cols {
				switch c := c.(type) {
				case []int64:
					args = append(args, c[i])
				case []string:
					args = append(args, c[i])
				case [][]byte:
					args = append(args, blob(c[i]))
				}
			}
		}
		if err := run(args, end-start); err != nil {
			return err
		}
	}
	return nil
}

// blob is b as a parameter: NULL when b is nil.
func blob(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// placeholders returns rows groups of width parameters: (?, ?), (?, ?)…
func placeholders(width, rows int) string {
	group := "(" + strings.Repeat("?, ", width-1) + "?)"
	return strings.Repeat(group+", ", rows-1) + group
}
