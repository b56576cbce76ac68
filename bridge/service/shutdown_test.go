package service_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestGracefulShutdown shuts the bridge down while deliveries are in flight: their headers
// are read (the bridge has answered 100 Continue) but their bodies not yet sent. The
// shutdown must wait for them: each is answered 200 and is in Kafka exactly once.
func TestGracefulShutdown(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := testConfig(t, brokers)
	b := start(t, cfg)

	const n = 20
	inFlight := make([]*halfSent, n)
	for i := range n {
		inFlight[i] = beginDelivery(t, b.Addr(), fmt.Sprintf("evt_shutdown_%d", i))
	}
	done := make(chan error, 1)
	go func() { done <- b.stop(t) }()
	waitRefused(t, b.Addr())

	for _, d := range inFlight {
		if code, answer := d.finish(t); code != 200 || !strings.Contains(answer, `"accepted"`) {
			t.Errorf("%s, in flight when the shutdown began, answered %d %s", d.id, code, answer)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// http.drain_period 0 (testConfig) turns the drain off: the listener closes at once.
	if strings.Contains(b.logs.String(), "draining before shutdown") {
		t.Errorf("a drain with http.drain_period 0:\n%s", b.logs)
	}
	recs := readTopic(t, brokers, cfg.Kafka.TopicPrefix+"post.published")
	for _, d := range inFlight {
		if c := countKey(recs, d.id); c != 1 {
			t.Errorf("%s is in kafka %d times", d.id, c)
		}
	}
}

// halfSent is a delivery whose headers the bridge has read, waiting for its body.
type halfSent struct {
	id   string
	conn net.Conn
	r    *bufio.Reader
	body string
}

// beginDelivery sends the headers of a delivery with Expect: 100-continue and returns once
// the bridge has answered 100 Continue.
func beginDelivery(t *testing.T, addr, id string) *halfSent {
	t.Helper()
	h, body := codiv("post.published", id)
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	var req strings.Builder
	req.WriteString("POST /webhooks/codivupload HTTP/1.1\r\nHost: bridge\r\nExpect: 100-continue\r\n")
	for k, v := range h {
		req.WriteString(k + ": " + v + "\r\n")
	}
	req.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	if _, err := io.WriteString(c, req.String()); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("%s: want 100 Continue, got %q %v", id, line, err)
	}
	if blank, err := r.ReadString('\n'); err != nil || blank != "\r\n" {
		t.Fatalf("%s: after 100 Continue: %q %v", id, blank, err)
	}
	return &halfSent{id: id, conn: c, r: r, body: string(body)}
}

// finish sends the body and reads the answer.
func (d *halfSent) finish(t *testing.T) (int, string) {
	t.Helper()
	if _, err := io.WriteString(d.conn, d.body); err != nil {
		return 0, err.Error()
	}
	resp, err := http.ReadResponse(d.r, nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitRefused returns once addr refuses connections.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections 30s into the shutdown", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
