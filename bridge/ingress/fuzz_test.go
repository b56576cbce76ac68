package ingress_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/bridge/producer"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/internal/sender"
	"github.com/socialbridge/bridge/schemas"
)

// FuzzRequest writes raw bytes to a connection of the ingress, as any client may, and holds
// the request path to its contract whatever they are: no panic (it would end the test
// binary); an answer, or the connection closed, within a bound; only the documented status
// codes (200, 202, 503, and 4xx for what the client got wrong; never a 500, which means a
// bug); a JSON answer with a status field on /webhooks/ (but a handshake's); and the memory a
// request allocates growing with its size alone. Records go to a discarding producer: this is about HTTP.
// Seeds: every preset's simulated deliveries (providers.Names(), one source each), plus
// requests on the edges of HTTP and the providers' samples in testdata/fuzz/.
//
//	go test -run '^$' -fuzz '^FuzzRequest$' -fuzztime 1m ./bridge/ingress/   (or make fuzz)
func FuzzRequest(f *testing.F) {
	addr, deliveries := fuzzServer(f)
	for _, d := range deliveries {
		f.Add(d)
	}
	for _, raw := range edgeRequests {
		f.Add([]byte(raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var a fuzzAnswer
		n, bytes := allocatedBy(func() { a = sendRaw(t, addr, raw) })
		checkAnswer(t, raw, a)
		maxN, maxBytes := uint64(requestAllocs+len(raw)/2), uint64(requestAllocBase+requestAllocPerByte*len(raw))
		if n > maxN || bytes > maxBytes {
			t.Fatalf("%d allocations, %d bytes for a %d-byte request; want at most %d and %d", n, bytes, len(raw), maxN, maxBytes)
		}
	})
}

// Bounds on what one exchange may allocate, client and server together: a constant (a
// connection's buffers, the answer; /metrics, the most, gathers the runtime's metrics), plus
// a multiple of the request's size (for the count, as the presets' fuzz targets allow).
const (
	requestAllocBase    = 1 << 20
	requestAllocPerByte = 32
	requestAllocs       = 4096
)

// fuzzNow is the clock of the server, the time the seeds are signed at.
var fuzzNow = time.Date(2026, 5, 8, 14, 0, 42, 0, time.UTC)

// fuzzSettings are the settings of the presets that need some.
var fuzzSettings = map[string]providers.Settings{
	"meta": {VerifyToken: "fuzz-verify-token"},
	"hmac": {HMAC: &providers.HMACScheme{
		Header: "X-Hub-Signature-256", Prefix: "sha256=", ID: "header:X-GitHub-Delivery", Type: "header:X-GitHub-Event",
		Data: "json:data", Types: map[string]string{"push": "post.published", "ping": "ignore"},
	}},
}

// fuzzSecrets are tried in turn for each preset; its source uses the first its Key accepts.
var fuzzSecrets = []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "cdv_whsec_3b9c1f7a2e5d8b6c4a1f0e9d8c7b6a5f"}

// fuzzServer serves the ingress on a loopback port with a source named after each preset,
// and returns its address and each preset's simulated deliveries as raw requests.
func fuzzServer(f testing.TB) (string, [][]byte) {
	var sources []ingress.Source
	var deliveries [][]byte
	for _, name := range providers.Names() {
		p, err := providers.New(name, fuzzSettings[name])
		if err != nil {
			f.Fatalf("%s: %v (give it settings in fuzzSettings)", name, err)
		}
		for _, secret := range fuzzSecrets {
			key, err := p.Key(secret)
			if err != nil {
				continue
			}
			sources = append(sources, ingress.Source{Name: name, Provider: name, Preset: p, Keys: []*providers.Key{key}})
			deliveries = append(deliveries, simulated(name, p, secret)...)
			break
		}
	}
	enc, err := schemas.NewSingleObject()
	if err != nil {
		f.Fatal(err)
	}
	srv := ingress.New(ingress.Options{
		Sources: sources, TopicPrefix: "social.", MaxBodyBytes: 64 << 10,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, IdleTimeout: 2 * time.Second,
		DedupWait: time.Second, Encoder: enc, Producer: &producer.Discard{}, Dedup: dedup.New(time.Hour, 10_000, dedup.Options{}),
		Metrics: ingress.NewMetrics(), Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return fuzzNow },
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	go func() { _ = srv.Serve(ln, nil) }()
	f.Cleanup(func() { _ = srv.App().Shutdown() })
	return ln.Addr().String(), deliveries
}

// simulated renders the deliveries of every type p sends as raw HTTP requests; a polled
// preset's are not requests.
func simulated(name string, p providers.Preset, secret string) [][]byte {
	sim, ok := p.(providers.Simulator)
	if _, polled := p.(providers.Poller); !ok || polled {
		return nil
	}
	var out [][]byte
	for i, typ := range sim.Types() {
		d, err := sim.Deliver(sender.SampleEvent(typ, fmt.Sprintf("evt_fuzz_%d", i), fuzzNow, i), secret, fuzzNow)
		if err != nil {
			continue
		}
		var b bytes.Buffer
		fmt.Fprintf(&b, "POST /webhooks/%s%s HTTP/1.1\r\nHost: bridge\r\nContent-Length: %d\r\n", name, d.Path, len(d.Body))
		_ = d.Header.Write(&b)
		b.WriteString("\r\n")
		b.Write(d.Body)
		out = append(out, b.Bytes())
	}
	return out
}

// edgeRequests are requests on the edges of HTTP/1.1 and of the routes.
var edgeRequests = []string{
	"",
	"\r\n\r\n",
	"GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n",
	"GET /readyz HTTP/1.1\r\nHost: b\r\n\r\n",
	"GET /metrics HTTP/1.1\r\nHost: b\r\n\r\n",
	"HEAD /webhooks/codivupload HTTP/1.1\r\nHost: b\r\n\r\n",
	"GET /webhooks/codivupload HTTP/1.0\r\n\r\n",
	"GET /webhooks/meta?hub.mode=subscribe&hub.verify_token=fuzz-verify-token&hub.challenge=1158201444 HTTP/1.1\r\nHost: b\r\n\r\n",
	"GET /webhooks/meta?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1158201444 HTTP/1.1\r\nHost: b\r\n\r\n",
	"GET /webhooks/x?crc_token=challenge_string HTTP/1.1\r\nHost: b\r\n\r\n",
	"POST /webhooks/postiz/not-the-token HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]",
	"POST /webhooks/codivupload/a-token HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
	"DELETE /webhooks/nope HTTP/1.1\r\nHost: b\r\n\r\n",
	"FOO /webhooks/codivupload HTTP/1.1\r\nHost: b\r\n\r\n",
	"post /webhooks/codivupload HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n",
	"POST /webhooks/codivupload HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
	"POST /webhooks/codivupload HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{}",
	"POST /webhooks/codivupload HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}",
	"POST /webhooks/codivupload HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n{}",
	"POST /webhooks/codivupload HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
	"POST /webhooks/codivupload HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
	"POST /webhooks/codivupload HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}",
	"POST /webhooks/codivupload HTTP/1.1\r\nHost: b\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
	"POST /webhooks/codivupload HTTP/1.1\r\nHost: b\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}",
	"POST /webhooks/%ff%00 HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n",
	"POST /webhooks/codivupload/../../metrics HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n",
	"POST http://evil/webhooks/codivupload HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n",
	"POST /webhooks/codivupload HTTP/1.1\r\nHost: b\r\nX-Long: " + strings.Repeat("a", 20000) + "\r\n\r\n",
	"POST /webhooks/codivupload HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}" +
		"POST /webhooks/codivupload HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n",
	"GET / HTTP/9.9\r\n\r\n",
	"\x00\x01\x02\xff",
}

// fuzzAnswer is the first answer to a raw request, if any came.
type fuzzAnswer struct {
	resp *http.Response
	body []byte
	err  error // why no answer could be read; io.EOF: the server closed without one
}

// sendRaw writes raw, half-closes, and reads the first answer (after any 1xx), within a
// bound: an answer or a close must come.
func sendRaw(t *testing.T, addr string, raw []byte) fuzzAnswer {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		_, _ = conn.Write(raw)
		_ = conn.(*net.TCPConn).CloseWrite()
	}()
	br := bufio.NewReader(conn)
	req := &http.Request{Method: requestMethod(raw)}
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF // closed without a whole answer: nothing was answered
			}
			return fuzzAnswer{err: err}
		}
		body, err := io.ReadAll(resp.Body)
		if resp.StatusCode >= 200 {
			return fuzzAnswer{resp: resp, body: body, err: err}
		}
	}
}

// requestMethod is the request's method as a server reads it, for knowing whether its answer has a
// body.
func requestMethod(raw []byte) string {
	m, _, _ := bytes.Cut(raw, []byte(" "))
	return string(m)
}

// checkAnswer checks the answer to raw against the contract.
func checkAnswer(t *testing.T, raw []byte, a fuzzAnswer) {
	t.Helper()
	var ne net.Error
	switch {
	case errors.Is(a.err, io.EOF) || errors.Is(a.err, net.ErrClosed):
		return // nothing was answered: the request never ended, or the server had nothing to answer
	case errors.As(a.err, &ne) && ne.Timeout():
		t.Fatalf("no answer and no close within 10 s")
	case a.err != nil && a.resp == nil:
		t.Fatalf("the answer is not HTTP: %v", a.err)
	}
	code := a.resp.StatusCode
	if code != 200 && code != 202 && code != 503 && (code < 400 || code >= 500) {
		t.Fatalf("answered %d %q: not a documented status", code, a.body)
	}
	path, method := requestPath(raw), requestMethod(raw)
	switch {
	case method == "HEAD" || !strings.HasPrefix(path, "/webhooks/"):
		return
	case method == "GET" && code == 200:
		return // a handshake's answer, in the provider's own shape (Meta's challenge, X's CRC)
	}
	var answer struct{ Status string }
	if err := json.Unmarshal(a.body, &answer); err != nil || answer.Status == "" {
		t.Fatalf("answered %d to %s with %q: not JSON with a status field", code, path, a.body)
	}
}

// requestPath is the path of the request line of raw, "" if it has none.
func requestPath(raw []byte) string {
	line, _, _ := bytes.Cut(raw, []byte("\r\n"))
	fields := strings.Fields(string(line))
	if len(fields) < 2 {
		return ""
	}
	return fields[1]
}

// allocatedBy returns the allocations and bytes of one call of f, once warm, the server's
// included: it measures the whole process.
func allocatedBy(f func()) (n, bytes uint64) {
	f()
	const runs = 2
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.Mallocs - before.Mallocs) / runs, (after.TotalAlloc - before.TotalAlloc) / runs
}

// TestRequestSeedsAnswered checks that the fuzz target's simulated deliveries are accepted
// as they are: the seeds reach the whole request path, not just its refusals.
func TestRequestSeedsAnswered(t *testing.T) {
	addr, deliveries := fuzzServer(t)
	if len(deliveries) == 0 {
		t.Fatal("no simulated deliveries")
	}
	for _, d := range deliveries {
		a := sendRaw(t, addr, d)
		if a.resp == nil || a.resp.StatusCode != 200 {
			t.Errorf("%s: answered %v %q", requestPath(d), a.err, a.body)
		}
	}
}
