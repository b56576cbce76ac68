package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
)

const (
	testCodivSecret = "cdv_whsec_test_3b9c1f7a2e5d8b6c"
	testSWSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// served is a bridge started by startServe.
type served struct {
	path, prefix, base string // its file, topic prefix and base URL
	brokers            []string
}

// startServe runs `bridge serve` with a codivupload source "codiv" and a standard-webhooks
// source "acme", on the test broker under a prefix of its own, with the registry at
// registryURL (empty: single-object encoding). It listens on a port of its choosing, which
// the file at path then names as http.listen, as a user's file names the bridge's address.
func startServe(t *testing.T, registryURL string) served {
	t.Helper()
	s := served{prefix: kafkatest.Prefix(t), brokers: kafkatest.Brokers(t)}
	s.path = filepath.Join(t.TempDir(), "bridge.yaml")
	writeServeConfig(t, s, "127.0.0.1:0", registryURL)
	var logs testkit.LogBuffer
	runInBackground(t, []string{"serve", "--config", s.path}, io.Discard, &logs)
	s.base = listeningOn(t, &logs)
	writeServeConfig(t, s, strings.TrimPrefix(s.base, "http://"), registryURL)
	waitReadyz(t, s.base)
	return s
}

func writeServeConfig(t *testing.T, s served, listen, registryURL string) {
	t.Helper()
	cfg := fmt.Sprintf(`
http: {listen: %q}
kafka: {brokers: [%q], topic_prefix: %q, partitions: 2}
schema_registry: {url: %q}
sources:
  - {name: codiv, provider: codivupload, secrets: [%q]}
  - {name: acme, provider: standard-webhooks, secrets: [%q]}
`, listen, strings.Join(s.brokers, ","), s.prefix, registryURL, testCodivSecret, testSWSecret)
	if err := os.WriteFile(s.path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// summary parses the counts of simulate's summary, e.g. {"200 accepted": 16, "401": 2}.
func summary(t *testing.T, out string) map[string]int {
	t.Helper()
	i := strings.LastIndex(out, " deliveries to ")
	if i < 0 {
		t.Fatalf("no summary in:\n%s", out)
	}
	got := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^  (.+?) +(\d+)$`).FindAllStringSubmatch(out[i:], -1) {
		got[m[1]], _ = strconv.Atoi(m[2])
	}
	return got
}

// TestSimulateEveryPresetOnTheBroker sends every type of each preset, with redeliveries and
// forged signatures, to a bridge on the real broker: each answer is the one it must be.
func TestSimulateEveryPresetOnTheBroker(t *testing.T) {
	path := startServe(t, "").path
	for _, source := range []string{"codiv", "acme"} {
		t.Run(source, func(t *testing.T) {
			var out testkit.LogBuffer
			err := run(t.Context(), []string{"simulate", "all", "--config", path, "--source", source,
				"--count", "40", "--duplicates", "0.25", "--bad-signatures", "0.1", "--concurrency", "4", "--rate", "400"}, &out, io.Discard)
			if err != nil {
				t.Fatalf("simulate: %v\n%s", err, out.String())
			}
			got := summary(t, out.String())
			// Redeliveries drawn before any delivery was accepted are sent as new events.
			if got["401"] != 4 || got["200 accepted"]+got["200 duplicate"] != 36 || got["200 duplicate"] == 0 {
				t.Fatalf("summary %v:\n%s", got, out.String())
			}
		})
	}
}

// TestSimulateAgainstDev runs the README's path: simulate, with no file and no --url, against
// bridge dev. Dev's default ports may be taken (a running `bridge dev`, the compose stack,
// another worktree's tests), so dev runs on free ones and devIngress, the default the two
// share, is pointed at it: simulate still finds its target by its default.
func TestSimulateAgainstDev(t *testing.T) {
	stdout, _, _ := startDev(t)
	m := regexp.MustCompile(`curl -sS -X POST http://(\S+)/webhooks/codivupload`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no ingress address in the welcome:\n%s", stdout.String())
	}
	defer func(d string) { devIngress = d }(devIngress)
	devIngress = m[1]
	var out testkit.LogBuffer
	if err := run(t.Context(), []string{"simulate", "post.failed"}, &out, io.Discard); err != nil {
		t.Fatalf("simulate: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), `"status":"accepted"`) || summary(t, out.String())["200 accepted"] != 1 {
		t.Fatalf("got:\n%s", out.String())
	}
}

// TestDevAndSimulateDefaults: by default dev listens on, and simulate without --config sends
// to, 127.0.0.1:8080 (docs/commands.md), one address.
func TestDevAndSimulateDefaults(t *testing.T) {
	if got := devCommand().Flags().Lookup("listen").DefValue; got != "127.0.0.1:8080" {
		t.Errorf("dev --listen defaults to %q, want 127.0.0.1:8080", got)
	}
	src, base, err := simulateTarget(simulateFlags{})
	if err != nil || base != "http://127.0.0.1:8080" || src.Name != "codivupload" {
		t.Errorf("simulate without flags targets %s at %q (%v), want codivupload at http://127.0.0.1:8080", src.Name, base, err)
	}
}

// TestSimulateFailsOnWrongAnswers points simulate at a server that accepts everything: the
// forged deliveries it accepts, and the redeliveries it calls new, make simulate fail.
func TestSimulateFailsOnWrongAnswers(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"status": "accepted", "event_id": strconv.FormatInt(n.Add(1), 10)})
	}))
	defer srv.Close()
	var out testkit.LogBuffer
	err := run(t.Context(), []string{"simulate", "post.published", "--url", srv.URL, "--count", "10",
		"--bad-signatures", "0.2", "--duplicates", "0.3"}, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "5 of 10 answers were not what they should be") {
		t.Fatalf("got %v\n%s", err, out.String())
	}
	if c := strings.Count(out.String(), "UNEXPECTED"); c != 5 {
		t.Fatalf("%d lines marked UNEXPECTED:\n%s", c, out.String())
	}
}

func TestSimulateRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"simulate", "post.published", "--count", "0"},
		{"simulate", "post.published", "--duplicates", "0.7", "--bad-signatures", "0.5"},
		{"simulate", "post.published", "--duplicates", "1"},
		{"simulate", "comment.received"}, // codivupload sends post events only
		{"simulate", "post.published", "--source", "acme"},
		{"simulate"},
	} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		if err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}
