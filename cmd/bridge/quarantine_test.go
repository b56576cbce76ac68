package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
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
