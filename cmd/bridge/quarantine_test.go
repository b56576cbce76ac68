package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/redrive"
	"github.com/socialbridge/bridge/internal/testkit"
	"github.com/socialbridge/bridge/schemas"
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

// TestQuarantineKeepsTheHeadersItsPresetReads: an hmac source reads the event id and type
// from headers (as GitHub's deliveries carry them). A delivery of a type the configuration
// does not map is quarantined; once the type is mapped, `bridge quarantine replay` produces
// the record that the same delivery sent directly to a bridge so configured produces (on
// another prefix): the same key, headers and event, but for the arrival. The quarantine keeps
// those two headers of the request, and none of the others (the signature above all).
func TestQuarantineKeepsTheHeadersItsPresetReads(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	direct := prefix + "direct."
	const secret = "hook-secret-0123456789abcdef"
	config := func(prefix, types string) string {
		path := filepath.Join(t.TempDir(), "bridge.yaml")
		yaml := fmt.Sprintf(`http: {listen: "127.0.0.1:0"}
kafka: {brokers: [%q], topic_prefix: %q, partitions: 1}
sources:
  - name: hooks
    provider: hmac
    secrets: [%q]
    hmac:
      header: "X-Hub-Signature-256"
      prefix: "sha256="
      id: "header:X-Hook-Delivery"
      type: "header:X-Hook-Event"
      data: "json:data"
      types: {%s}
`, brokers[0], prefix, secret, types)
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	const body = `{"data":{"post_id":"p1","platform":"tiktok"}}`
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	h := http.Header{"Content-Type": {"application/json"}, "X-Hub-Signature-256": {"sha256=" + hex.EncodeToString(mac.Sum(nil))},
		"X-Hook-Delivery": {"dlv_1"}, "X-Hook-Event": {"published"}, "X-Other": {"not kept"}}
	deliver := func(cfg string) (int, string) {
		var logs testkit.LogBuffer
		stop := runInBackground(t, []string{"serve", "--config", cfg}, io.Discard, &logs)
		base := listeningOn(t, &logs)
		waitReadyz(t, base)
		code, answer := post(t, base+"/webhooks/hooks", h, body)
		if err := stop(); err != nil {
			t.Fatalf("serve ended with %v", err)
		}
		return code, answer
	}

	if code, answer := deliver(config(prefix, "")); code != 202 || !strings.Contains(answer, "quarantined") {
		t.Fatalf("the unmapped type answered %d %s, want 202 quarantined", code, answer)
	}
	q := kafkatest.ReadCommitted(t, brokers, event.QuarantineTopic(prefix), 1, 0, time.Minute)
	if len(q) != 1 {
		t.Fatalf("the quarantine holds %d records, want 1", len(q))
	}
	kept := map[string]string{}
	for _, hd := range q[0].Headers {
		if name, ok := strings.CutPrefix(hd.Key, "request-header-"); ok {
			kept[name] = string(hd.Value)
		}
	}
	if want := map[string]string{"x-hook-delivery": "dlv_1", "x-hook-event": "published"}; !maps.Equal(kept, want) {
		t.Errorf("the quarantine kept the request headers %v, want %v", kept, want)
	}

	mapped := "published: post.published"
	if out, _, err := runCommand(t, "quarantine", "replay", "--config", config(prefix, mapped), "--all"); err != nil || out != `{"replayed":1,"skipped":0}`+"\n" {
		t.Fatalf("replay --all printed %q, %v", out, err)
	}
	if code, answer := deliver(config(direct, mapped)); code != 200 || !strings.Contains(answer, `"accepted"`) {
		t.Fatalf("the mapped type answered %d %s, want 200 accepted", code, answer)
	}
	replayed := kafkatest.ReadCommitted(t, brokers, event.Topic(prefix, event.PostPublished), 1, 0, time.Minute)
	accepted := kafkatest.ReadCommitted(t, brokers, event.Topic(direct, event.PostPublished), 1, 0, time.Minute)
	if len(replayed) != 1 || len(accepted) != 1 {
		t.Fatalf("post.published holds %d replayed and %d accepted records, want 1 and 1", len(replayed), len(accepted))
	}
	sameRecord(t, replayed[0], accepted[0])
}

// sameRecord checks that a replayed record is the one a direct delivery made: the same key,
// the same headers but for those of the arrival, its trace and the replay, and the same
// event but for its arrival.
func sameRecord(t *testing.T, replayed, accepted *kgo.Record) {
	t.Helper()
	if string(replayed.Key) != string(accepted.Key) {
		t.Errorf("keys %q and %q", replayed.Key, accepted.Key)
	}
	headers := func(r *kgo.Record) map[string]string {
		m := map[string]string{}
		for _, h := range r.Headers {
			switch h.Key {
			case "received-at", "traceparent", redrive.HeaderReplayedFromPartition, redrive.HeaderReplayedFromOffset:
			default:
				m[h.Key] = string(h.Value)
			}
		}
		return m
	}
	if a, b := headers(replayed), headers(accepted); !maps.Equal(a, b) {
		t.Errorf("headers of the replayed record %v, of the accepted one %v", a, b)
	}
	dec, err := schemas.NewSingleObject()
	if err != nil {
		t.Fatal(err)
	}
	var a, b event.Event
	if err := dec.Decode(replayed.Value, &a); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(accepted.Value, &b); err != nil {
		t.Fatal(err)
	}
	if a.ID != "dlv_1" || a.PostID == nil || *a.PostID != "p1" {
		t.Errorf("replayed event %+v, want dlv_1 of post p1", a)
	}
	// The body has no time: each event occurred, as far as the bridge knows, at its arrival.
	if !a.OccurredAt.Equal(a.ReceivedAt) || !b.OccurredAt.Equal(b.ReceivedAt) {
		t.Errorf("occurred at %s and %s, want their arrivals %s and %s", a.OccurredAt, b.OccurredAt, a.ReceivedAt, b.ReceivedAt)
	}
	b.ReceivedAt, b.OccurredAt = a.ReceivedAt, a.OccurredAt
	if !reflect.DeepEqual(a, b) {
		t.Errorf("replayed event %+v,\n accepted event %+v", a, b)
	}
}
