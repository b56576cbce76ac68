package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
	seedQuarantine(t, brokers, prefix,
		`{"event":"post.published","id":"evt_cq","data":{"post_id":"p1","platform":"x"}}`,
		`{"event":"post.nonsense","id":"evt_bad"}`)
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

// seedQuarantine writes a quarantined codivupload delivery for each body, as the ingress
// does, creating the quarantine topic.
func seedQuarantine(t *testing.T, brokers []string, prefix string, bodies ...string) {
	t.Helper()
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
	var rs []*kgo.Record
	for _, body := range bodies {
		rs = append(rs, &kgo.Record{Topic: event.QuarantineTopic(prefix), Value: []byte(body), Headers: []kgo.RecordHeader{
			{Key: "source", Value: []byte("codiv")}, {Key: "provider", Value: []byte("codivupload")},
			{Key: "reason", Value: []byte("unknown event type")}, {Key: "received-at", Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))}}})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestServeExportsQuarantineMetrics: `bridge serve`, which writes the quarantine, serves
// its metrics on its /metrics.
func TestServeExportsQuarantineMetrics(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	seedQuarantine(t, brokers, prefix, `{"event":"post.nonsense","id":"evt_q1"}`, `{"event":"post.nonsense","id":"evt_q2"}`)
	path := operatorConfig(t, brokers, prefix)
	yaml, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(yaml, "http: {listen: \"127.0.0.1:0\"}\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs testkit.LogBuffer
	runInBackground(t, []string{"serve", "--config", path}, io.Discard, &logs)
	base := listeningOn(t, &logs)
	waitHealthy(t, base)
	_, body := get(t, base+"/metrics")
	want := fmt.Sprintf(`bridge_quarantine_pending_records{topic="%s"} 2`, event.QuarantineTopic(prefix))
	if !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %s:\n%s", want, grepLines(body, "bridge_quarantine"))
	}
}
