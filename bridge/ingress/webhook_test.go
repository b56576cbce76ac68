package ingress_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/testkit"
)

// recorder is a producer that keeps what it is handed, or fails while fail is set, settling
// each record at once as Kafka would.
type recorder struct {
	mu   sync.Mutex
	recs []*kgo.Record
	fail error
}

func (r *recorder) Produce(rec *kgo.Record, settle func(error)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		settle(r.fail)
		return r.fail
	}
	rec.Offset = int64(len(r.recs))
	r.recs = append(r.recs, rec)
	settle(nil)
	return nil
}

func (r *recorder) failWith(err error) {
	r.mu.Lock()
	r.fail = err
	r.mu.Unlock()
}

func (r *recorder) records() []*kgo.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*kgo.Record(nil), r.recs...)
}

// send sends body, signed, with the codivupload headers except those named in drop, and
// returns the answer's status, body and headers.
func send(t *testing.T, srv *server, method, body string, drop ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+srv.addr+"/webhooks/codivupload", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range testkit.CodivHeaders(secret, "post.published", []byte(body)) {
		req.Header.Set(k, v)
	}
	for _, k := range drop {
		req.Header.Del(k)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(got), resp.Header
}

func headerKeys(rec *kgo.Record) []string {
	var keys []string
	for _, h := range rec.Headers {
		keys = append(keys, h.Key)
	}
	return keys
}

// recordHeader is the value of rec's last header named key, "" if none.
func recordHeader(rec *kgo.Record, key string) string {
	v := ""
	for _, h := range rec.Headers {
		if h.Key == key {
			v = string(h.Value)
		}
	}
	return v
}

// TestRecordOfAnEvent: an event's record carries its raw delivery in its value, and exactly
// the headers event-type, source, provider and received-at: no dedup key when it is
// deduplicated on its own id, no traceparent when the sender sent none.
func TestRecordOfAnEvent(t *testing.T) {
	rec := &recorder{}
	srv := serve(t, func(o *ingress.Options) { o.Producer = rec })
	body := delivery("evt_record")
	if code, got, _ := send(t, srv, http.MethodPost, body); code != 200 || !strings.Contains(got, `"status":"accepted"`) {
		t.Fatalf("answered %d %s, want 200 accepted", code, got)
	}
	recs := rec.records()
	if len(recs) != 1 {
		t.Fatalf("%d records produced, want 1", len(recs))
	}
	r := recs[0]
	if got, want := strings.Join(headerKeys(r), ","), "event-type,source,provider,received-at"; got != want {
		t.Errorf("record headers %s, want %s", got, want)
	}
	if !bytes.Contains(r.Value, []byte(`"post_id":"p1","platform":"x"`)) {
		t.Errorf("record value %s does not hold the raw delivery %s", r.Value, body)
	}
}

// TestProduceFailureReleasesTheEvent: a delivery Kafka did not take is a 503 with
// Retry-After, counted as a failed produce, and its id is released, so the provider's retry
// is produced; once produced, the next retry is a duplicate.
func TestProduceFailureReleasesTheEvent(t *testing.T) {
	rec := &recorder{}
	srv := serve(t, func(o *ingress.Options) { o.Producer = rec })
	body := delivery("evt_retry")
	rec.failWith(failure.New(failure.Unavailable, "kafka is down"))
	code, got, h := send(t, srv, http.MethodPost, body)
	if code != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("answered %d %s (Retry-After %q), want 503 with Retry-After", code, got, h.Get("Retry-After"))
	}
	if m := srv.metricsText(t); !strings.Contains(m, `bridge_produce_seconds_count{outcome="failed"} 1`) ||
		strings.Contains(m, `outcome="acked"`) {
		t.Errorf("produce outcomes after one failure:\n%s", grepLines(m, "bridge_produce_seconds_count"))
	}
	rec.failWith(nil)
	if code, got, _ := send(t, srv, http.MethodPost, body); code != 200 || !strings.Contains(got, `"status":"accepted"`) {
		t.Fatalf("the retry answered %d %s, want 200 accepted", code, got)
	}
	if code, got, _ := send(t, srv, http.MethodPost, body); code != 200 || !strings.Contains(got, `"status":"duplicate"`) {
		t.Fatalf("the retry after an accepted one answered %d %s, want 200 duplicate", code, got)
	}
	if n := len(rec.records()); n != 1 {
		t.Errorf("%d records produced, want 1", n)
	}
	if m := srv.metricsText(t); !strings.Contains(m, `bridge_produce_seconds_count{outcome="acked"} 1`) {
		t.Errorf("produce outcomes after one success:\n%s", grepLines(m, "bridge_produce_seconds_count"))
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestQuarantineRecord: an unnormalizable delivery of a source deduplicated by event id goes
// to the quarantine topic without a dedup key, keeping the request headers its preset reads
// only when the request has them; a second such delivery is quarantined too (no key, so no
// duplicate); and one Kafka did not take is a 503, not a 202.
func TestQuarantineRecord(t *testing.T) {
	rec := &recorder{}
	srv := serve(t, func(o *ingress.Options) {
		o.Producer = rec
		o.Sources[0].Preset = wrapping{}
	})
	kept := "request-header-x-codivupload-event"
	for i, c := range []struct {
		drop []string
		want string
	}{
		{nil, "source,provider,received-at,reason,content-type," + kept},
		{[]string{"X-CodivUpload-Event"}, "source,provider,received-at,reason,content-type"},
	} {
		code, got, _ := send(t, srv, http.MethodPost, delivery("evt_q"+string(rune('a'+i))), c.drop...)
		if code != 202 {
			t.Fatalf("delivery %d answered %d %s, want 202", i, code, got)
		}
		recs := rec.records()
		if len(recs) != i+1 {
			t.Fatalf("%d records after delivery %d", len(recs), i)
		}
		r := recs[i]
		if r.Topic != event.QuarantineTopic("social.") {
			t.Errorf("delivery %d went to %s", i, r.Topic)
		}
		if got := strings.Join(headerKeys(r), ","); got != c.want {
			t.Errorf("delivery %d: record headers %s, want %s", i, got, c.want)
		}
	}
	rec.failWith(failure.New(failure.Unavailable, "kafka is down"))
	if code, got, _ := send(t, srv, http.MethodPost, delivery("evt_qc")); code != 503 {
		t.Errorf("a quarantine Kafka did not take answered %d %s, want 503", code, got)
	}
}

// TestVerifyFailuresCounted: a delivery whose signature does not verify is a 401 counted in
// bridge_verification_failures_total.
func TestVerifyFailuresCounted(t *testing.T) {
	srv := serve(t, nil)
	if code, got, _ := send(t, srv, http.MethodPost, delivery("evt_unsigned"), "X-CodivUpload-Signature"); code != 401 {
		t.Fatalf("answered %d %s, want 401", code, got)
	}
	if m := srv.metricsText(t); !strings.Contains(m, `bridge_verification_failures_total{source="codivupload"} 1`) {
		t.Errorf("verification failures:\n%s", grepLines(m, "bridge_verification_failures_total"))
	}
}

// TestWrongMethodAllows: a webhook endpoint asked with another method is a 405 naming POST.
func TestWrongMethodAllows(t *testing.T) {
	srv := serve(t, nil)
	code, got, h := send(t, srv, http.MethodPut, delivery("evt_put"))
	if code != 405 || h.Get("Allow") != "POST" {
		t.Errorf("answered %d %s (Allow %q), want 405 with Allow: POST", code, got, h.Get("Allow"))
	}
}

// reserveOnly is a dedup store that must be waited for (no TryReserve), as Redis is,
// answering err while it is set.
type reserveOnly struct {
	store *dedup.Store
	mu    sync.Mutex
	err   error
	wait  func() // called by each Reserve before it answers: a round trip, on a test clock
}

func (r *reserveOnly) Reserve(ctx context.Context, source, id string, now time.Time) (bool, func(bool), error) {
	r.mu.Lock()
	err, wait := r.err, r.wait
	r.mu.Unlock()
	if wait != nil {
		wait()
	}
	if err != nil {
		return false, nil, err
	}
	return r.store.Reserve(ctx, source, id, now)
}

// TestReserveSeconds: bridge_dedup_reserve_seconds counts every reservation by its outcome,
// through the memory store's TryReserve and through a store that must be waited for, and
// measures the wait on the server's clock: a store whose every answer takes 5 ms of it adds
// exactly 5 ms a reservation to the sum.
func TestReserveSeconds(t *testing.T) {
	const delay = 5 * time.Millisecond
	var clock atomic.Int64 // the servers' clock, in ns; it moves only when the store waits
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	memory := serve(t, func(o *ingress.Options) { o.Now = now })
	store := &reserveOnly{store: dedup.New(time.Hour, 1000, dedup.Options{}), wait: func() { clock.Add(int64(delay)) }}
	waiting := serve(t, func(o *ingress.Options) { o.Dedup, o.Now = store, now })
	for _, srv := range []*server{memory, waiting} {
		body := delivery("evt_reserve")
		for range 2 { // accepted, then a duplicate
			if code, got, _ := send(t, srv, http.MethodPost, body); code != 200 {
				t.Fatalf("answered %d %s, want 200", code, got)
			}
		}
	}
	store.mu.Lock()
	store.err = failure.New(failure.Unavailable, "redis cannot be reached")
	store.mu.Unlock()
	if code, got, _ := send(t, waiting, http.MethodPost, delivery("evt_reserve_down")); code != 503 {
		t.Fatalf("with the store down answered %d %s, want 503", code, got)
	}
	for _, c := range []struct {
		srv  *server
		want map[string]int
	}{
		{memory, map[string]int{"new": 1, "duplicate": 1, "failed": 0}},
		{waiting, map[string]int{"new": 1, "duplicate": 1, "failed": 1}},
	} {
		m := c.srv.metricsText(t)
		for outcome, n := range c.want {
			if line := fmt.Sprintf(`bridge_dedup_reserve_seconds_count{outcome=%q} %d`, outcome, n); !strings.Contains(m, line) {
				t.Errorf("want %s in:\n%s", line, grepLines(m, "bridge_dedup_reserve_seconds_count"))
			}
		}
	}
	m := waiting.metricsText(t)
	var sum float64
	for _, outcome := range []string{"new", "duplicate", "failed"} {
		var v float64
		prefix := fmt.Sprintf(`bridge_dedup_reserve_seconds_sum{outcome=%q} `, outcome)
		for _, l := range strings.Split(m, "\n") {
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				v, _ = strconv.ParseFloat(rest, 64)
			}
		}
		sum += v
	}
	if want := 3 * delay.Seconds(); math.Abs(sum-want) > 1e-9 {
		t.Errorf("the waiting store's reservations sum to %.6f s, want %.6f (3 of %v)", sum, want, delay)
	}
	if m := memory.metricsText(t); !strings.Contains(m, `bridge_dedup_reserve_seconds_sum{outcome="new"} 0`) {
		t.Errorf("the memory store's reservation, on a clock that did not move, took time:\n%s", grepLines(m, "bridge_dedup_reserve_seconds_sum"))
	}
}

// TestDedupStoreThatWaits: through a store without TryReserve, a delivery is accepted and its
// redelivery is a duplicate; the store's own Unavailable is answered 503 with its reason, and
// any other error (a wait that ran out) as an earlier delivery still waiting for Kafka.
func TestDedupStoreThatWaits(t *testing.T) {
	store := &reserveOnly{store: dedup.New(time.Hour, 1000, dedup.Options{})}
	srv := serve(t, func(o *ingress.Options) { o.Dedup = store })
	body := delivery("evt_wait")
	for _, want := range []string{`"status":"accepted"`, `"status":"duplicate"`} {
		if code, got, _ := send(t, srv, http.MethodPost, body); code != 200 || !strings.Contains(got, want) {
			t.Fatalf("answered %d %s, want 200 %s", code, got, want)
		}
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{failure.New(failure.Unavailable, "the dedup store is rebuilding"), "the dedup store is rebuilding"},
		{context.DeadlineExceeded, "an earlier delivery of this event is still waiting for kafka"},
		{errors.New("plain"), "an earlier delivery of this event is still waiting for kafka"},
	} {
		store.mu.Lock()
		store.err = c.err
		store.mu.Unlock()
		code, got, h := send(t, srv, http.MethodPost, delivery("evt_wait_err"))
		if code != 503 || !strings.Contains(got, c.want) || h.Get("Retry-After") == "" {
			t.Errorf("store error %v answered %d %s, want 503 %q with Retry-After", c.err, code, got, c.want)
		}
	}
}

// TestWrongMethodAllowsHandshake: the endpoint of a source that answers a GET handshake
// (Meta) names GET and POST in the Allow of its 405.
func TestWrongMethodAllowsHandshake(t *testing.T) {
	preset, _ := providers.Lookup("meta")
	key, err := preset.Key("meta_app_secret")
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, func(o *ingress.Options) {
		o.Sources = append(o.Sources, ingress.Source{Name: "meta", Provider: "meta", Preset: preset, Keys: []*providers.Key{key}})
	})
	req, _ := http.NewRequest(http.MethodPut, "http://"+srv.addr+"/webhooks/meta", strings.NewReader("{}"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, POST" {
		t.Errorf("answered %d (Allow %q), want 405 with Allow: GET, POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// keyedWrapping is wrapping deduplicated on a digest of its body, as a source whose event id
// is not signed is (providers.ContentKeyed).
type keyedWrapping struct{ wrapping }

func (keyedWrapping) UnsignedFields() []string { return []string{"id from header X-Test-Id"} }

func (keyedWrapping) DedupKey(_ providers.Headers, body []byte) string {
	return fmt.Sprintf("signed_%x", sha256.Sum256(body))
}

// TestQuarantineOfAContentKeyedSource: a content-keyed source's unnormalizable delivery is
// quarantined with its key; one Kafka did not take is a 503 whose key is released, so the
// retry is quarantined; once it is, a redelivery is a duplicate. A dedup store that cannot
// be asked is a 503.
func TestQuarantineOfAContentKeyedSource(t *testing.T) {
	rec := &recorder{}
	store := &reserveOnly{store: dedup.New(time.Hour, 1000, dedup.Options{})}
	srv := serve(t, func(o *ingress.Options) {
		o.Producer, o.Dedup = rec, store
		o.Sources[0].Preset = keyedWrapping{}
	})
	body := delivery("evt_keyed")
	rec.failWith(failure.New(failure.Unavailable, "kafka is down"))
	if code, got, _ := send(t, srv, http.MethodPost, body); code != 503 {
		t.Fatalf("a quarantine Kafka did not take answered %d %s, want 503", code, got)
	}
	rec.failWith(nil)
	if code, got, _ := send(t, srv, http.MethodPost, body); code != 202 {
		t.Fatalf("the retry answered %d %s, want 202", code, got)
	}
	if code, got, _ := send(t, srv, http.MethodPost, body); code != 200 || !strings.Contains(got, `"status":"duplicate"`) {
		t.Fatalf("the redelivery answered %d %s, want 200 duplicate", code, got)
	}
	recs := rec.records()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	want := fmt.Sprintf("signed_%x", sha256.Sum256([]byte(body)))
	if key := recordHeader(recs[0], dedup.KeyHeader); key != want {
		t.Errorf("record's %s %q, want %q", dedup.KeyHeader, key, want)
	}
	store.mu.Lock()
	store.err = failure.New(failure.Unavailable, "the dedup store is rebuilding")
	store.mu.Unlock()
	if code, got, _ := send(t, srv, http.MethodPost, delivery("evt_keyed_2")); code != 503 || !strings.Contains(got, "rebuilding") {
		t.Errorf("with the store unavailable answered %d %s, want 503", code, got)
	}
}

// TestLongNamesInAnswers: an answer is whole however long the event id, the topic or the
// reason it names (the answers are written into buffers sized from them).
func TestLongNamesInAnswers(t *testing.T) {
	long := strings.Repeat("i", 300)
	srv := serve(t, func(o *ingress.Options) { o.TopicPrefix = strings.Repeat("t", 120) + "." })
	for _, c := range []struct {
		name, body, want string
		code             int
	}{
		{"a long id", delivery(long), `{"status":"accepted","event_id":"` + long + `","topic":"` + strings.Repeat("t", 120) + `.post.published"`, 200},
		{"a long topic", delivery("evt_long_topic"), `{"status":"accepted","event_id":"evt_long_topic","topic":"` + strings.Repeat("t", 120), 200},
		{"a long reason", strings.Replace(delivery("evt_long_reason"), "post.published", "post."+long, 1), `{"status":"quarantined","reason":"`, 202},
	} {
		code, got, _ := send(t, srv, http.MethodPost, c.body)
		if code != c.code || !strings.HasPrefix(got, c.want) || !json.Valid([]byte(got)) {
			t.Errorf("%s: answered %d %.200s…, want %d %.200s…", c.name, code, got, c.code, c.want)
		}
	}
	s := serveSpooling(t, 64<<20, nil)
	s.k.setDown(true)
	if code, status := s.post(t, long); code != 200 || status != "spooled" {
		t.Errorf("a long id spooled: answered %d %s", code, status)
	}
}
