package ingress_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// marker is in every faulty request: no answer and no log line may repeat it, since
// fasthttp's error texts quote the request's bytes.
const marker = "MARKER-7f3a9c"

// TestClientFaultsAreClientFaults sends requests that break HTTP itself. Each is a fault of
// the client: answered with its 4xx in JSON without echoing the request, counted under that
// code, and never logged as an error of the bridge.
func TestClientFaultsAreClientFaults(t *testing.T) {
	srv := serve(t, func(o *ingress.Options) { o.ReadTimeout = time.Second })
	head := "POST /webhooks/codivupload HTTP/1.1\r\nHost: " + marker + "\r\n"
	cases := []struct {
		name string
		raw  string // all that is sent: the timeouts get no more
		code int
	}{
		{"headers over the buffer", head + headerLines(1000, "X-"+marker, strings.Repeat("h", 60)) + "\r\n", 431},
		{"malformed content-length", head + "Content-Length: 12" + marker + "\r\n\r\n{}", 400},
		{"malformed chunk size", head + "Transfer-Encoding: chunked\r\n\r\nzz" + marker + "\r\n", 400},
		{"headers slower than read_timeout", head + "X-Slow: " + marker, 408},
		{"body slower than read_timeout", head + "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"" + marker, 408},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := exchange(t, srv.addr, c.raw)
			if a.err != nil {
				t.Fatalf("no answer: %v", a.err)
			}
			if a.resp.StatusCode != c.code {
				t.Errorf("answered %d %s, want %d", a.resp.StatusCode, a.body, c.code)
			}
			var m map[string]any
			if err := json.Unmarshal(a.body, &m); err != nil || m["status"] == nil {
				t.Errorf("answer %q is not JSON with a status", a.body)
			}
			if bytes.Contains(a.body, []byte(marker)) {
				t.Errorf("the answer echoes the request: %s", a.body)
			}
			if !a.closed {
				t.Errorf("the connection stayed open after a broken request")
			}
		})
	}
	metrics := srv.metricsText(t)
	for _, code := range []string{"400", "408", "431"} {
		if !strings.Contains(metrics, `bridge_requests_total{code="`+code+`",source="unknown"}`) {
			t.Errorf("no bridge_requests_total with code %s", code)
		}
	}
	if strings.Contains(metrics, `code="500"`) {
		t.Errorf("client faults counted as 500")
	}
	logs := srv.logs.String()
	if strings.Contains(logs, "level=ERROR") || strings.Contains(logs, marker) {
		t.Errorf("client faults logged as errors, or with the request's bytes:\n%s", logs)
	}
}

// TestProviderSizedHeadersPass: 16 KiB of headers (proxies and providers add many) do not
// stop a delivery.
func TestProviderSizedHeadersPass(t *testing.T) {
	srv := serve(t, nil)
	body := delivery("evt_big_headers")
	extra := headerLines(16, "X-Forwarded-Extra", strings.Repeat("f", 1000))
	raw := "POST /webhooks/codivupload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + signed(body) + extra +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	a := exchange(t, srv.addr, raw)
	if a.err != nil || a.resp.StatusCode != 200 || !bytes.Contains(a.body, []byte(`"accepted"`)) {
		t.Fatalf("a delivery with %d bytes of headers: %v %s", len(extra), a.err, a.body)
	}
}

// TestIdleConnectionsCloseQuietly: a connection that sends nothing, first or between
// requests, is closed when its time is up without an answer nobody asked for.
func TestIdleConnectionsCloseQuietly(t *testing.T) {
	srv := serve(t, func(o *ingress.Options) { o.ReadTimeout, o.IdleTimeout = 500*time.Millisecond, 500*time.Millisecond })

	fresh := dial(t, srv.addr)
	if got := readAll(t, fresh); len(got) != 0 {
		t.Errorf("a connection that never sent a byte was answered %q", got)
	}

	kept := dial(t, srv.addr)
	body := delivery("evt_idle")
	io.WriteString(kept, "POST /webhooks/codivupload HTTP/1.1\r\nHost: x\r\n"+signed(body)+
		"Content-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	br := bufio.NewReader(kept)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first request: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	if got, _ := io.ReadAll(br); len(got) != 0 {
		t.Errorf("an idle keep-alive connection was sent %q", got)
	}
	if strings.Contains(srv.metricsText(t), `code="408"`) || strings.Contains(srv.logs.String(), "level=ERROR") {
		t.Errorf("idle connections counted or logged as failed requests")
	}
}

// TestTooLargeIsReadByNetHTTP: Go's own client, sending a body over the limit, reads the 413
// instead of failing to write the rest of its body. Many times, for the race between the
// answer and the connection's close to show.
func TestTooLargeIsReadByNetHTTP(t *testing.T) {
	srv := serve(t, func(o *ingress.Options) { o.MaxBodyBytes = 1 << 20 })
	big := bytes.Repeat([]byte("x"), 3<<20)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, declared := range []bool{true, false} {
		for i := range 40 {
			var body io.Reader = bytes.NewReader(big)
			if !declared {
				body = io.MultiReader(body) // no length: sent chunked
			}
			req, _ := http.NewRequest("POST", "http://"+srv.addr+"/webhooks/codivupload", body)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("declared length %v, attempt %d: %v", declared, i, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 413 || !bytes.Contains(b, []byte(`"status"`)) {
				t.Fatalf("declared length %v, attempt %d: %d %s", declared, i, resp.StatusCode, b)
			}
		}
	}
}

// readAll reads until the server closes c.
func readAll(t *testing.T, c net.Conn) []byte {
	t.Helper()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the server did not close the connection: %v (read %q)", err, b)
	}
	return b
}

// TestTLSListener: over TLS a delivery is accepted; a plain HTTP request to the TLS
// listener is told, in plain HTTP, that the endpoint is HTTPS only; bytes that are neither
// TLS nor HTTP get no answer; and a TLS connection is closed quietly when it sends nothing
// after its handshake, answered 408 when it sends half a request.
func TestTLSListener(t *testing.T) {
	ca := kafkatest.NewCA(t, "ingress test CA")
	certPEM, keyPEM := ca.Issue(t, "127.0.0.1")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := serveOn(t, &tls.Config{Certificates: []tls.Certificate{cert}}, func(o *ingress.Options) {
		o.ReadTimeout, o.IdleTimeout = 500*time.Millisecond, 500*time.Millisecond
	})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.PEM)
	secure := func() *tls.Conn {
		c := tls.Client(dial(t, srv.addr), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
		if err := c.Handshake(); err != nil {
			t.Fatal(err)
		}
		return c
	}

	c := secure()
	io.WriteString(c, request(delivery("evt_tls"), false))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("a delivery over TLS: %v %v", resp, err)
	}

	a := exchange(t, srv.addr, request(delivery("evt_plain"), false))
	if a.err != nil || a.resp.StatusCode != 400 || !strings.Contains(string(a.body), "HTTPS only") || !a.closed {
		t.Errorf("plain HTTP to the TLS listener: %v %s (closed %v), want 400 HTTPS only, closed", a.err, a.body, a.closed)
	}
	other := dial(t, srv.addr)
	io.WriteString(other, "SSH-2.0-OpenSSH_9.6\r\n")
	if got := readAll(t, other); len(got) != 0 {
		t.Errorf("bytes neither TLS nor HTTP were answered %q", got)
	}

	if got, err := io.ReadAll(secure()); len(got) != 0 || err != nil {
		t.Errorf("a TLS connection that sent nothing was answered %q (%v), want a quiet close", got, err)
	}
	half := secure()
	io.WriteString(half, "POST /webhooks/codivupload HTTP/1.1\r\nHost: x\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(half), nil); err != nil || resp.StatusCode != 408 {
		t.Errorf("half a request over TLS: %v %v, want 408", resp, err)
	}
}
