package spool_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/sender"
)

// The secrets of FORMATS.md's X sample and a Postiz URL token.
const (
	xSecret     = "z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu"
	postizToken = "0e1d2c3b4a5968778695a4b3c2d1e0f9"
	codivSecret = "cdv_whsec_3b9c1f7a2e5d8b6c4a1f0e9d8c7b6a5f"
)

// outageConfig is a bridge whose postiz and x sources spool by default (their senders retry
// for less than spool.horizon_below: Postiz never, X for 5 minutes) and whose codivupload
// source does not. produce_timeout is short (yet long enough for a loaded machine's first
// produce): the test asserts what happens once Kafka does not answer, not how long that takes.
func outageConfig(t *testing.T, dir string, brokers []string, prefix string) string {
	t.Helper()
	cfg := fmt.Sprintf(`http:
  listen: "127.0.0.1:0"
  drain_period: 0s
  max_body_bytes: 65536
kafka:
  brokers: [%q]
  topic_prefix: %q
  produce_timeout: 3s
  partitions: 2
  replication_factor: 1
spool:
  dir: %q
  horizon_below: 10m
sources:
  - name: postiz
    provider: postiz
    secrets: [%q]
  - name: x
    provider: x
    secrets: [%q]
  - name: codivupload
    provider: codivupload
    secrets: [%q]
log:
  level: debug
`, brokers[0], prefix, filepath.Join(dir, "spool"), postizToken, xSecret, codivSecret)
	path := filepath.Join(dir, "bridge.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// senders posts deliveries of postiz and x as their senders would, once each (neither
// retries in time), and keeps what each was answered. A delivery is named source-NNNN (NNNN:
// the order it was sent in); its event id is what the bridge answers (Postiz's is derived from
// the body).
type senders struct {
	t          *testing.T
	sources    map[string]sender.Source
	mu         sync.Mutex
	n          int
	deliveries map[string]providers.Delivery // name → the bytes sent, for redeliveries
	answered   map[string]string             // event id → the name of the delivery answered 200 with it
	status     map[string]string             // event id → its first answer's status
}

func newSenders(t *testing.T) *senders {
	s := &senders{t: t, sources: map[string]sender.Source{}, deliveries: map[string]providers.Delivery{},
		answered: map[string]string{}, status: map[string]string{}}
	for name, secret := range map[string]string{"postiz": postizToken, "x": xSecret, "codivupload": codivSecret} {
		src, err := sender.NewSource(name, name, secret)
		if err != nil {
			t.Fatal(err)
		}
		s.sources[name] = src
	}
	return s
}

var client = &http.Client{Timeout: 30 * time.Second}

// next sends the next new delivery of source and records its answer; it returns its name.
func (s *senders) next(base, source string) (string, sender.Answer, error) {
	s.mu.Lock()
	s.n++
	name := fmt.Sprintf("%s-%04d", source, s.n)
	s.mu.Unlock()
	d, err := s.sources[source].Sample(event.PostPublished, name, s.n, time.Now())
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.deliveries[name] = d
	s.mu.Unlock()
	a, err := sender.Post(context.Background(), client, base, source, d)
	if err == nil && a.Code == 200 {
		s.mu.Lock()
		s.answered[a.EventID], s.status[a.EventID] = name, a.Status
		s.mu.Unlock()
	}
	return name, a, err
}

// expect sends the next delivery of source and fails unless it is answered 200 status; it
// returns the delivery's name.
func (s *senders) expect(base, source, status string) string {
	s.t.Helper()
	name, a, err := s.next(base, source)
	if err != nil || a.Code != 200 || a.Status != status || a.EventID == "" {
		s.t.Fatalf("%s: %d %s %s %v; want 200 %s", name, a.Code, a.Status, a.Body, err, status)
	}
	return name
}

// redeliver sends the delivery name again, as it was, and fails unless it is answered 200
// duplicate.
func (s *senders) redeliver(base, name string) {
	s.t.Helper()
	source, _, _ := strings.Cut(name, "-")
	s.mu.Lock()
	d := s.deliveries[name]
	s.mu.Unlock()
	a, err := sender.Post(context.Background(), client, base, source, d)
	if err != nil || a.Code != 200 || a.Status != "duplicate" {
		s.t.Fatalf("redelivery of %s: %d %s %s %v; want 200 duplicate", name, a.Code, a.Status, a.Body, err)
	}
}

// TestOutageLongerThanHorizons is the spool's proof on a real broker. The broker stops while
// Postiz and X deliveries arrive (for longer than X retries: the deliveries here are sent
// once each, and all must be kept without any retry): each is answered 200 "spooled", a
// redelivery "duplicate", and /readyz stays ready, saying why. The bridge is SIGKILLed while
// deliveries are being spooled, a torn write is left at the end of its newest segment, and it
// is restarted with the broker still down: deliveries answered before are still duplicates,
// new ones still spooled. The broker comes back: the spool drains, and every delivery
// answered "spooled" is in its topic exactly once, in order per source within each
// partition, with the headers the ingress sets.
func TestOutageLongerThanHorizons(t *testing.T) {
	broker := kafkatest.StartBroker(t)
	brokers := []string{broker.Addr()}
	prefix := kafkatest.Prefix(t)
	dir := t.TempDir()
	cfg := outageConfig(t, dir, brokers, prefix)
	b := startChild(t, cfg, "bridge-1")
	waitFor(t, time.Minute, "ready", func() bool {
		code, body := b.get(t, "/readyz")
		return code == 200 && !strings.Contains(body, "reason")
	})
	s := newSenders(t)
	s.expect(b.url, "postiz", "accepted")
	s.expect(b.url, "x", "accepted")

	broker.Stop()
	var spooled []string
	for range 10 {
		spooled = append(spooled, s.expect(b.url, "postiz", "spooled"), s.expect(b.url, "x", "spooled"))
	}
	if _, a, _ := s.next(b.url, "codivupload"); a.Code != 503 {
		t.Errorf("codivupload, which does not spool, during the outage: %d %s; want 503", a.Code, a.Body)
	}
	waitFor(t, 30*time.Second, "readyz: ready, spooling", func() bool {
		code, body := b.get(t, "/readyz")
		if code != 200 {
			t.Fatalf("readyz during the outage: %d %s; want 200", code, body)
		}
		return strings.Contains(body, `"status":"ready"`) && strings.Contains(body, "spooling")
	})
	for _, id := range spooled[:4] {
		s.redeliver(b.url, id)
	}
	if n := b.metric(t, "bridge_spool_records"); n != float64(len(spooled)) {
		t.Errorf("bridge_spool_records %v, want %d", n, len(spooled))
	}

	spooled = append(spooled, killMidSpool(t, s, b)...)
	tearNewestSegment(t, filepath.Join(dir, "spool"))

	b = startChild(t, cfg, "bridge-2")
	for _, id := range []string{spooled[0], spooled[1], spooled[len(spooled)-1]} {
		s.redeliver(b.url, id)
	}
	spooled = append(spooled, s.expect(b.url, "postiz", "spooled"), s.expect(b.url, "x", "spooled"))
	if code, body := b.get(t, "/readyz"); code != 200 || !strings.Contains(body, "spooling") {
		t.Errorf("readyz after the restart, broker down: %d %s; want 200 ready, spooling", code, body)
	}

	broker.Start()
	waitFor(t, 2*time.Minute, "spool drained", func() bool { return b.metric(t, "bridge_spool_records") == 0 })
	if n := b.metric(t, "bridge_spool_drained_total"); n == 0 {
		t.Error("bridge_spool_drained_total is 0 after a drain")
	}
	recs := kafkatest.ReadTopic(t, brokers, event.Topic(prefix, event.PostPublished))
	checkTopic(t, s, recs)
	s.redeliver(b.url, spooled[2])
	s.expect(b.url, "postiz", "accepted")
	if logs, _ := os.ReadFile(b.log); !strings.Contains(string(logs), "the last write was torn") {
		t.Error("the restarted bridge did not report the torn write")
	}
	b.stop(t)
}

// killMidSpool sends deliveries of both sources one after another while the bridge is
// SIGKILLed, and returns those answered "spooled".
func killMidSpool(t *testing.T, s *senders, b *child) []string {
	t.Helper()
	var mu sync.Mutex
	var ids []string
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for i := 0; ; i++ {
			id, a, err := s.next(b.url, []string{"postiz", "x"}[i%2])
			if err != nil {
				return // the bridge is gone: this delivery was not answered
			}
			if a.Code != 200 || a.Status != "spooled" {
				t.Errorf("%s while spooling: %d %s", id, a.Code, a.Body)
				return
			}
			mu.Lock()
			ids = append(ids, id)
			mu.Unlock()
		}
	}()
	waitFor(t, time.Minute, "20 deliveries spooled", func() bool { mu.Lock(); defer mu.Unlock(); return len(ids) >= 20 })
	b.kill(t)
	<-stopped
	return ids
}

// tearNewestSegment appends the first half of a record's frame to the newest segment that
// holds frames: the write a crash cut short, never acknowledged.
func tearNewestSegment(t *testing.T, dir string) {
	t.Helper()
	path := newestNonEmpty(t, dir)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	frame := 8 + int(binary.LittleEndian.Uint32(b))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b[:frame/2]); err != nil {
		t.Fatal(err)
	}
}

// checkTopic checks the records of post.published against what the senders were answered:
// each delivery answered 200 is in once, nothing twice, and each source's records come in the
// order they were sent within every partition.
func checkTopic(t *testing.T, s *senders, recs []*kgo.Record) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	count := map[string]int{}
	last := map[string]string{} // "partition/source" → the name of the last delivery seen
	for _, r := range recs {
		id, source := string(r.Key), kafkatest.Header(r, "source")
		count[id]++
		if kafkatest.Header(r, "event-type") != event.PostPublished || kafkatest.Header(r, "received-at") == "" {
			t.Errorf("%s: headers %v", id, r.Headers)
		}
		name, ok := s.answered[id]
		if !ok {
			continue // sent as the bridge was killed: never answered, kept all the same
		}
		if !strings.HasPrefix(name, source+"-") {
			t.Errorf("%s (%s) from source %s", id, name, source)
		}
		k := fmt.Sprintf("%d/%s", r.Partition, source)
		if name < last[k] {
			t.Errorf("partition %d: %s after %s", r.Partition, name, last[k])
		}
		last[k] = name
	}
	for id, name := range s.answered {
		if strings.HasPrefix(name, "codivupload") {
			continue
		}
		if count[id] != 1 {
			t.Errorf("%s (%s), answered %s, is in kafka %d times", id, name, s.status[id], count[id])
		}
	}
	for id, n := range count {
		if n > 1 {
			t.Errorf("%s is in kafka %d times", id, n)
		}
	}
}
