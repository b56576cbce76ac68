package main

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// outcome is how one delivery was answered. The zero value is a delivery never sent.
type outcome uint8

const (
	notSent     outcome = iota
	accepted            // 200 {"status":"accepted"}
	duplicate           // 200 {"status":"duplicate"}
	otherAnswer         // any other answer (503 when Kafka is slow); its code tells which
	sendError           // no answer: connection error or client timeout
)

// result is one delivery's answer and its latency: from the moment it was due (open loop:
// its place in the schedule, so time spent waiting behind a slow answer is counted; closed
// loop: its send) to the moment its answer was read.
type result struct {
	outcome outcome
	code    int16
	latency time.Duration
}

// schedule is how one phase sends: over conns connections (or concurrent producers), closed
// loop (rate 0: each sends again as soon as answered) or open loop at rate requests per
// second, for duration. An open-loop request still unsent grace after the end is dropped
// and counted late, so a phase is bounded in time even when the server falls behind.
type schedule struct {
	conns    int
	duration time.Duration
	rate     float64
	grace    time.Duration
}

// loadRun is what a phase sent and got.
type loadRun struct {
	schedule
	results []result // one per item, by index; notSent past what was sent
	elapsed time.Duration
	late    int
}

// sender sets up one connection's goroutine: send sends item i, due at due; done releases
// the connection when the phase is over.
type sender func() (send func(i int, due time.Time) result, done func())

// drive sends items 0..n-1 in order as s says, until all are sent or the phase is over, and
// returns every answer. In open loop, item i is due at start + i/rate whatever happened to
// the items before it, and its latency counts from then: a slow answer delays the sends
// behind it, and that delay is measured instead of omitted.
func drive(ctx context.Context, s schedule, n int, newSend sender) *loadRun {
	run := &loadRun{schedule: s, results: make([]result, n)}
	if s.rate > 0 {
		n = min(n, int(s.rate*s.duration.Seconds()))
	}
	var next, late atomic.Int64
	start := time.Now()
	end, hardEnd := start.Add(s.duration), start.Add(s.duration+s.grace)
	var wg sync.WaitGroup
	for range s.conns {
		wg.Go(func() {
			send, done := newSend()
			defer done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				due := time.Now()
				if s.rate > 0 {
					due = start.Add(time.Duration(float64(i) / s.rate * float64(time.Second)))
					if !sleepUntil(ctx, due) {
						return
					}
					if time.Now().After(hardEnd) {
						late.Add(1)
						continue
					}
				} else if due.After(end) {
					return
				}
				run.results[i] = send(i, due)
			}
		})
	}
	wg.Wait()
	run.elapsed, run.late = time.Since(start), int(late.Load())
	return run
}

// webhooks sends deliveries to the ingress at addr, one keep-alive connection per goroutine.
func webhooks(addr string, ds []delivery) sender {
	return func() (func(int, time.Time) result, func()) {
		c := newHTTPConn(addr, 30*time.Second)
		send := func(i int, due time.Time) result {
			code, body, err := c.do(ds[i].wire)
			lat := time.Since(due)
			if err != nil {
				return result{outcome: sendError, latency: lat}
			}
			return result{outcome: classify(code, body), code: int16(code), latency: lat}
		}
		return send, c.close
	}
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func classify(code int, body []byte) outcome {
	if code == http.StatusOK {
		switch string(status(body)) {
		case "accepted":
			return accepted
		case "duplicate":
			return duplicate
		}
	}
	return otherAnswer
}

// status returns the value of the answer's "status" member, without decoding the rest.
func status(body []byte) []byte {
	const member = `"status":"`
	i := bytes.Index(body, []byte(member))
	if i < 0 {
		return nil
	}
	v := body[i+len(member):]
	if j := bytes.IndexByte(v, '"'); j >= 0 {
		return v[:j]
	}
	return nil
}
