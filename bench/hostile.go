package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socialbridge/bridge/event"
)

// hostileSource is the source the hostile JSON is posted to, with the benchmark's secret:
// its quarantined records are told apart from the valid stream's by their source header.
const hostileSource = "hostile"

// attack is a set of hostile clients run beside a valid stream: connections that send
// nothing, slowloris clients that send a request's headers a byte a second, and an
// authentic sender of JSON that is deeply nested or holds a huge number. Each kind keeps
// its count up: a connection the bridge closes is opened again.
type attack struct {
	idle, slow int     // connections of each kind
	jsonRate   float64 // hostile JSON requests per second
	secret     []byte

	held    atomic.Int64 // idle and slowloris connections open now
	dials   atomic.Int64 // of both kinds, over the attack
	refused atomic.Int64 // dials that failed
	mu      sync.Mutex
	answers map[string]int // hostile JSON: answer code (or error) → count
}

// Attack is what an attack did, for the results.
type Attack struct {
	Idle            int            `json:"idle_conns"`
	Slowloris       int            `json:"slowloris_conns"`
	JSONPerSec      float64        `json:"hostile_json_per_sec"`
	MinHeld         int64          `json:"min_conns_held"`
	Dials           int64          `json:"dials"`
	Refused         int64          `json:"dials_failed"`
	JSONAnswers     map[string]int `json:"hostile_json_answers"`
	NestedDepth     int            `json:"nested_depth"`
	NumberDigits    int            `json:"number_digits"`
	OpenFileLimit   uint64         `json:"open_file_limit"`
	ValidToCalmP99  float64        `json:"valid_p99_ratio"`
	ValidNon200     int            `json:"valid_non_200"`
	ValidP99Calm    float64        `json:"valid_p99_calm_ms"`
	ValidP99Hostile float64        `json:"valid_p99_hostile_ms"`
}

// The hostile bodies: nesting this deep, numbers this long. 64 KiB each.
const (
	nestedDepth  = 32 << 10
	numberDigits = 64 << 10
)

// start runs the attack on addr until ctx ends; wait returns once every client has stopped.
// It returns when the connections are open (or after 30 s, or when ctx ends).
func (a *attack) start(ctx context.Context, addr string) (wait func()) {
	a.answers = map[string]int{}
	var wg sync.WaitGroup
	for i := range a.idle + a.slow {
		slow := i >= a.idle
		wg.Go(func() { a.hold(ctx, addr, slow) })
	}
	if a.jsonRate > 0 {
		wg.Go(func() { a.postJSON(ctx, addr) })
	}
	want, deadline := int64(a.idle+a.slow), time.Now().Add(30*time.Second)
	for a.held.Load() < want && ctx.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return wg.Wait
}

// hold keeps one connection open, idle or as a slowloris, opening another when the bridge
// closes it.
func (a *attack) hold(ctx context.Context, addr string, slow bool) {
	for ctx.Err() == nil {
		a.dials.Add(1)
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			a.refused.Add(1)
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		a.held.Add(1)
		closed := make(chan struct{})
		go func() { // the bridge's answer, if any, then its close
			_, _ = io.Copy(io.Discard, c)
			close(closed)
		}()
		if slow {
			a.trickle(ctx, c, closed)
		}
		select {
		case <-closed:
		case <-ctx.Done():
		}
		a.held.Add(-1)
		c.Close()
		<-closed
	}
}

// trickle sends a request's headers a byte a second until the bridge closes c.
func (a *attack) trickle(ctx context.Context, c net.Conn, closed <-chan struct{}) {
	head := "POST " + webhookPath + " HTTP/1.1\r\nHost: bridge\r\nX-Slow: "
	if _, err := io.WriteString(c, head); err != nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-closed:
			return
		case <-t.C:
			if _, err := c.Write([]byte("s")); err != nil {
				return
			}
		}
	}
}

// postJSON sends the hostile bodies, alternately, at jsonRate over one connection.
func (a *attack) postJSON(ctx context.Context, addr string) {
	bodies := hostileBodies()
	reqs := make([][]byte, len(bodies))
	for i, b := range bodies {
		reqs[i] = hostileRequest(b, a.secret)
	}
	c := newHTTPConn(addr, 30*time.Second)
	defer c.close()
	t := time.NewTicker(time.Duration(float64(time.Second) / a.jsonRate))
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		code, _, err := c.do(reqs[i%len(reqs)])
		key := strconv.Itoa(code)
		if err != nil {
			key = "error"
		}
		a.mu.Lock()
		a.answers[key]++
		a.mu.Unlock()
	}
}

// hostileBodies are authentic deliveries a parser can choke on: arrays nested nestedDepth
// deep where the event's data should be, and an id that is a number of numberDigits digits.
// Neither can be normalized, so both are quarantined.
func hostileBodies() [][]byte {
	nested := `{"event":"post.published","id":"evt_nested","data":` + strings.Repeat("[", nestedDepth) +
		strings.Repeat("]", nestedDepth) + `}`
	number := `{"event":"post.published","id":` + strings.Repeat("9", numberDigits) + `e999999999}`
	return [][]byte{[]byte(nested), []byte(number)}
}

func hostileRequest(body, secret []byte) []byte {
	return wire("/webhooks/"+hostileSource, [][2]string{
		{"Content-Type", "application/json"},
		{"X-CodivUpload-Event", event.PostPublished},
		{"X-CodivUpload-Signature", sign(secret, body)},
	}, body)
}

// result sums the attack up; calm and hostile are the valid stream's phases without and
// with it.
func (a *attack) result(minHeld int64, calm, hostile Phase) *Attack {
	a.mu.Lock()
	defer a.mu.Unlock()
	res := &Attack{
		Idle: a.idle, Slowloris: a.slow, JSONPerSec: a.jsonRate, MinHeld: minHeld,
		Dials: a.dials.Load(), Refused: a.refused.Load(), JSONAnswers: a.answers,
		NestedDepth: nestedDepth, NumberDigits: numberDigits, OpenFileLimit: openFileLimit(),
		ValidP99Calm: calm.Latency.P99, ValidP99Hostile: hostile.Latency.P99,
	}
	if calm.Latency.P99 > 0 {
		res.ValidToCalmP99 = hostile.Latency.P99 / calm.Latency.P99
	}
	for k, n := range hostile.Answers {
		if k != "200 accepted" && k != "200 duplicate" {
			res.ValidNon200 += n
		}
	}
	res.ValidNon200 += hostile.Late
	return res
}

// watchHeld returns the fewest connections the attack held while ctx lasted.
func (a *attack) watchHeld(ctx context.Context) func() int64 {
	low := atomic.Int64{}
	low.Store(a.held.Load())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if h := a.held.Load(); h < low.Load() {
					low.Store(h)
				}
			}
		}
	}()
	return func() int64 { <-done; return low.Load() }
}

// checkFileLimit fails when this process cannot hold n connections besides its own files.
func checkFileLimit(n int) error {
	if l := openFileLimit(); l != 0 && l < uint64(n)+256 {
		return fmt.Errorf("the hostile phase holds %d connections but ulimit -n is %d: raise it (ulimit -n %d)", n, l, n+1024)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
