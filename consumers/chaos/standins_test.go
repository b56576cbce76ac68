package chaos_test

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// mode is what a fault makes a stand-in do.
type mode int

const (
	healthy mode = iota
	down         // fail every request: 5xx, 429 with Retry-After, or no answer in time
	slow         // answer late: most within the consumer's timeout, some after it
)

// switchable is a stand-in's mode, set by the faults.
type switchable struct {
	mu sync.Mutex
	m  mode
}

func (s *switchable) set(m mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m = m
}

func (s *switchable) get() mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m
}

// answer is what a stand-in answers one request: after delay, status, with Retry-After
// when set.
type answer struct {
	status     int
	delay      time.Duration
	retryAfter string
	by         string // what decided it: the class, a replay, a fault
}

// failure draws the answer of a stand-in that is down: a 5xx, a 429 asking to wait a
// second, or no answer before the consumer's timeout (then a 503 nobody reads).
func failure(rng *rand.Rand, timeout time.Duration) answer {
	switch rng.IntN(4) {
	case 0:
		return answer{status: http.StatusInternalServerError, by: "down"}
	case 1:
		return answer{status: http.StatusServiceUnavailable, by: "down"}
	case 2:
		return answer{status: http.StatusTooManyRequests, retryAfter: "1", by: "down"}
	}
	return answer{status: http.StatusServiceUnavailable, delay: timeout + 500*time.Millisecond, by: "down, no answer in time"}
}

// lateness is how late a slow stand-in answers in time: up to 30% of the consumer's
// timeout, so that a machine under load does not turn it into a timeout.
func lateness(rng *rand.Rand, timeout time.Duration) time.Duration {
	return 50*time.Millisecond + time.Duration(rng.Int64N(int64(timeout*3/10)))
}

// action is the stand-in retry action: an API with idempotency keys (Stripe's convention).
// A key that was answered 2xx once is answered 2xx again at once, whatever the faults (the
// replay of the stored answer); any other call is answered by the key's class, unless a
// fault is in force. Every call is recorded.
type action struct {
	srv     *httptest.Server
	timeout time.Duration // the consumer's action.timeout
	class   map[string]class
	mode    switchable
	mu      sync.Mutex
	rng     *rand.Rand
	n       map[string]int       // calls of each key answered by its class
	okAt    map[string]time.Time // each key's first 2xx
	calls   []call
}

// call is one request the action received.
type call struct {
	key     string
	at, end time.Time
	status  int
	by      string
	late    bool // answered after the consumer's timeout
}

func newAction(t *testing.T, rng *rand.Rand, classes map[string]class, timeout time.Duration) *action {
	a := &action{timeout: timeout, class: classes, rng: rng, n: map[string]int{}, okAt: map[string]time.Time{}}
	a.srv = httptest.NewServer(a)
	t.Cleanup(a.srv.Close)
	return a
}

func (a *action) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, start := r.Header.Get("Idempotency-Key"), time.Now()
	a.mu.Lock()
	ans := a.plan(key)
	a.mu.Unlock()
	time.Sleep(ans.delay)
	a.mu.Lock()
	end := time.Now()
	a.calls = append(a.calls, call{key: key, at: start, end: end, status: ans.status, by: ans.by, late: ans.delay >= a.timeout})
	if ans.status/100 == 2 && a.okAt[key].IsZero() {
		a.okAt[key] = end
	}
	a.mu.Unlock()
	if ans.retryAfter != "" {
		w.Header().Set("Retry-After", ans.retryAfter)
	}
	w.WriteHeader(ans.status)
}

// plan decides the answer to a call for key. Call with a.mu held.
func (a *action) plan(key string) answer {
	if !a.okAt[key].IsZero() {
		return answer{status: http.StatusOK, by: "replay"}
	}
	var delay time.Duration
	switch a.mode.get() {
	case down:
		return failure(a.rng, a.timeout)
	case slow:
		delay = lateness(a.rng, a.timeout)
	}
	a.n[key]++
	ans := byClass(a.class[key], a.n[key])
	ans.delay = delay
	return ans
}

// byClass is the answer to the n-th call for a key of class c.
func byClass(c class, n int) answer {
	ok := answer{status: http.StatusOK, by: c.String()}
	fail := answer{status: http.StatusInternalServerError, by: c.String()}
	switch c {
	case okAfter1, okAfter2:
		if n <= int(c-okFirst) {
			return fail
		}
	case rateLimited:
		if n == 1 {
			return answer{status: http.StatusTooManyRequests, retryAfter: "1", by: c.String()}
		}
	case refused:
		return answer{status: http.StatusNotFound, by: c.String()}
	case failing:
		return answer{status: http.StatusServiceUnavailable, by: c.String()}
	case permanent:
		return answer{status: http.StatusInternalServerError, by: "a permanent failure called"}
	}
	return ok
}

// snapshot returns the calls so far, in the order they arrived, and each key's first 2xx.
func (a *action) snapshot() ([]call, map[string]time.Time) {
	a.mu.Lock()
	ok := make(map[string]time.Time, len(a.okAt))
	for k, v := range a.okAt {
		ok[k] = v
	}
	calls := append([]call(nil), a.calls...)
	a.mu.Unlock()
	slices.SortStableFunc(calls, func(x, y call) int { return x.at.Compare(y.at) })
	return calls, ok
}

// slack is the stand-in Slack incoming webhook. It takes a message (answers 200) unless a
// fault is in force, or the message has blocks and its profile is one whose blocks Slack
// refuses (400 invalid_blocks; its text-only form is taken). Slow, it sometimes takes a
// message and answers only after the consumer's timeout: the consumer cannot know it was
// taken. Every POST is recorded.
type slack struct {
	srv          *httptest.Server
	timeout      time.Duration // the consumer's slack_timeout
	refuseBlocks map[string]bool
	mode         switchable
	mu           sync.Mutex
	rng          *rand.Rand
	posts        []post
}

// post is one message POSTed to Slack.
type post struct {
	at, end          time.Time
	key              string // source/profile/platform
	kind             string // alert or resolution
	id               string // the event id it names
	repeat, textOnly bool   // marked as a possible repeat; without blocks
	status           int
	late             bool // answered after the consumer's timeout
	taken            bool // Slack has it (answered 200, in time or too late)
	body             string
}

func newSlack(t *testing.T, rng *rand.Rand, refuseBlocks map[string]bool, timeout time.Duration) *slack {
	s := &slack{timeout: timeout, refuseBlocks: refuseBlocks, rng: rng}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

var (
	whoRe = regexp.MustCompile(`(prof_\d+) on (\w+) \(source (\w+)\)`)
	idRe  = regexp.MustCompile(`event (evt_[a-z]_\d+)`)
)

func (s *slack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := post{at: time.Now()}
	body, _ := io.ReadAll(r.Body)
	var msg struct {
		Text   string            `json:"text"`
		Blocks []json.RawMessage `json:"blocks"`
	}
	_ = json.Unmarshal(body, &msg)
	p.body, p.textOnly, p.repeat = string(body), len(msg.Blocks) == 0, strings.Contains(msg.Text, "sent again")
	switch {
	case strings.HasPrefix(msg.Text, ":warning:"):
		p.kind = "alert"
	case strings.HasPrefix(msg.Text, ":white_check_mark:"):
		p.kind = "resolution"
	}
	if m := whoRe.FindStringSubmatch(msg.Text); m != nil {
		p.key = m[3] + "/" + m[1] + "/" + m[2]
	}
	if m := idRe.FindSubmatch(body); m != nil {
		p.id = string(m[1])
	}
	s.mu.Lock()
	ans := s.plan(p)
	s.mu.Unlock()
	time.Sleep(ans.delay)
	p.end, p.status, p.taken, p.late = time.Now(), ans.status, ans.status == http.StatusOK, ans.delay >= s.timeout
	s.mu.Lock()
	s.posts = append(s.posts, p)
	s.mu.Unlock()
	if ans.retryAfter != "" {
		w.Header().Set("Retry-After", ans.retryAfter)
	}
	w.WriteHeader(ans.status)
	if ans.status == http.StatusBadRequest {
		_, _ = io.WriteString(w, "invalid_blocks")
	}
}

// plan decides the answer to p. Call with s.mu held.
func (s *slack) plan(p post) answer {
	var delay time.Duration
	switch s.mode.get() {
	case down:
		return failure(s.rng, s.timeout)
	case slow:
		delay = lateness(s.rng, s.timeout)
		if s.rng.IntN(4) == 0 {
			delay = s.timeout + 500*time.Millisecond
		}
	}
	prof, _, _ := strings.Cut(strings.TrimPrefix(p.key, "acme/"), "/")
	if !p.textOnly && s.refuseBlocks[prof] {
		return answer{status: http.StatusBadRequest, delay: delay, by: "invalid_blocks"}
	}
	return answer{status: http.StatusOK, delay: delay, by: "taken"}
}

// snapshot returns the POSTs so far, in the order they arrived (a POST is recorded when
// it is answered, and a slow answer comes after the next POST's).
func (s *slack) snapshot() []post {
	s.mu.Lock()
	out := append([]post(nil), s.posts...)
	s.mu.Unlock()
	slices.SortStableFunc(out, func(a, b post) int { return a.at.Compare(b.at) })
	return out
}
