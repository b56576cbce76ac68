package ingress_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/bridge/spool"
	"github.com/socialbridge/bridge/internal/testkit"
)

// kafka is an ingress.Producer that the test steers: while up it acknowledges at once; while
// down it keeps each record past the produce timeout (Produce answers Unavailable, as
// producer.Kafka does), and the test settles it later.
type kafka struct {
	mu     sync.Mutex
	down   bool
	held   []func(error)
	calls  atomic.Int64
	stored map[string]int
}

func newKafka() *kafka { return &kafka{stored: map[string]int{}} }

func (k *kafka) Produce(rec *kgo.Record, settle func(error)) error {
	k.calls.Add(1)
	k.mu.Lock()
	if !k.down {
		k.stored[string(rec.Key)]++
		k.mu.Unlock()
		settle(nil)
		return nil
	}
	k.held = append(k.held, func(err error) {
		if err == nil {
			k.mu.Lock()
			k.stored[string(rec.Key)]++
			k.mu.Unlock()
		}
		settle(err)
	})
	k.mu.Unlock()
	return failure.New(failure.Unavailable, "kafka did not acknowledge within 1s")
}

func (k *kafka) setDown(v bool) {
	k.mu.Lock()
	k.down = v
	k.mu.Unlock()
}

// settleHeld settles every record held, as franz-go finally would.
func (k *kafka) settleHeld(err error) {
	k.mu.Lock()
	held := k.held
	k.held = nil
	k.mu.Unlock()
	for _, settle := range held {
		settle(err)
	}
}

func (k *kafka) count(id string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.stored[id]
}

// drainer is the spool's producer in these tests: it records what the spool produces.
type drainer struct {
	mu   sync.Mutex
	keys []string
}

func (d *drainer) TryProduce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	d.mu.Lock()
	d.keys = append(d.keys, string(r.Key))
	d.mu.Unlock()
	go promise(r, nil)
}

func (d *drainer) produced() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.keys...)
}

type spoolServer struct {
	*server
	k     *kafka
	spool *spool.Spool
}

// serveSpooling is an ingress whose codivupload source spools, on k, with a spool of
// maxBytes (for every source change leaves in the options).
func serveSpooling(t *testing.T, maxBytes int64, change func(*ingress.Options)) *spoolServer {
	t.Helper()
	k := newKafka()
	var sp *spool.Spool
	srv := serve(t, func(o *ingress.Options) {
		o.Sources[0].Spool = true
		o.Producer = k
		if change != nil {
			change(o)
		}
		var names []string
		for _, src := range o.Sources {
			names = append(names, src.Name)
		}
		var err error
		if sp, err = spool.Open(t.TempDir(), spool.Options{MaxBytes: maxBytes, Sources: names}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sp.Close() })
		o.Spool = sp
	})
	return &spoolServer{server: srv, k: k, spool: sp}
}

// post delivers a signed codivupload post.published of id and returns the answer's code and
// status.
func (s *server) post(t *testing.T, id string) (int, string) {
	t.Helper()
	body := delivery(id)
	req, _ := http.NewRequest("POST", "http://"+s.addr+"/webhooks/codivupload", strings.NewReader(body))
	for k, v := range testkit.CodivHeaders(secret, "post.published", []byte(body)) {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a struct {
		Status  string `json:"status"`
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("answer %d %q", resp.StatusCode, raw)
	}
	if a.Status == "spooled" && (a.EventID != id || !bytes.Equal(raw, fmt.Appendf(nil, `{"status":"spooled","event_id":%q}`, id))) {
		t.Errorf("spooled answer %s", raw)
	}
	return resp.StatusCode, a.Status
}

// TestSpoolWhenKafkaTimesOut: a delivery Kafka does not acknowledge in time is answered
// "spooled"; its redelivery is a duplicate; the next delivery does not wait for Kafka. When
// franz-go gets the first record through after all, the drainer never produces it; the one
// spooled at once it does produce, once.
func TestSpoolWhenKafkaTimesOut(t *testing.T) {
	s := serveSpooling(t, 64<<20, nil)
	s.k.setDown(true)
	if code, status := s.post(t, "evt_slow"); code != 200 || status != "spooled" {
		t.Fatalf("a delivery kafka does not acknowledge in time: %d %s; want 200 spooled", code, status)
	}
	if code, status := s.post(t, "evt_slow"); code != 200 || status != "duplicate" {
		t.Fatalf("its redelivery: %d %s; want 200 duplicate", code, status)
	}
	calls := s.k.calls.Load()
	if code, status := s.post(t, "evt_next"); code != 200 || status != "spooled" {
		t.Fatalf("the next delivery: %d %s", code, status)
	}
	if s.k.calls.Load() != calls {
		t.Fatal("the next delivery was handed to kafka, known to be down, and kept waiting")
	}

	d := &drainer{}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { s.spool.Drain(ctx, d, spool.DrainOptions{}); close(stopped) }()
	defer func() { cancel(); <-stopped }()
	s.k.settleHeld(nil) // franz-go gets evt_slow through after all
	waitDrained(t, s.spool)
	if got := d.produced(); len(got) != 1 || got[0] != "evt_next" {
		t.Fatalf("the drainer produced %v; want evt_next only (evt_slow is in kafka through franz-go)", got)
	}
	if n := s.k.count("evt_slow"); n != 1 {
		t.Fatalf("evt_slow stored %d times by franz-go", n)
	}
	if code, status := s.post(t, "evt_slow"); status != "duplicate" {
		t.Fatalf("a redelivery once drained: %d %s", code, status)
	}
}

// TestSpoolWhenFranzGoFails: a record franz-go fails after the request was answered
// "spooled" is produced by the drainer, once.
func TestSpoolWhenFranzGoFails(t *testing.T) {
	s := serveSpooling(t, 64<<20, nil)
	s.k.setDown(true)
	if _, status := s.post(t, "evt_failed"); status != "spooled" {
		t.Fatal(status)
	}
	d := &drainer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.spool.Drain(ctx, d, spool.DrainOptions{})
	s.k.settleHeld(errors.New("record delivery timeout"))
	waitDrained(t, s.spool)
	if got := d.produced(); len(got) != 1 || got[0] != "evt_failed" {
		t.Fatalf("the drainer produced %v; want evt_failed once", got)
	}
}

// TestSpoolBacklogKeepsOrder: while a source has records spooled, its new deliveries go
// behind them even with Kafka up; another source, which does not spool, is produced.
func TestSpoolBacklogKeepsOrder(t *testing.T) {
	s := serveSpooling(t, 64<<20, nil)
	s.k.setDown(true)
	s.post(t, "evt_first")
	s.k.setDown(false)
	calls := s.k.calls.Load()
	if _, status := s.post(t, "evt_second"); status != "spooled" {
		t.Fatalf("a delivery behind a spooled one, with kafka up: %s; want spooled", status)
	}
	if s.k.calls.Load() != calls {
		t.Fatal("produced past the source's spooled record")
	}
}

// TestSpoolFull: a full spool answers 503, as without a spool, once Kafka has not
// acknowledged in time; it accepts when Kafka does.
func TestSpoolFull(t *testing.T) {
	s := serveSpooling(t, 64<<10, nil)
	s.k.setDown(true)
	n := 0
	for ; n < 500; n++ {
		code, status := s.post(t, fmt.Sprintf("evt_%d", n))
		if code == 503 {
			break
		}
		if status != "spooled" {
			t.Fatalf("delivery %d: %d %s", n, code, status)
		}
	}
	if n == 500 || n < 10 {
		t.Fatalf("%d deliveries spooled in 64 KiB before a 503", n)
	}
	s.k.setDown(false)
	if code, status := s.post(t, "evt_kafka_back"); code != 200 || status != "accepted" {
		t.Fatalf("full spool, kafka up: %d %s; want accepted", code, status)
	}
}

// TestSpoolUnverified: while the dedup store cannot be asked, deliveries of a spooling source
// are spooled (not 503), and a redelivery of one is a duplicate, since the spool has it.
func TestSpoolUnverified(t *testing.T) {
	s := serveSpooling(t, 64<<20, func(o *ingress.Options) { o.Dedup = down{} })
	if code, status := s.post(t, "evt_1"); code != 200 || status != "spooled" {
		t.Fatalf("dedup store down: %d %s; want spooled", code, status)
	}
	if code, status := s.post(t, "evt_1"); code != 200 || status != "duplicate" {
		t.Fatalf("redelivery: %d %s; want duplicate", code, status)
	}
	if s.k.calls.Load() != 0 {
		t.Fatal("produced without a dedup reservation")
	}
	m := s.spool.Marks() // nothing read back: a fresh spool
	if len(m) != 0 {
		t.Fatal(m)
	}
}

// TestSpoolOffForOtherSources: a source that does not spool still answers 503.
func TestSpoolOffForOtherSources(t *testing.T) {
	s := serveSpooling(t, 64<<20, func(o *ingress.Options) { o.Sources[0].Spool = false })
	s.k.setDown(true)
	if code, _ := s.post(t, "evt_1"); code != 503 {
		t.Fatalf("a source that does not spool: %d; want 503", code)
	}
}

// TestSpoolingSourceWithKafkaUp: with Kafka up, a spooling source's deliveries are produced
// as any other source's: the record of an event keyed on its id carries no dedup key, that
// of a content-keyed source its digest; each redelivery is a duplicate; and a delivery the
// bridge failed to encode (500) is taken when sent again.
func TestSpoolingSourceWithKafkaUp(t *testing.T) {
	rec, enc := &recorder{}, newFailingEncoder(t)
	s := serveSpooling(t, 64<<20, func(o *ingress.Options) {
		o.Producer, o.Encoder = rec, enc
		hub := hmacSource(t, "github", hubSettings)
		hub.Spool = true
		o.Sources = append(o.Sources, hub)
	})
	for _, want := range []string{"accepted", "duplicate"} {
		if code, status := s.post(t, "evt_up"); code != 200 || status != want {
			t.Fatalf("answered %d %s, want 200 %s", code, status, want)
		}
	}
	hubBody := `{"data":{"post_id":"p1","platform":"x"}}`
	for i, want := range []string{"accepted", "duplicate"} {
		code, got := postTo(t, s.addr, "/webhooks/github", hubHeaders("push", fmt.Sprint("d-", i), hubBody), hubBody)
		if code != 200 || !strings.HasPrefix(got, `{"status":"`+want+`"`) {
			t.Fatalf("content-keyed delivery %d answered %d %s, want 200 %s", i, code, got, want)
		}
	}
	recs := rec.records()
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	if k := recordHeader(recs[0], dedup.KeyHeader); k != "" {
		t.Errorf("the record of an event keyed on its id carries %s %q", dedup.KeyHeader, k)
	}
	if k := recordHeader(recs[1], dedup.KeyHeader); !strings.HasPrefix(k, "signed_") {
		t.Errorf("the record of a content-keyed delivery carries %s %q, want its digest", dedup.KeyHeader, k)
	}

	body := strings.Replace(delivery("evt_unencodable"), `"p1"`, `"p_enc"`, 1)
	enc.failFor("p_enc")
	if code, got, _ := send(t, s.server, http.MethodPost, body); code != 500 {
		t.Fatalf("an event the bridge cannot encode answered %d %s, want 500", code, got)
	}
	enc.failFor("")
	if code, got, _ := send(t, s.server, http.MethodPost, body); code != 200 || !strings.Contains(got, `"status":"accepted"`) {
		t.Fatalf("sent again once it can be encoded, answered %d %s, want 200 accepted", code, got)
	}
}

type down struct{}

func (down) Reserve(context.Context, string, string, time.Time) (bool, func(bool), error) {
	return false, nil, failure.New(failure.Unavailable, "dedup is still being rebuilt from kafka")
}

var _ dedup.Reserver = down{}

func waitDrained(t *testing.T, s *spool.Spool) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, "the spool drained", func() bool { return s.Stats().Records == 0 },
		func() string { return fmt.Sprintf("%+v", s.Stats()) })
}
