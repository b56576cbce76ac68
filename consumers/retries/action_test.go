package retries_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialbridge/bridge/consumers/internal/grouptest"
	"github.com/socialbridge/bridge/consumers/retries"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
)

// actionConfig is the retries section with the given action timeout and concurrency.
func actionConfig(brokers []string, prefix, url string, timeout time.Duration, concurrency int) string {
	return grouptest.Kafka(brokers, prefix) + fmt.Sprintf(`consumers:
  retries:
    group: %q
    delays: ["200ms", "400ms"]
    action: {url: %q, method: POST, timeout: %s}
    concurrency: %d
    listen: "127.0.0.1:0"
    transaction_timeout: 60s
`, prefix+"retries", url+"/v1/posts/{post_id}/retry", timeout, concurrency)
}

// TestConcurrencyBoundsCallsInFlight: with concurrency 3, nine due records make at most three
// calls in flight at once (docs/configuration.md): the action holds each call until the test
// lets one go, and no call starts while three are held; each one let go makes room for one.
func TestConcurrencyBoundsCallsInFlight(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	const bound, n = 3, 9
	var mu sync.Mutex
	var started, released, over int
	release := make(chan struct{}, n)
	p := newProvider(t, func(_ string, _ int, w http.ResponseWriter) {
		mu.Lock()
		if started++; started > released+bound {
			over++
		}
		mu.Unlock()
		<-release
		w.WriteHeader(http.StatusOK)
	})
	grouptest.Run(t, grouptest.Parse(t, actionConfig(brokers, prefix, p.srv.URL, 30*time.Second, bound)), retries.Run)
	t.Cleanup(func() { close(release) }) // first: a held call would hold the group's stop
	var evs []*event.Event
	for i := range n {
		evs = append(evs, failed(fmt.Sprintf("evt_conc_%d", i), nil))
	}
	grouptest.Produce(t, brokers, prefix, 0, evs...)
	for i := range n {
		want := min(n, i+bound)
		testkit.Eventually(t, time.Minute, fmt.Sprintf("%d calls started", want), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return started >= want
		})
		mu.Lock()
		released++
		mu.Unlock()
		release <- struct{}{}
	}
	kafkatest.WaitCommitted(t, brokers, prefix+"retries", event.Topic(prefix, event.PostFailed), 0, n)
	mu.Lock()
	defer mu.Unlock()
	if over > 0 || started != n {
		t.Fatalf("%d calls started, %d of them while %d were in flight; want %d, none", started, over, bound, n)
	}
}

// TestActionTimeoutFailsTheCall: a call the action does not answer within action.timeout is
// a failed call (docs/configuration.md): the client gives up on it (the action sees its
// request end), the record moves to the first retry topic with the reason, and the retry's
// call succeeds.
func TestActionTimeoutFailsTheCall(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	var calls, gaveUp atomic.Int32
	ended := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select { // never answered: only the client's timeout ends it (or the test's end)
			case <-r.Context().Done():
				gaveUp.Add(1)
			case <-ended:
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	grouptest.Run(t, grouptest.Parse(t, actionConfig(brokers, prefix, srv.URL, time.Second, 1)), retries.Run)
	t.Cleanup(func() { close(ended) }) // first: a hung call would hold the group's stop
	ev := failed("evt_slow", nil)
	grouptest.Produce(t, brokers, prefix, 0, ev)

	testkit.Eventually(t, time.Minute, "the retry's call", func() bool { return calls.Load() >= 2 })
	if gaveUp.Load() != 1 {
		t.Errorf("the unanswered call was given up %d times, want once", gaveUp.Load())
	}
	rs := kafkatest.ReadCommitted(t, brokers, event.RetryTopic(prefix, 1), 1, 0, 30*time.Second)
	if len(rs) != 1 || string(rs[0].Key) != ev.ID {
		t.Fatalf("retry.1 holds %d records, want %s", len(rs), ev.ID)
	}
	if reason := kafkatest.Header(rs[0], retries.HeaderError); !strings.Contains(strings.ToLower(reason), "time") {
		t.Errorf("the moved record's reason is %q, want the timeout", reason)
	}
}
