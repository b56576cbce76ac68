package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
)

// TestQuarantineCommands runs `bridge quarantine list` and `replay`: the JSON lines say
// what each delivery normalizes to today, replay prints exactly {"replayed":N,"skipped":M},
// and command lines that cannot run are usage errors.
func TestQuarantineCommands(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, nil, event.QuarantineTopic(prefix)); err != nil {
		t.Fatal(err)
	}
	quarantine := func(body string) *kgo.Record {
		return &kgo.Record{Topic: event.QuarantineTopic(prefix), Value: []byte(body), Headers: []kgo.RecordHeader{
			{Key: "source", Value: []byte("codiv")}, {Key: "provider", Value: []byte("codivupload")},
			{Key: "reason", Value: []byte("unknown event type")}, {Key: "received-at", Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))}}}
	}
	if err := cl.ProduceSync(ctx,
		quarantine(`{"event":"post.published","id":"evt_cq","data":{"post_id":"p1","platform":"x"}}`),
		quarantine(`{"event":"post.nonsense","id":"evt_bad"}`)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cfg := operatorConfig(t, brokers, prefix)

	out, _, err := runCommand(t, "quarantine", "list", "--config", cfg, "--json")
	if err != nil {
		t.Fatal(err)
	}
	lines := jsonObjects(t, out)
	if len(lines) != 2 || lines[0]["normalizes"] != true || lines[1]["normalizes"] != false || lines[1]["problem"] == "" || lines[0]["replayed"] != false {
		t.Fatalf("list --json:\n%s", out)
	}
	if evs, _ := lines[0]["events"].([]any); len(evs) != 1 || evs[0].(map[string]any)["event_id"] != "evt_cq" {
		t.Errorf("events of the first delivery: %v", lines[0]["events"])
	}
	out, _, err = runCommand(t, "quarantine", "replay", "--config", cfg, "--all")
	if err != nil || out != `{"replayed":1,"skipped":1}`+"\n" {
		t.Errorf("replay --all printed %q, %v", out, err)
	}
	out, _, err = runCommand(t, "quarantine", "replay", "--config", cfg, "--id", "evt_cq", "--dry-run")
	if lines := jsonObjects(t, out); err != nil || len(lines) != 2 || lines[0]["action"] != "skip" || lines[1]["dry_run"] != true {
		t.Errorf("replay --id evt_cq --dry-run after the replay printed %q, %v", out, err)
	}
	for _, args := range [][]string{
		{"quarantine", "replay", "--config", cfg},
		{"quarantine", "replay", "--config", cfg, "--all", "--id", "x"},
		{"quarantine", "list"},
	} {
		if _, _, err := runCommand(t, args...); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// TestServeExportsQuarantineMetrics: `bridge serve`, which writes the quarantine topic,
// serves its metrics on its /metrics: a delivery it quarantined waits for an operator.
func TestServeExportsQuarantineMetrics(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	path := filepath.Join(t.TempDir(), "bridge.yaml")
	cfg := fmt.Sprintf(`
http: {listen: "127.0.0.1:0", drain_period: 0s}
kafka: {brokers: [%q], topic_prefix: %q, partitions: 1}
sources: [{name: codivupload, provider: codivupload, secrets: [%q]}]
`, brokers[0], prefix, devSecret)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs testkit.LogBuffer
	runInBackground(t, []string{"serve", "--config", path}, io.Discard, &logs)
	base := listeningOn(t, &logs)
	waitReadyz(t, base)
	body := fmt.Sprintf(`{"event":"post.published","timestamp":%q,"data":{"post_id":"p1"}}`, time.Now().UTC().Format(time.RFC3339))
	h := http.Header{}
	for k, v := range testkit.CodivHeaders(devSecret, "post.published", []byte(body)) {
		h.Set(k, v)
	}
	if code, answer := post(t, base+"/webhooks/codivupload", h, body); code != 202 || !strings.Contains(answer, `"quarantined"`) {
		t.Fatalf("a delivery without an id was answered %d %s, want 202 quarantined", code, answer)
	}
	_, metrics := get(t, base+"/metrics")
	want := fmt.Sprintf(`bridge_quarantine_pending_records{topic="%s"} 1`, event.QuarantineTopic(prefix))
	if !strings.Contains(metrics, want) || !strings.Contains(metrics, "bridge_quarantine_read_errors_total 0") {
		t.Errorf("/metrics lacks %s, or counts a failed read:\n%s", want, grepLines(metrics, "bridge_quarantine"))
	}
}
