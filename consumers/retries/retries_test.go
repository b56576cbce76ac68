package retries_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers/internal/grouptest"
	"github.com/socialbridge/bridge/consumers/retries"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
)

func TestMain(m *testing.M) {
	grouptest.ChildMain(retries.Run)
	os.Exit(m.Run())
}

// call is one request the retry action received.
type call struct {
	path, key, auth, method string
	at                      time.Time
}

// provider plays the provider's retry endpoint: answer decides each answer from the
// event's number of calls so far (1 for the first).
type provider struct {
	mu     sync.Mutex
	calls  []call
	answer func(key string, n int, w http.ResponseWriter)
	srv    *httptest.Server
}

func newProvider(t *testing.T, answer func(key string, n int, w http.ResponseWriter)) *provider {
	p := &provider{answer: answer}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		p.mu.Lock()
		p.calls = append(p.calls, call{path: r.URL.EscapedPath() + "?" + r.URL.RawQuery, key: key, auth: r.Header.Get("Authorization"), method: r.Method, at: time.Now()})
		n := p.count(key)
		p.mu.Unlock()
		p.answer(key, n, w)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) count(key string) int {
	n := 0
	for _, c := range p.calls {
		if c.key == key {
			n++
		}
	}
	return n
}

func (p *provider) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

func (p *provider) of(key string) []call {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []call
	for _, c := range p.calls {
		if c.key == key {
			out = append(out, c)
		}
	}
	return out
}

// config is the retries section for a test: delays of 200 and 400 ms, the action at url.
func config(brokers []string, prefix, url string) string {
	return grouptest.Kafka(brokers, prefix) + fmt.Sprintf(`consumers:
  retries:
    group: %q
    delays: ["200ms", "400ms"]
    action:
      url: %q
      method: PUT
      headers:
        Authorization: "Bearer test-key"
      timeout: 5s
    listen: "127.0.0.1:0"
    instance_id: "only"
    transaction_timeout: 20s
`, prefix+"retries", url+"/v1/posts/{post_id}/retry?profile={profile_name}")
}

func failed(id string, fill func(*event.Event)) *event.Event {
	return grouptest.Event(event.PostFailed, id, func(ev *event.Event) {
		ev.PostID, ev.ProfileName, ev.Platform = grouptest.Str("post "+id), grouptest.Str("brand&co"), grouptest.Str("tiktok")
		ev.ErrorCode, ev.Retryable = grouptest.Str("rate_limited"), new(bool)
		*ev.Retryable = true
		if fill != nil {
			fill(ev)
		}
	})
}

func status(code int) func(string, int, http.ResponseWriter) {
	return func(_ string, _ int, w http.ResponseWriter) { w.WriteHeader(code) }
}

func TestSuccessAfterFailuresStopsRetrying(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	p := newProvider(t, func(_ string, n int, w http.ResponseWriter) {
		if n < 3 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	grouptest.Run(t, grouptest.Parse(t, config(brokers, prefix, p.srv.URL)), retries.Run)
	ev := failed("evt_ok3", nil)
	grouptest.Produce(t, brokers, prefix, 1, ev)

	testkit.Eventually(t, 60*time.Second, "3 calls", func() bool { return len(p.of(ev.ID)) >= 3 })
	// The third call succeeded: once the group commits past the record in retry.2, nothing
	// of this event is left to call, and a 4th call (or a move) would have come before.
	retry2 := event.RetryTopic(prefix, 2)
	kafkatest.WaitCommitted(t, brokers, prefix+"retries", retry2, partitionOf(t, brokers, retry2), 1)
	calls := p.of(ev.ID)
	if len(calls) != 3 {
		t.Fatalf("calls = %d, want 3 (2 failures, then success ends it)", len(calls))
	}
	for _, c := range calls {
		if c.key != ev.ID || c.method != http.MethodPut || c.auth != "Bearer test-key" {
			t.Errorf("call %+v: want Idempotency-Key %s, PUT, the configured Authorization", c, ev.ID)
		}
		if want := "/v1/posts/post%20evt_ok3/retry?profile=brand%26co"; c.path != want {
			t.Errorf("path %q, want %q (placeholders filled and escaped)", c.path, want)
		}
	}
	if gap := calls[1].at.Sub(calls[0].at); gap < 200*time.Millisecond {
		t.Errorf("2nd call %s after the 1st, want at least the first delay (200ms)", gap)
	}
	if gap := calls[2].at.Sub(calls[1].at); gap < 400*time.Millisecond {
		t.Errorf("3rd call %s after the 2nd, want at least the second delay (400ms)", gap)
	}
	for i, topic := range []string{event.RetryTopic(prefix, 1), retry2} {
		rs := kafkatest.ReadCommitted(t, brokers, topic, 1, time.Second, 20*time.Second)
		if len(rs) != 1 || string(rs[0].Key) != ev.ID || kafkatest.Header(rs[0], retries.HeaderAttempt) != fmt.Sprint(i+1) {
			t.Errorf("%s: %d records, want 1 of %s with retry-attempt %d", topic, len(rs), ev.ID, i+1)
		}
	}
	// The commit past the retry.2 record was seen: a dead-letter of it would be committed.
	if rs := kafkatest.ReadCommitted(t, brokers, event.DLQTopic(prefix), 0, time.Second, 5*time.Second); len(rs) != 0 {
		t.Errorf("DLQ holds %d records, want none", len(rs))
	}
}

func TestExhaustedRetriesLandInDLQWithHeaders(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	p := newProvider(t, status(http.StatusBadGateway))
	grouptest.Run(t, grouptest.Parse(t, config(brokers, prefix, p.srv.URL)), retries.Run)
	ev := failed("evt_exhaust", nil)
	grouptest.Produce(t, brokers, prefix, 2, ev)

	dlq := kafkatest.ReadCommitted(t, brokers, event.DLQTopic(prefix), 1, time.Second, 60*time.Second)
	if len(dlq) != 1 {
		t.Fatalf("DLQ: %d records, want 1", len(dlq))
	}
	r := dlq[0]
	want := map[string]string{
		retries.HeaderAttempt: "3", retries.HeaderOriginTopic: event.Topic(prefix, event.PostFailed),
		retries.HeaderOriginPartition: "2", retries.HeaderOriginOffset: "0", "event-type": event.PostFailed,
	}
	for k, v := range want {
		if got := kafkatest.Header(r, k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if e := kafkatest.Header(r, retries.HeaderError); !strings.Contains(e, "exhausted") || !strings.Contains(e, "502") {
		t.Errorf("retry-error = %q, want exhaustion and the last answer (502)", e)
	}
	if string(r.Key) != ev.ID || len(p.of(ev.ID)) != 3 {
		t.Errorf("key %q, %d calls; want %s and 3 calls", r.Key, len(p.of(ev.ID)), ev.ID)
	}
}

func TestPermanentFailuresGoStraightToDLQ(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	p := newProvider(t, func(key string, _ int, w http.ResponseWriter) {
		if key == "evt_refused" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	grouptest.Run(t, grouptest.Parse(t, config(brokers, prefix, p.srv.URL)), retries.Run)
	flagged := failed("evt_flagged", func(ev *event.Event) { *ev.Retryable = false })
	coded := failed("evt_coded", func(ev *event.Event) { ev.Retryable, ev.ErrorCode = nil, grouptest.Str("invalid_media") })
	refused := failed("evt_refused", nil)
	grouptest.Produce(t, brokers, prefix, 0, flagged, coded, refused)

	dlq := kafkatest.ReadCommitted(t, brokers, event.DLQTopic(prefix), 3, time.Second, 30*time.Second)
	reasons := map[string]string{}
	for _, r := range dlq {
		reasons[string(r.Key)] = kafkatest.Header(r, retries.HeaderError)
	}
	if len(dlq) != 3 || !strings.Contains(reasons["evt_flagged"], "retryable=false") ||
		!strings.Contains(reasons["evt_coded"], "invalid_media") || !strings.Contains(reasons["evt_refused"], "404") {
		t.Fatalf("DLQ reasons %v (%d records), want the three with their reasons", reasons, len(dlq))
	}
	if n := len(p.of("evt_flagged")) + len(p.of("evt_coded")); n != 0 {
		t.Errorf("%d calls for permanent failures, want none", n)
	}
	if n := len(p.of("evt_refused")); n != 1 {
		t.Errorf("%d calls for the refused one, want 1", n)
	}
	// The three dead-letters were committed with the offsets of all three records (one
	// partition, one batch or more in order): a move to retry.1 would be committed by now.
	kafkatest.WaitCommitted(t, brokers, prefix+"retries", event.Topic(prefix, event.PostFailed), 0, 3)
	if rs := kafkatest.ReadCommitted(t, brokers, event.RetryTopic(prefix, 1), 0, time.Second, 3*time.Second); len(rs) != 0 {
		t.Errorf("retry.1 holds %d records, want none", len(rs))
	}
}

func TestWaitingRecordDoesNotDelayTheOneBehindIt(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	p := newProvider(t, func(key string, n int, w http.ResponseWriter) {
		if key == "evt_slow" && n == 1 {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	grouptest.Run(t, grouptest.Parse(t, config(brokers, prefix, p.srv.URL)), retries.Run)
	slow, behind := failed("evt_slow", nil), failed("evt_behind", nil)
	grouptest.Produce(t, brokers, prefix, 0, slow, behind) // same partition, slow first

	testkit.Eventually(t, 60*time.Second, "the slow record retried", func() bool { return len(p.of(slow.ID)) == 2 })
	s, b := p.of(slow.ID), p.of(behind.ID)
	if len(b) != 1 {
		t.Fatalf("%d calls for the record behind, want 1", len(b))
	}
	if !b[0].at.Before(s[1].at) {
		t.Errorf("the record behind was handled at %s, after the waiting one's retry at %s", b[0].at, s[1].at)
	}
	if wait := s[1].at.Sub(s[0].at); wait < 1900*time.Millisecond {
		t.Errorf("retry %s after a 503 with Retry-After: 2, want at least 2s (longer than the 200ms delay)", wait)
	}
}

func TestUndecodableValuesAreDeadLettered(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	p := newProvider(t, status(http.StatusOK))
	grouptest.Run(t, grouptest.Parse(t, config(brokers, prefix, p.srv.URL)), retries.Run)
	input := event.Topic(prefix, event.PostFailed)
	bad := []*kgo.Record{
		{Topic: input, Key: []byte("garbage"), Value: []byte("not avro at all")},
		{Topic: input, Key: []byte("fingerprint"), Value: []byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0}},
		{Topic: input, Key: []byte("schema-id"), Value: []byte{0, 0, 0, 0x30, 0x39, 2}},
	}
	grouptest.ProduceRecords(t, brokers, bad...)
	good := failed("evt_after_bad", nil)
	grouptest.Produce(t, brokers, prefix, 0, good) // behind them on partition 0

	testkit.Eventually(t, 60*time.Second, "the good record handled", func() bool { return len(p.of(good.ID)) == 1 })
	dlq := kafkatest.ReadCommitted(t, brokers, event.DLQTopic(prefix), 3, time.Second, 30*time.Second)
	got := map[string]string{}
	for _, r := range dlq {
		got[string(r.Key)] = kafkatest.Header(r, retries.HeaderError)
	}
	for _, want := range []struct{ key, reason string }{{"garbage", "malformed"}, {"fingerprint", "unknown schema"}, {"schema-id", "unknown schema"}} {
		if !strings.Contains(got[want.key], want.reason) {
			t.Errorf("DLQ record %s: retry-error %q, want it to say %q", want.key, got[want.key], want.reason)
		}
	}
	if len(dlq) != 3 {
		t.Errorf("DLQ: %d records, want 3", len(dlq))
	}
}
