package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// slowUploads is an unauthenticated attack on the bridge's memory: conns connections, each
// declaring a body of size bytes and sending it chunk bytes every tick, slower than the read
// timeout allows, with a signature that cannot verify. A connection the bridge closes (or
// that ends its body) is opened again, so the attack keeps conns uploads going.
type slowUploads struct {
	conns       int
	size, chunk int
	tick        time.Duration

	open    atomic.Int64 // connections open now
	dials   atomic.Int64
	sent    atomic.Int64 // body bytes written
	mu      sync.Mutex
	answers map[string]int // the first line of each answer read, or "closed" without one
}

// start runs the attack on addr until ctx ends; wait returns once every connection is
// closed. It returns when conns connections are open (or after 30 s, or when ctx ends).
func (s *slowUploads) start(ctx context.Context, addr string) (wait func()) {
	s.answers = map[string]int{}
	var wg sync.WaitGroup
	for i := range s.conns {
		wg.Go(func() { s.upload(ctx, addr, i) })
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.open.Load() < int64(s.conns) && ctx.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return wg.Wait
}

// upload keeps one slow upload going, opening another connection when the bridge ends one.
func (s *slowUploads) upload(ctx context.Context, addr string, i int) {
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/json\r\n"+
		"X-CodivUpload-Event: post.published\r\nX-CodivUpload-Signature: %s\r\nContent-Length: %d\r\n\r\n",
		webhookPath, strings.Repeat("0", 64), s.size)
	chunk := []byte(strings.Repeat("x", s.chunk))
	for n := 0; ctx.Err() == nil; n++ {
		if n > 0 || i%8 == 0 { // spread the dials of the first round
			sleepCtx(ctx, time.Duration(i%50)*time.Millisecond)
		}
		s.dials.Add(1)
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		s.open.Add(1)
		answered := make(chan string, 1)
		go func() { answered <- firstLine(c) }()
		s.trickle(ctx, c, head, chunk, answered)
		c.Close()
		s.count(<-answered)
		s.open.Add(-1)
	}
}

// trickle writes head, then the body a chunk a tick, until the body is sent, the bridge
// answers or closes, or ctx ends.
func (s *slowUploads) trickle(ctx context.Context, c net.Conn, head string, chunk []byte, answered chan string) {
	if _, err := io.WriteString(c, head); err != nil {
		return
	}
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for left := s.size; left > 0; {
		select {
		case <-ctx.Done():
			return
		case line := <-answered:
			answered <- line
			return
		case <-t.C:
		}
		n := min(left, len(chunk))
		_ = c.SetWriteDeadline(time.Now().Add(s.tick))
		if _, err := c.Write(chunk[:n]); err != nil {
			return
		}
		left -= n
		s.sent.Add(int64(n))
	}
}

// firstLine reads c's answer until the bridge closes c, and returns its status line.
func firstLine(c net.Conn) string {
	var buf [64]byte
	n, _ := io.ReadAtLeast(c, buf[:], 12)
	_, _ = io.Copy(io.Discard, c)
	if n == 0 {
		return "closed"
	}
	line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
	return line
}

func (s *slowUploads) count(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers[line]++
}
