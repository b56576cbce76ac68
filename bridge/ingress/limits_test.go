package ingress_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/ingress"
)

// sized returns a signed codivupload delivery of exactly n bytes (n ≥ 100).
func sized(id string, n int) string {
	head := `{"event":"post.published","id":"` + id + `","data":{"post_id":"p1","platform":"x"},"padding":"`
	return head + strings.Repeat("p", n-len(head)-2) + `"}`
}

// request is a raw POST of body to the codivupload route, with a Content-Length or chunked
// (in chunks of 16 KiB).
func request(body string, chunked bool) string {
	head := "POST /webhooks/codivupload HTTP/1.1\r\nHost: x\r\n" + signed(body)
	if !chunked {
		return head + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	var b strings.Builder
	for rest := body; rest != ""; {
		part := rest[:min(len(rest), 16<<10)]
		rest = rest[len(part):]
		b.WriteString(strconv.FormatInt(int64(len(part)), 16) + "\r\n" + part + "\r\n")
	}
	return head + "Transfer-Encoding: chunked\r\n\r\n" + b.String() + "0\r\n\r\n"
}

// ask writes raw to a new connection and reads one answer, leaving the connection open.
func ask(t *testing.T, addr, raw string) rawAnswer {
	t.Helper()
	c := dial(t, addr)
	io.WriteString(c, raw) // the server may close early; its answer says why
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return rawAnswer{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return rawAnswer{resp: resp, body: body, err: err}
}

// TestBodyLimitEdges: a body of exactly http.max_body_bytes is accepted and one byte more is
// refused 413 (closing the connection), whether it comes with a Content-Length or chunked,
// and every byte reserved for them is free again once they are answered. The limit, 40,000,
// is no multiple of the 16 KiB chunks bodies are read in.
func TestBodyLimitEdges(t *testing.T) {
	const limit = 40000
	s := serve(t, func(o *ingress.Options) { o.MaxBodyBytes = limit })
	for _, chunked := range []bool{false, true} {
		a := ask(t, s.addr, request(sized("evt_edge_"+strconv.FormatBool(chunked), limit), chunked))
		if a.err != nil || a.resp.StatusCode != 200 {
			t.Fatalf("chunked %v, a body of exactly max_body_bytes: %+v %s; want 200", chunked, a, a.body)
		}
		a = exchange(t, s.addr, request(sized("evt_over", limit+1), chunked))
		if a.err != nil || a.resp.StatusCode != 413 || !a.closed {
			t.Fatalf("chunked %v, a body one byte over max_body_bytes: %+v %s; want 413, closed", chunked, a, a.body)
		}
	}
	if m := s.metricsText(t); !strings.Contains(m, "bridge_body_bytes_in_flight 0\n") {
		t.Fatalf("bytes still reserved after every body was answered:\n%s", m)
	}
}

// TestBodyBudgetEdges: a body is admitted when the bytes it reserves fit in
// http.max_body_bytes_in_flight, to the byte, and refused 503 with Retry-After when they do
// not and there is nothing to shed. A body of at most 8 KiB (fasthttp's first read) reserves
// nothing, so no budget refuses it; a body of at most one 16 KiB chunk reserves its length;
// a longer one, whole 16 KiB chunks while it is read (none past its Content-Length).
func TestBodyBudgetEdges(t *testing.T) {
	for _, c := range []struct {
		budget int64
		size   int
		want   int
	}{
		{4096, 8 << 10, 200},        // reserves nothing
		{4096, 8<<10 + 1, 503},      // reserves its 8,193 bytes
		{12000, 12000, 200},         // reserves its length, exactly the budget
		{12000, 12001, 503},         // one byte past it
		{32 << 10, 32 << 10, 200},   // two whole chunks, no third
		{32 << 10, 32<<10 + 1, 503}, // a third chunk
	} {
		s := serve(t, func(o *ingress.Options) { o.MaxBodyBytesInFlight = c.budget })
		a := ask(t, s.addr, request(sized("evt_budget", c.size), false))
		if a.err != nil || a.resp.StatusCode != c.want {
			t.Fatalf("a body of %d bytes, budget %d: %+v %s; want %d", c.size, c.budget, a, a.body, c.want)
		}
		if c.want == 503 && (a.resp.Header.Get("Retry-After") == "" || !strings.Contains(string(a.body), "max_body_bytes_in_flight")) {
			t.Fatalf("a body of %d bytes, budget %d: %v %s; want Retry-After, naming the cap", c.size, c.budget, a.resp.Header, a.body)
		}
		if m := s.metricsText(t); !strings.Contains(m, "bridge_body_bytes_in_flight 0\n") {
			t.Fatalf("a body of %d bytes, budget %d: bytes still reserved after its answer:\n%s", c.size, c.budget, m)
		}
	}
}

// TestHeldBodyHoldsItsLength: while a delivery is being handled, its body holds exactly its
// length of the budget (its chunks, reserved whole while it was read, shrink to the one
// buffer it is copied into), and one request in flight; both are free after the answer.
func TestHeldBodyHoldsItsLength(t *testing.T) {
	p := &heldProducer{got: make(chan *kgo.Record, 1), release: make(chan struct{})}
	s := serve(t, func(o *ingress.Options) { o.Producer = p })
	release := sync.OnceFunc(func() { close(p.release) })
	t.Cleanup(release) // before the server's shutdown, which waits for the delivery
	const size = 40000 // three chunks while it is read
	answer := make(chan rawAnswer, 1)
	go func() { answer <- ask(t, s.addr, request(sized("evt_held", size), false)) }()
	<-p.got // the delivery waits for Kafka, its body in hand
	m := s.metricsText(t)
	if !strings.Contains(m, "bridge_body_bytes_in_flight 40000\n") || !strings.Contains(m, "bridge_requests_in_flight 1\n") {
		t.Fatalf("a %d-byte delivery being handled: want 40000 bytes and 1 request in flight:\n%s", size, m)
	}
	release()
	if a := <-answer; a.err != nil || a.resp.StatusCode != 200 {
		t.Fatalf("the held delivery: %+v", a)
	}
	m = s.metricsText(t)
	if !strings.Contains(m, "bridge_body_bytes_in_flight 0\n") || !strings.Contains(m, "bridge_requests_in_flight 0\n") {
		t.Fatalf("after its answer: want nothing in flight:\n%s", m)
	}
}

// TestBodyShorterThanItsLength: a body that ends (the client closing its side) before its
// Content-Length is answered 400, whether it fits in one chunk or not, never taken as a
// delivery of what arrived.
func TestBodyShorterThanItsLength(t *testing.T) {
	s := serve(t, nil)
	for _, size := range []int{12000, 40000} {
		raw := request(sized("evt_short", size), false)
		c := dial(t, s.addr)
		io.WriteString(c, raw[:len(raw)-size/2])
		c.(*net.TCPConn).CloseWrite()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 400 {
			t.Fatalf("a body of %d bytes of its %d: %v, %v; want 400", size/2, size, resp, err)
		}
	}
}
