package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/socialbridge/bridge/internal/testkit"
)

// tailed is a line of `bridge tail`, as a reader of its output sees it.
type tailed struct {
	Topic      string            `json:"topic"`
	Partition  int32             `json:"partition"`
	Offset     int64             `json:"offset"`
	Timestamp  time.Time         `json:"timestamp"`
	Key        string            `json:"key"`
	Headers    map[string]string `json:"headers"`
	Value      json.RawMessage   `json:"value"`
	ValueError string            `json:"value_error"`
}

func parseTail(t *testing.T, out string) []tailed {
	t.Helper()
	var lines []tailed
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l tailed
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("a line that is not JSON: %v\n%s", err, sc.Text())
		}
		lines = append(lines, l)
	}
	return lines
}

// acceptedIDs returns the event ids simulate's output shows accepted, by topic.
func acceptedIDs(t *testing.T, out string) map[string][]string {
	t.Helper()
	ids := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, `{"status":"accepted"`); i >= 0 {
			var a struct {
				EventID string `json:"event_id"`
				Topic   string `json:"topic"`
			}
			if err := json.Unmarshal([]byte(l[i:]), &a); err != nil {
				t.Fatal(err)
			}
			ids[a.Topic] = append(ids[a.Topic], a.EventID)
		}
	}
	return ids
}

// TestTailDecodesBothFramings runs simulate against a bridge on the real broker, with and
// without a schema registry, and checks that tail prints every accepted event exactly once,
// decoded, with its headers and its raw payload as text, and then stops.
func TestTailDecodesBothFramings(t *testing.T) {
	for _, mode := range []string{"single-object", "registry"} {
		t.Run(mode, func(t *testing.T) {
			registry := ""
			if mode == "registry" {
				reg := srfake.New()
				t.Cleanup(reg.Close)
				registry = reg.URL()
			}
			b := startServe(t, registry)
			path, prefix := b.path, b.prefix
			var sim testkit.LogBuffer
			if err := run(t.Context(), []string{"simulate", "all", "--config", path, "--source", "acme", "--count", "14", "--duplicates", "0.2"}, &sim, io.Discard); err != nil {
				t.Fatalf("simulate: %v\n%s", err, sim.String())
			}
			want := acceptedIDs(t, sim.String())
			var out testkit.LogBuffer
			if err := run(t.Context(), []string{"tail", "--config", path, "--from-beginning"}, &out, io.Discard); err != nil {
				t.Fatalf("tail: %v", err)
			}
			got := map[string][]string{}
			for _, l := range parseTail(t, out.String()) {
				var v map[string]any
				if err := json.Unmarshal(l.Value, &v); err != nil || l.ValueError != "" {
					t.Fatalf("%s/%d@%d not decoded: %s %s", l.Topic, l.Partition, l.Offset, l.ValueError, l.Value)
				}
				checkTailedEvent(t, prefix, l, v)
				got[l.Topic] = append(got[l.Topic], l.Key)
			}
			if len(got) < 5 || !sameSets(got, want) { // 14 deliveries, ~3 redeliveries, 7 types
				t.Fatalf("tail printed %v\nsimulate accepted %v", got, want)
			}
		})
	}
}

func checkTailedEvent(t *testing.T, prefix string, l tailed, v map[string]any) {
	t.Helper()
	typ := strings.TrimPrefix(l.Topic, prefix)
	if v["event_id"] != l.Key || v["event_type"] != typ || l.Headers["event-type"] != typ || l.Headers["source"] != "acme" {
		t.Errorf("%s: key %s, headers %v, value %v", l.Topic, l.Key, l.Headers, v)
	}
	if _, err := time.Parse(time.RFC3339, v["received_at"].(string)); err != nil {
		t.Errorf("%s: received_at %v", l.Topic, v["received_at"])
	}
	raw, _ := v["raw_payload"].(string)
	if !strings.HasPrefix(raw, `{"type":"`+typ+`"`) {
		t.Errorf("%s: raw_payload %q", l.Topic, raw)
	}
	if l.Timestamp.IsZero() || time.Since(l.Timestamp) > time.Hour {
		t.Errorf("%s: timestamp %v", l.Topic, l.Timestamp)
	}
}

func sameSets(a, b map[string][]string) bool {
	count := func(m map[string][]string) map[string]int {
		c := map[string]int{}
		for topic, ids := range m {
			for _, id := range ids {
				c[topic+"/"+id]++
			}
		}
		return c
	}
	ca, cb := count(a), count(b)
	if len(ca) != len(cb) {
		return false
	}
	for k, n := range ca {
		if n != 1 || cb[k] != 1 {
			return false
		}
	}
	return true
}

// TestTailFollowsAndShowsTheDeadletter follows two topics named by type: it starts at the
// end, so deliveries go on until one shows up; then a quarantined body shows as text.
func TestTailFollowsAndShowsTheDeadletter(t *testing.T) {
	b := startServe(t, "")
	var out testkit.LogBuffer
	stop := runInBackground(t, []string{"tail", "--config", b.path, "post.published", "deadletter", "--follow"}, &out, io.Discard)
	testkit.Eventually(t, time.Minute, "tail shows a delivery", func() bool {
		if err := run(t.Context(), []string{"simulate", "post.published", "--config", b.path, "--source", "codiv"}, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(out.String(), "\n")
	})
	body := `{"event":"post.exploded","id":"evt_q1","data":{}}`
	h := http.Header{}
	for k, v := range testkit.CodivHeaders(testCodivSecret, "post.exploded", []byte(body)) {
		h.Set(k, v)
	}
	if code, answer := post(t, b.base+"/webhooks/codiv", h, body); code != 202 {
		t.Fatalf("quarantine answered %d %s", code, answer)
	}
	testkit.Eventually(t, time.Minute, "tail shows the quarantined body", func() bool { return strings.Contains(out.String(), b.prefix+"deadletter") })
	if err := stop(); err != nil {
		t.Fatalf("tail --follow ended with %v", err)
	}
	var quarantined int
	for _, l := range parseTail(t, out.String()) {
		switch l.Topic {
		case b.prefix + "deadletter":
			quarantined++
			var text string
			if json.Unmarshal(l.Value, &text); text != body || l.Headers["reason"] == "" {
				t.Errorf("deadletter shown as %s, headers %v", l.Value, l.Headers)
			}
		case b.prefix + "post.published":
		default:
			t.Errorf("a record of %s", l.Topic)
		}
	}
	if quarantined != 1 {
		t.Fatalf("%d quarantined records in:\n%s", quarantined, out.String())
	}
}

// TestTailWithoutTheRegistry shows a registry-framed value it cannot resolve as base64
// with the reason, instead of failing the whole run.
func TestTailWithoutTheRegistry(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	b := startServe(t, reg.URL())
	if err := run(t.Context(), []string{"simulate", "post.failed", "--config", b.path, "--source", "codiv"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	var out testkit.LogBuffer
	if err := run(t.Context(), []string{"tail", "--brokers", strings.Join(b.brokers, ","), "--prefix", b.prefix, "--from-beginning", "post.failed"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := parseTail(t, out.String())
	if len(lines) != 1 || !strings.Contains(lines[0].ValueError, "--registry") || lines[0].Value[0] != '"' {
		t.Fatalf("got:\n%s", out.String())
	}
}
