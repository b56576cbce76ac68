// Package testenv gives tests the services that the test command (scripts/test.sh, via
// scripts/services.sh) provides besides Kafka: PostgreSQL, Redis, the Docker engine and
// Chromium. Each is named by an environment variable. Without it a test is skipped on a
// developer's machine and fails under CI, where the test command always provides it, so a
// missing service can never pass for a passing test. Import it only from _test.go files.
package testenv

import (
	"os"
	"testing"
)

// Environment variables set by scripts/test.sh.
const (
	Postgres = "BRIDGE_TEST_POSTGRES" // a postgres:// DSN of a database tests may create schemas in
	Redis    = "BRIDGE_TEST_REDIS"    // host:port of a Redis server tests may use
	Docker   = "BRIDGE_TEST_DOCKER"   // set when a Docker engine answers
	Chromium = "BRIDGE_TEST_CHROMIUM" // path of the chromium binary
)

// Require returns the value of the service variable name, skipping the test when it is
// unset outside CI and failing it under CI.
func Require(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("testenv: %s is not set under CI: run the tests through scripts/test.sh (make test)", name)
	}
	t.Skipf("%s not set: run through make test, which starts the service", name)
	return ""
}
