package ingress_test

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/internal/testkit"
)

// heldProducer keeps each record until the test lets it go.
type heldProducer struct {
	got     chan *kgo.Record
	release chan struct{}
}

func (p *heldProducer) Produce(rec *kgo.Record, settle func(error)) error {
	p.got <- rec
	<-p.release
	settle(nil)
	return nil
}

func post(addr, body string) (*http.Response, []byte, error) {
	req, _ := http.NewRequest("POST", "http://"+addr+"/webhooks/codivupload", strings.NewReader(body))
	for k, v := range signedHeaders(body) {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func signedHeaders(body string) map[string]string {
	h := map[string]string{}
	for line := range strings.Lines(signed(body)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
		h[k] = v
	}
	return h
}

// TestRequestsInFlightCap: past http.max_requests_in_flight a delivery is answered 503 with
// Retry-After at once, and the one in flight is still accepted.
func TestRequestsInFlightCap(t *testing.T) {
	p := &heldProducer{got: make(chan *kgo.Record, 1), release: make(chan struct{})}
	s := serve(t, func(o *ingress.Options) { o.Producer, o.MaxRequestsInFlight = p, 1 })
	first := make(chan int, 1)
	go func() {
		resp, _, err := post(s.addr, delivery("evt_first"))
		if err != nil {
			first <- 0
			return
		}
		first <- resp.StatusCode
	}()
	<-p.got // the first delivery waits for Kafka
	resp, body, err := post(s.addr, delivery("evt_second"))
	if err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "max_requests_in_flight") {
		t.Fatalf("past the cap: %v %v %s, %v; want 503 with Retry-After naming the cap", resp.StatusCode, resp.Header, body, err)
	}
	close(p.release)
	if code := <-first; code != 200 {
		t.Fatalf("the delivery in flight was answered %d", code)
	}
}

// TestSlowUploadShed: with the body budget taken by a slow upload, a delivery sent at once
// sheds it (503 with Retry-After, its connection closed) and is accepted.
func TestSlowUploadShed(t *testing.T) {
	s := serve(t, func(o *ingress.Options) { o.MaxBodyBytesInFlight = 64 << 10 })
	slow := dial(t, s.addr)
	size := 64 << 10
	head := "POST /webhooks/codivupload HTTP/1.1\r\nHost: x\r\n" + signed("{}") + "Content-Length: " + strconv.Itoa(size) + "\r\n\r\n"
	if _, err := io.WriteString(slow, head+strings.Repeat(" ", 48<<10)); err != nil { // 48 KiB of it, then nothing
		t.Fatal(err)
	}
	// The slow upload must hold the whole budget before the fast one comes: on a loaded
	// machine its handler may not have begun reading yet, and then the fast one passes
	// without shedding anything and the slow one simply times out.
	testkit.Eventually(t, time.Minute, "the slow upload holds the budget", func() bool {
		return strings.Contains(s.metricsText(t), "bridge_body_bytes_in_flight 65536\n")
	}, func() string { return s.metricsText(t) })
	var once sync.Once
	shed := make(chan *http.Response, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
		if err == nil {
			shed <- resp
		}
		once.Do(func() { close(shed) })
	}()
	big := `{"event":"post.published","id":"evt_fast","data":{"post_id":"p1","platform":"x"},"padding":"` + strings.Repeat("p", 40<<10) + `"}`
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, body, err := post(s.addr, big)
		if err == nil && resp.StatusCode == 200 {
			break
		}
		if err != nil || resp.StatusCode != 503 || time.Now().After(deadline) {
			t.Fatalf("the delivery beside the slow upload: %v %s, %v", resp, body, err)
		}
		time.Sleep(100 * time.Millisecond) // the slow upload is not yet old enough to shed
	}
	resp, ok := <-shed
	if !ok || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !resp.Close {
		t.Fatalf("the slow upload was answered %v; want 503 with Retry-After, closing", resp)
	}
}

// TestChunkedBodyOverTheLimit: a chunked body is bounded as one with a Content-Length.
func TestChunkedBodyOverTheLimit(t *testing.T) {
	s := serve(t, nil)
	chunk := strings.Repeat("x", 16<<10)
	var b strings.Builder
	for range 5 { // 80 KiB, over the 64 KiB limit
		b.WriteString(strconv.FormatInt(int64(len(chunk)), 16) + "\r\n" + chunk + "\r\n")
	}
	b.WriteString("0\r\n\r\n")
	a := exchange(t, s.addr, "POST /webhooks/codivupload HTTP/1.1\r\nHost: x\r\n"+signed("{}")+"Transfer-Encoding: chunked\r\n\r\n"+b.String())
	if a.err != nil || a.resp.StatusCode != 413 || !a.closed {
		t.Fatalf("a chunked body over the limit: %+v; want 413, closed", a)
	}
}

// TestBodyOfAnotherRoute: a body no handler reads is never taken for the next request on
// the connection.
func TestBodyOfAnotherRoute(t *testing.T) {
	s := serve(t, nil)
	c := dial(t, s.addr)
	body := strings.Repeat("GET /nope HTTP/1.1\r\n\r\n", 2000) // 44 KB that would parse as requests
	io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body+
		"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	for i := 0; ; i++ {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			if i == 0 {
				t.Fatalf("no answer: %v", err)
			}
			return // closed after the answer: fine
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("answer %d: %d; the body was read as a request", i, resp.StatusCode)
		}
		if i == 1 {
			return
		}
	}
}

// TestRefusalsWarnedOnce: refusals past the caps are warned about at most once a warnEvery,
// counting those since the last warning: the first refusal warns (1), the next ones within
// the minute do not.
func TestRefusalsWarnedOnce(t *testing.T) {
	p := &heldProducer{got: make(chan *kgo.Record, 1), release: make(chan struct{})}
	s := serve(t, func(o *ingress.Options) { o.Producer, o.MaxRequestsInFlight = p, 1 })
	first := make(chan error, 1)
	go func() {
		_, _, err := post(s.addr, delivery("evt_first"))
		first <- err
	}()
	<-p.got // the first delivery waits for Kafka
	for i := range 3 {
		resp, body, err := post(s.addr, delivery("evt_refused"+strconv.Itoa(i)))
		if err != nil || resp.StatusCode != 503 {
			t.Fatalf("refusal %d: %v %s, %v; want 503", i, resp, body, err)
		}
	}
	close(p.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	var warnings []string
	for line := range strings.Lines(s.logs.String()) {
		if strings.Contains(line, "refusing requests past the ingress's caps") {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "refused=1 ") {
		t.Fatalf("warnings about 3 refusals within a minute: %q, want one counting 1", warnings)
	}
}
