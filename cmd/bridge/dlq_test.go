package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers/retries"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
	"github.com/socialbridge/bridge/schemas"
)

// operatorConfig writes a configuration file for brokers and prefix and returns its path.
func operatorConfig(t *testing.T, brokers []string, prefix string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	yaml := fmt.Sprintf(`kafka:
  brokers: [%q]
  topic_prefix: %q
  partitions: 1
sources:
  - name: codiv
    provider: codivupload
    secrets: ["codiv-secret"]
`, brokers[0], prefix)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// seedDeadLetters writes a dead-letter record, as the retries group does, for each id,
// with the error code of the same index, in one committed transaction.
func seedDeadLetters(t *testing.T, brokers []string, prefix string, ids, codes []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(prefix+"seed"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, nil, event.DLQTopic(prefix)); err != nil {
		t.Fatal(err)
	}
	enc, _ := schemas.NewSingleObject()
	var rs []*kgo.Record
	for i, id := range ids {
		ev := &event.Event{ID: id, Type: event.PostFailed, Source: "codiv", Provider: "codivupload",
			OccurredAt: time.Now(), ReceivedAt: time.Now(), ErrorCode: &codes[i]}
		v, err := enc.Encode(nil, ev)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, &kgo.Record{Topic: event.DLQTopic(prefix), Key: []byte(id), Value: v, Headers: []kgo.RecordHeader{
			{Key: retries.HeaderAttempt, Value: []byte("3")}, {Key: retries.HeaderError, Value: []byte("retries exhausted")},
			{Key: retries.HeaderOriginTopic, Value: []byte(event.Topic(prefix, event.PostFailed))},
			{Key: retries.HeaderOriginPartition, Value: []byte("0")}, {Key: retries.HeaderOriginOffset, Value: []byte(fmt.Sprint(10 + i))},
		}})
	}
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
}

func runCommand(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err = run(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// jsonObjects parses each line of out as a JSON object.
func jsonObjects(t *testing.T, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var o map[string]any
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatalf("a line that is not a JSON object: %v\n%s", err, l)
		}
		objs = append(objs, o)
	}
	return objs
}

// TestDLQCommands runs `bridge dlq list` and `bridge dlq redrive` as an operator would:
// the JSON lines carry the contract's fields, the table is readable, redrive prints
// exactly {"redriven":N,"skipped":M}, a dry run says what it would do and does nothing,
// and command lines that cannot run are usage errors.
func TestDLQCommands(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	seedDeadLetters(t, brokers, prefix, []string{"evt_a", "evt_b", "evt_c"}, []string{"rate_limited", "timeout", "timeout"})
	cfg := operatorConfig(t, brokers, prefix)

	out, _, err := runCommand(t, "dlq", "list", "--config", cfg, "--json")
	if err != nil {
		t.Fatal(err)
	}
	lines := jsonObjects(t, out)
	if len(lines) != 3 {
		t.Fatalf("list --json printed %d lines, want 3:\n%s", len(lines), out)
	}
	for _, f := range []string{"event_id", "error", "attempts", "origin_topic", "origin_offset", "dlq_offset", "dead_lettered_at", "redriven"} {
		if _, ok := lines[0][f]; !ok {
			t.Errorf("list --json lacks the field %q: %v", f, lines[0])
		}
	}
	if lines[0]["event_id"] != "evt_a" || lines[0]["error"] != "rate_limited" || lines[0]["attempts"] != 3.0 ||
		lines[0]["origin_offset"] != 10.0 || lines[0]["dlq_offset"] != 0.0 || lines[0]["redriven"] != false {
		t.Errorf("first line: %v", lines[0])
	}
	if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(lines[0]["dead_lettered_at"])); err != nil {
		t.Errorf("dead_lettered_at: %v", err)
	}

	out, _, err = runCommand(t, "dlq", "redrive", "--config", cfg, "--all", "--error", "TIMEOUT", "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	steps := jsonObjects(t, out)
	if len(steps) != 3 || steps[0]["event_id"] != "evt_b" || steps[0]["action"] != "redrive" || steps[2]["dry_run"] != true {
		t.Errorf("dry run printed:\n%s", out)
	}
	out, _, err = runCommand(t, "dlq", "redrive", "--config", cfg, "--id", "evt_b", "evt_a")
	if err != nil || out != `{"redriven":2,"skipped":0}`+"\n" {
		t.Errorf("redrive --id evt_b evt_a printed %q, %v", out, err)
	}
	out, _, err = runCommand(t, "dlq", "redrive", "--config", cfg, "--all", "--error", "timeout")
	if err != nil || out != `{"redriven":1,"skipped":1}`+"\n" {
		t.Errorf("redrive --all --error timeout printed %q, %v", out, err)
	}
	out, _, err = runCommand(t, "dlq", "list", "--config", cfg)
	if err != nil || !strings.Contains(out, "EVENT ID") || strings.Count(out, " yes ") != 3 {
		t.Errorf("list (table) after the redrives, %v:\n%s", err, out)
	}

	for _, args := range [][]string{
		{"dlq", "redrive", "--config", cfg},
		{"dlq", "redrive", "--config", cfg, "--all", "--id", "evt_a"},
		{"dlq", "list"},
		{"dlq", "list", "--config", cfg, "--since", "yesterday"},
		{"dlq", "list", "--config", cfg, "stray"},
	} {
		if _, _, err := runCommand(t, args...); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
	if _, _, err := runCommand(t, "dlq", "redrive", "--config", cfg, "--id", "evt_nope"); err == nil || !strings.Contains(err.Error(), "evt_nope") {
		t.Errorf("redrive of an unknown id: %v, want an error naming it", err)
	}
}

func TestParseAge(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "90m": 90 * time.Minute, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour} {
		if got, err := parseAge(in); err != nil || got != want {
			t.Errorf("parseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-1h", "0s", "0d", "1.5d"} {
		if _, err := parseAge(in); err == nil {
			t.Errorf("parseAge(%q) accepted", in)
		}
	}
}

// TestRetriesExportsDLQMetrics: `bridge consume retries` serves the dead-letter topic's
// metrics on its /metrics.
func TestRetriesExportsDLQMetrics(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	seedDeadLetters(t, brokers, prefix, []string{"evt_m1", "evt_m2"}, []string{"timeout", "timeout"})
	path := operatorConfig(t, brokers, prefix)
	yaml, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	yaml = fmt.Appendf(yaml, "consumers:\n  retries:\n    group: %q\n    listen: \"127.0.0.1:0\"\n    action: {url: \"http://127.0.0.1:1/retry\"}\n", prefix+"retries")
	if err := os.WriteFile(path, yaml, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs testkit.LogBuffer
	runInBackground(t, []string{"consume", "retries", "--config", path}, io.Discard, &logs)
	re := regexp.MustCompile(`msg="group listening" addr=(http://\S+)`)
	testkit.Eventually(t, time.Minute, "the group listens", func() bool { return re.MatchString(logs.String()) }, logs.String)
	base := re.FindStringSubmatch(logs.String())[1]
	waitHealthy(t, base)
	_, body := get(t, base+"/metrics")
	want := fmt.Sprintf(`bridge_dlq_pending_records{topic="%s"} 2`, event.DLQTopic(prefix))
	if !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %s:\n%s", want, grepLines(body, "bridge_dlq"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
