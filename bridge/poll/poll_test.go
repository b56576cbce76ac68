package poll_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/poll"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/testkit"
)

const apiKey = "pb_live_test_key"

// api is a local Post-Bridge results API: GET /v1/post-results in the documented shape,
// newest first, paged by limit and offset, behind a bearer API key.
type api struct {
	mu      sync.Mutex
	results []string // result ids, oldest first
	failing bool
	calls   int
	padding int // bytes of filler in each result
}

func (a *api) add(ids ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.results = append(a.results, ids...)
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if r.Header.Get("Authorization") != "Bearer "+apiKey {
		http.Error(w, `{"message":"API key not found"}`, http.StatusUnauthorized)
		return
	}
	if a.failing || r.URL.Path != "/v1/post-results" {
		http.Error(w, `{"message":"unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	newest := slices.Clone(a.results)
	slices.Reverse(newest)
	page := newest[min(offset, len(newest)):min(offset+limit, len(newest))]
	var items []string
	for _, id := range page {
		success := !strings.HasSuffix(id, "-failed")
		items = append(items, fmt.Sprintf(`{"id":%q,"post_id":"post_%s","success":%t,"social_account_id":7,"platform":"instagram","error":null,"platform_data":{"id":"ig_%s","url":"https://instagram.com/p/%s/","username":"brand"},"caption":%q,"created_at":"2026-01-01T00:00:00Z"}`, id, id, success, id, id, strings.Repeat("x", a.padding)))
	}
	next := "null"
	if offset+limit < len(newest) {
		next = strconv.Quote(fmt.Sprintf("/v1/post-results?offset=%d", offset+limit))
	}
	fmt.Fprintf(w, `{"data":[%s],"meta":{"total":%d,"offset":%d,"limit":%d,"next":%s}}`, strings.Join(items, ","), len(newest), offset, limit, next)
}

// sink records what a poll emits, and fails on demand.
type sink struct {
	mu          sync.Mutex
	emitted     []string
	quarantined []string
	failOn      string
	failWith    error // nil: a failure that may pass
}

func (s *sink) Emit(_ context.Context, source string, ev *event.Event, raw []byte, _ time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.ID == s.failOn {
		return false, cmp.Or(s.failWith, error(failure.New(failure.Unavailable, "kafka did not acknowledge")))
	}
	if source != "pb" || !strings.Contains(string(raw), ev.ID) {
		return false, fmt.Errorf("emitted %s of source %s with raw %s", ev.ID, source, raw)
	}
	s.emitted = append(s.emitted, ev.ID+"="+ev.Type)
	return false, nil
}

func (s *sink) Quarantine(_ string, raw []byte, reason string, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quarantined = append(s.quarantined, reason)
	return nil
}

// memCursors keeps cursors in memory, and fails to save on demand.
type memCursors struct {
	saved    map[string]poll.Cursor
	failSave bool
}

func (m *memCursors) Load(context.Context) (map[string]poll.Cursor, error) { return m.saved, nil }

func (m *memCursors) Save(_ context.Context, source string, c poll.Cursor) error {
	if m.failSave {
		return errors.New("kafka did not acknowledge")
	}
	m.saved[source] = c
	return nil
}

func setup(t *testing.T) (*api, *sink, *memCursors, *poll.Poller, *poll.Source) {
	t.Helper()
	a, s, c := &api{}, &sink{}, &memCursors{saved: map[string]poll.Cursor{}}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	preset, _ := providers.New("post-bridge", providers.Settings{})
	src := &poll.Source{Name: "pb", Preset: preset.(providers.Poller), APIKey: apiKey, BaseURL: srv.URL, Interval: time.Hour}
	return a, s, c, newPoller(s, c, 0), src
}

func newPoller(s *sink, c *memCursors, maxPollBytes int) *poll.Poller {
	return poll.New(poll.Options{Sink: s, Cursors: c, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxPollBytes: maxPollBytes})
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

func TestFirstPollStartsAtTheHead(t *testing.T) {
	a, s, c, p, src := setup(t)
	a.add("old1", "old2")
	cur, err := p.Once(context.Background(), src, poll.Cursor{})
	if err != nil || !cur.Started || len(s.emitted) != 0 {
		t.Fatalf("first poll: cursor %+v, emitted %v, %v; want a started cursor and no events", cur, s.emitted, err)
	}
	if !slices.Equal(c.saved["pb"].Seen, []string{"old2", "old1"}) {
		t.Fatalf("saved cursor %+v", c.saved["pb"])
	}
	a.add("new1", "new2-failed")
	if cur, err = p.Once(context.Background(), src, cur); err != nil {
		t.Fatal(err)
	}
	if want := []string{"new1=post.published", "new2-failed=post.failed"}; !slices.Equal(s.emitted, want) {
		t.Fatalf("emitted %v, want %v (oldest first)", s.emitted, want)
	}
	if _, err = p.Once(context.Background(), src, cur); err != nil || len(s.emitted) != 2 {
		t.Fatalf("a poll with nothing new emitted %v, %v", s.emitted, err)
	}
}

func TestFirstPollOfAnEmptyListing(t *testing.T) {
	a, s, _, p, src := setup(t)
	cur, err := p.Once(context.Background(), src, poll.Cursor{})
	if err != nil || !cur.Started {
		t.Fatalf("cursor %+v, %v", cur, err)
	}
	a.add("first")
	if _, err := p.Once(context.Background(), src, cur); err != nil || !slices.Equal(s.emitted, []string{"first=post.published"}) {
		t.Fatalf("the first result after an empty listing: emitted %v, %v", s.emitted, err)
	}
}

// TestPollPagesDownToTheCursor checks that a poll reads page after page until it meets
// the cursor, and emits everything above it once, in order.
func TestPollPagesDownToTheCursor(t *testing.T) {
	a, s, _, p, src := setup(t)
	a.add("seen")
	cur, _ := p.Once(context.Background(), src, poll.Cursor{})
	fresh := ids("r", 250)
	a.add(fresh...)
	a.calls = 0
	cur, err := p.Once(context.Background(), src, cur)
	if err != nil || len(s.emitted) != 250 || a.calls != 3 {
		t.Fatalf("emitted %d in %d calls, %v; want 250 in 3 pages", len(s.emitted), a.calls, err)
	}
	for i, id := range fresh {
		if s.emitted[i] != id+"=post.published" {
			t.Fatalf("emitted[%d] = %s, want %s", i, s.emitted[i], id)
		}
	}
	if cur.Seen[0] != "r249" {
		t.Fatalf("cursor head %s, want the newest result", cur.Seen[0])
	}
}

// TestPollEmitFailure checks that a poll whose emit fails moves its cursor past the results
// emitted before, and that the next poll emits the rest.
func TestPollEmitFailure(t *testing.T) {
	a, s, c, p, src := setup(t)
	cur, _ := p.Once(context.Background(), src, poll.Cursor{})
	a.add("a", "b", "c")
	s.failOn = "b"
	cur, err := p.Once(context.Background(), src, cur)
	if err == nil || !slices.Equal(s.emitted, []string{"a=post.published"}) || cur.Seen[0] != "a" || c.saved["pb"].Seen[0] != "a" {
		t.Fatalf("emitted %v, cursor %v, saved %v, %v", s.emitted, cur.Seen, c.saved["pb"].Seen, err)
	}
	s.failOn = ""
	if _, err := p.Once(context.Background(), src, cur); err != nil || !slices.Equal(s.emitted, []string{"a=post.published", "b=post.published", "c=post.published"}) {
		t.Fatalf("after the failure: emitted %v, %v", s.emitted, err)
	}
}

// TestPollSaveFailure checks that a cursor Kafka did not take is saved by a later poll.
func TestPollSaveFailure(t *testing.T) {
	a, _, c, p, src := setup(t)
	cur, _ := p.Once(context.Background(), src, poll.Cursor{})
	a.add("a")
	c.failSave = true
	cur, err := p.Once(context.Background(), src, cur)
	if err == nil || cur.Seen[0] != "a" {
		t.Fatalf("cursor %v, %v; want it moved, and the save's failure", cur.Seen, err)
	}
	c.failSave = false
	if _, err := p.Once(context.Background(), src, cur); err != nil || c.saved["pb"].Seen[0] != "a" {
		t.Fatalf("saved %v, %v; want the cursor the failed save held", c.saved["pb"].Seen, err)
	}
}

func TestPollAPIFailure(t *testing.T) {
	a, s, _, p, src := setup(t)
	cur, _ := p.Once(context.Background(), src, poll.Cursor{})
	a.add("a")
	a.failing = true
	next, err := p.Once(context.Background(), src, cur)
	if err == nil || !strings.Contains(err.Error(), "503") || len(s.emitted) != 0 || !slices.Equal(next.Seen, cur.Seen) {
		t.Fatalf("err %v, emitted %v, cursor %v", err, s.emitted, next.Seen)
	}
	wrongKey := *src
	wrongKey.APIKey = "pb_live_wrong"
	_, err = p.Once(context.Background(), &wrongKey, cur)
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "pb_live_wrong") {
		t.Fatalf("a refused API key: %v", err)
	}
}

// TestPollQuarantines checks that a result that cannot be normalized goes to the quarantine
// and does not stop the poll.
func TestPollQuarantines(t *testing.T) {
	a, s, _, p, src := setup(t)
	cur, _ := p.Once(context.Background(), src, poll.Cursor{})
	a.add("a")
	preset := src.Preset
	src.Preset = brokenFirst{preset}
	a.add("b")
	if _, err := p.Once(context.Background(), src, cur); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.quarantined, []string{"broken on purpose"}) || !slices.Equal(s.emitted, []string{"b=post.published"}) {
		t.Fatalf("quarantined %v, emitted %v", s.quarantined, s.emitted)
	}
}

// brokenFirst is the post-bridge preset, except that result "a" cannot be normalized.
type brokenFirst struct{ providers.Poller }

func (b brokenFirst) Normalize(h providers.Headers, body []byte, ev *event.Event) error {
	if strings.Contains(string(body), `"id":"a"`) {
		return &failureError
	}
	return b.Poller.Normalize(h, body, ev)
}

var failureError = failure.Error{Kind: failure.Unnormalizable, Reason: "broken on purpose"}

// catchUp polls until the cursor has no backlog left, at most rounds times, and returns the
// cursor and how many rounds it took.
func catchUp(t *testing.T, p *poll.Poller, src *poll.Source, cur poll.Cursor, rounds int) (poll.Cursor, int) {
	t.Helper()
	for n := 1; n <= rounds; n++ {
		next, err := p.Once(context.Background(), src, cur)
		if err != nil {
			t.Fatalf("round %d: %v", n, err)
		}
		if cur = next; cur.Depth == 0 {
			return cur, n
		}
	}
	t.Fatalf("still %d results behind after %d rounds", cur.Depth, rounds)
	return cur, 0
}

// TestPollLongBacklog: 6,000 results arrived since the last poll (an outage), more than one
// round reads: rounds follow one another until every result is emitted once, oldest first,
// none skipped, with results still arriving meanwhile.
func TestPollLongBacklog(t *testing.T) {
	a, s, c, p, src := setup(t)
	cur, _ := p.Once(context.Background(), src, poll.Cursor{})
	backlog := ids("b", 6000)
	a.add(backlog...)
	var later []string
	for round := 0; cur.Depth > 0 || round == 0; round++ {
		if round == 2 { // a restart: a new poller from the saved cursor
			p, cur = newPoller(s, c, 0), c.saved["pb"]
		}
		next, err := p.Once(context.Background(), src, cur)
		if err != nil {
			t.Fatal(err)
		}
		cur = next
		if round < 3 { // results keep arriving during the catch-up
			id := fmt.Sprintf("late%d", round)
			later = append(later, id)
			a.add(id)
		}
		if round > 100 {
			t.Fatalf("still %d behind after 100 rounds", cur.Depth)
		}
	}
	catchUp(t, p, src, cur, 10)
	want := append(slices.Clone(backlog), later...)
	got := make([]string, len(s.emitted))
	for i, e := range s.emitted {
		got[i] = strings.TrimSuffix(e, "=post.published")
	}
	if !slices.Equal(got, want) {
		t.Fatalf("emitted %d results (first %v, last %v); want %d, each once, oldest first", len(got), got[:min(3, len(got))], got[max(0, len(got)-3):], len(want))
	}
}

// TestPollPermanentFailure: a result the sink refuses for good (too large for Kafka) is
// quarantined with its reason, and the results after it are emitted; a failure that may
// pass (Kafka unavailable) still stops the poll, to be tried again.
func TestPollPermanentFailure(t *testing.T) {
	a, s, _, p, src := setup(t)
	cur, _ := p.Once(context.Background(), src, poll.Cursor{})
	a.add("a", "b", "c")
	s.failOn, s.failWith = "b", failure.New(failure.TooLarge, "the record is larger than kafka accepts")
	cur, err := p.Once(context.Background(), src, cur)
	if err != nil || !slices.Equal(s.emitted, []string{"a=post.published", "c=post.published"}) {
		t.Fatalf("emitted %v, %v; want a and c", s.emitted, err)
	}
	if len(s.quarantined) != 1 || !strings.Contains(s.quarantined[0], "the record is larger than kafka accepts") {
		t.Fatalf("quarantined %v; want b with its reason", s.quarantined)
	}
	a.add("d")
	if _, err := p.Once(context.Background(), src, cur); err != nil || len(s.emitted) != 3 {
		t.Fatalf("after the quarantine: emitted %v, %v", s.emitted, err)
	}
}

// TestPollRoundBytesBounded: with large results, a round holds at most MaxPollBytes of pages
// (plus the one being read), so it emits fewer results; rounds follow until every result is
// emitted, once and in order.
func TestPollRoundBytesBounded(t *testing.T) {
	a, s, c, _, src := setup(t)
	a.padding = 4 << 10 // a page of 100 results is about 430 KiB
	p := newPoller(s, c, 1<<20)
	cur, _ := p.Once(context.Background(), src, poll.Cursor{})
	backlog := ids("big", 700)
	a.add(backlog...)
	rounds := 0
	for before := 0; cur.Depth > 0 || rounds == 0; rounds++ {
		next, err := p.Once(context.Background(), src, cur)
		if err != nil {
			t.Fatal(err)
		}
		// Pages held: as many as fit in 1 MiB (2), plus the one read: 300 results.
		if n := len(s.emitted) - before; n > 300 {
			t.Fatalf("round %d emitted %d results of about 4 KiB: more than its bytes allow", rounds, n)
		}
		cur, before = next, len(s.emitted)
		if rounds > 50 {
			t.Fatalf("still %d behind after 50 rounds", cur.Depth)
		}
	}
	if len(s.emitted) != len(backlog) || s.emitted[0] != "big000=post.published" || s.emitted[len(s.emitted)-1] != "big699=post.published" {
		t.Fatalf("emitted %d results in %d rounds; want %d in order", len(s.emitted), rounds, len(backlog))
	}
	for i, id := range backlog {
		if s.emitted[i] != id+"=post.published" {
			t.Fatalf("emitted[%d] = %s, want %s", i, s.emitted[i], id)
		}
	}
}

// TestRunCountsRoundsByOutcome: Run counts each round in bridge_polls_total{source,outcome}, a
// failed one as error and a good one as ok, and each result it produced in
// bridge_poll_results_total; bridge_poll_backlog is 0 once caught up.
func TestRunCountsRoundsByOutcome(t *testing.T) {
	a, s, c, _, src := setup(t)
	src.Interval = 20 * time.Millisecond // Run polls the Options' sources on their interval
	reg := prometheus.NewRegistry()
	p := poll.New(poll.Options{Sources: []poll.Source{*src}, Sink: s, Cursors: c, Registerer: reg,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	a.mu.Lock()
	a.failing = true
	a.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	value := func(name string, labels ...string) float64 { return gathered(t, reg, name, labels...) }
	testkit.Eventually(t, 30*time.Second, "a failed round counted as error", func() bool {
		return value("bridge_polls_total", "source", "pb", "outcome", "error") >= 1
	})
	if n := value("bridge_polls_total", "source", "pb", "outcome", "ok"); n != 0 {
		t.Fatalf("%g rounds counted ok while every one failed", n)
	}
	a.mu.Lock()
	a.failing = false
	a.mu.Unlock()
	testkit.Eventually(t, 30*time.Second, "a good round counted as ok", func() bool {
		return value("bridge_polls_total", "source", "pb", "outcome", "ok") >= 1
	})
	a.add("r1")
	testkit.Eventually(t, 30*time.Second, "the new result counted as produced", func() bool {
		return value("bridge_poll_results_total", "source", "pb", "outcome", "produced") == 1
	})
	if n := value("bridge_poll_backlog", "source", "pb"); n != 0 {
		t.Errorf("bridge_poll_backlog = %g when caught up, want 0", n)
	}
}

// TestSeriesStartAtZero: every source's round and result series exist at 0 before the
// first round, so that increase() over a window counts the first lost result (a series born
// at 1 would be counted from its second increment).
func TestSeriesStartAtZero(t *testing.T) {
	_, s, c, _, src := setup(t)
	reg := prometheus.NewRegistry()
	poll.New(poll.Options{Sources: []poll.Source{*src}, Sink: s, Cursors: c, Registerer: reg,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for name, outcomes := range map[string][]string{
		"bridge_polls_total":        {"ok", "error"},
		"bridge_poll_results_total": {"produced", "duplicate", "quarantined", "lost"},
	} {
		for _, o := range outcomes {
			if v, ok := lookup(t, reg, name, "source", src.Name, "outcome", o); !ok || v != 0 {
				t.Errorf("%s{source=%q,outcome=%q} = %g (present: %v), want 0, present", name, src.Name, o, v, ok)
			}
		}
	}
}

// gathered is the value of the series of name in reg whose labels include the given
// name/value pairs (0 when there is none).
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	v, _ := lookup(t, reg, name, labels...)
	return v
}

// lookup is the value of the series of name in reg whose labels include the given
// name/value pairs, and whether there is one.
func lookup(t *testing.T, reg *prometheus.Registry, name string, labels ...string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}
