package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testenv"
)

// TestShortRun is the benchmark's short form, run by the test command (and so by CI): every
// phase on both databases with a few events and one day of aggregates. It checks that each
// phase measured something, not how fast.
func TestShortRun(t *testing.T) {
	pg := testenv.Require(t, testenv.Postgres)
	var out strings.Builder
	args := []string{"-brokers", strings.Join(kafkatest.Brokers(t), ","), "-postgres", pg,
		"-events", "3000", "-rounds", "1", "-days", "1", "-profiles", "5", "-requests", "2", "-results", ""}
	if err := run(t.Context(), args, &out); err != nil {
		t.Fatal(err)
	}
	md := out.String()
	for _, row := range []string{"bare franz-go consumer", "analytics → SQLite", "analytics → PostgreSQL"} {
		if !regexp.MustCompile(`\| ` + row + ` \| [0-9.]+ \| [1-9][0-9]* \| [0-9]+\.[0-9]{2} \| [0-9]+\.[0-9]{2} \| ([1-9][0-9]*|–) \| ([0-9]+\.[0-9]{2}|–) \|`).MatchString(md) {
			t.Errorf("no throughput row for %s in:\n%s", row, md)
		}
	}
	if n := strings.Count(md, "| summary, 1 days, all platforms |"); n != 2 {
		t.Errorf("summary latency measured on %d databases, want 2:\n%s", n, md)
	}
}
