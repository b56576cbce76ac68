package testkit

import (
	"testing"
	"time"
)

// Eventually polls cond every 20 ms until it holds. If it does not within limit, the test
// fails, saying what it waited for and, when show is given, what show returns then (a log,
// the last answer). The limit is a generous bound for a shared, loaded machine, never a
// measurement: a test waits for a positive signal, and asserts nothing on how long it took.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() bool, show ...func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			var shown string
			for _, f := range show {
				shown += "\n" + f()
			}
			t.Fatalf("%s: not within %s%s", what, limit, shown)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
