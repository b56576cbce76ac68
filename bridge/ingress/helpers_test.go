package ingress_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/bridge/producer"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/internal/testkit"
	"github.com/socialbridge/bridge/schemas"
)

const secret = "cdv_whsec_3b9c1f7a2e5d8b6c4a1f0e9d8c7b6a5f"

// server is an ingress under test: the whole request path with records discarded, since
// these tests are about HTTP, and its log and metrics for inspection.
type server struct {
	addr    string
	logs    *testkit.LogBuffer
	metrics *ingress.Metrics
	srv     *ingress.Server
}

func serve(t *testing.T, change func(*ingress.Options)) *server {
	t.Helper()
	return serveOn(t, nil, change)
}

// serveOn is serve over TLS with tlsConfig (nil: plain HTTP).
func serveOn(t *testing.T, tlsConfig *tls.Config, change func(*ingress.Options)) *server {
	t.Helper()
	preset, _ := providers.Lookup("codivupload")
	key, err := preset.Key(secret)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := schemas.NewSingleObject()
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.LogBuffer{}
	o := ingress.Options{
		Sources:        []ingress.Source{{Name: "codivupload", Provider: "codivupload", Preset: preset, Keys: []*providers.Key{key}}},
		TopicPrefix:    "social.",
		MaxBodyBytes:   64 << 10,
		MaxHeaderBytes: 32 << 10,
		ReadTimeout:    10 * time.Second,
		WriteTimeout:   10 * time.Second,
		IdleTimeout:    10 * time.Second,
		DedupWait:      time.Second,
		Encoder:        enc,
		Producer:       &producer.Discard{},
		Dedup:          dedup.New(time.Hour, 1000, dedup.Options{}),
		Metrics:        ingress.NewMetrics(),
		Log:            slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if change != nil {
		change(&o)
	}
	srv := ingress.New(o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln, tlsConfig)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ingress log:\n%s", logs.String())
		}
	})
	return &server{addr: ln.Addr().String(), logs: logs, metrics: o.Metrics, srv: srv}
}

const urlToken = "tok_0123456789abcdef0123"

// postizSource is a source of the postiz preset, authenticated by urlToken: its deliveries
// are lists of posts, each an event of its own.
func postizSource(t *testing.T) ingress.Source {
	t.Helper()
	preset, _ := providers.Lookup("postiz")
	key, err := preset.Key(urlToken)
	if err != nil {
		t.Fatal(err)
	}
	return ingress.Source{Name: "postiz", Provider: "postiz", Preset: preset, Keys: []*providers.Key{key}}
}

// hubSettings configure the hmac preset as GitHub signs: the event id and type come from
// headers the signature does not cover, so its deliveries are deduplicated on a digest of
// what is signed; "ping" is ignored. hubIDSigned signs the same way with the id and type in
// the signed body: deduplicated on the event id.
var (
	hubSettings = fuzzSettings["hmac"]
	hubIDSigned = providers.Settings{HMAC: &providers.HMACScheme{
		Header: "X-Hub-Signature-256", Prefix: "sha256=", ID: "json:id", Type: "json:type", Data: "json:data",
	}}
)

// hmacSource is a source named name of the hmac preset configured by settings, signed with
// secret.
func hmacSource(t *testing.T, name string, settings providers.Settings) ingress.Source {
	t.Helper()
	preset, err := providers.New("hmac", settings)
	if err != nil {
		t.Fatal(err)
	}
	key, err := preset.Key(secret)
	if err != nil {
		t.Fatal(err)
	}
	return ingress.Source{Name: name, Provider: "hmac", Preset: preset, Keys: []*providers.Key{key}}
}

// hubHeaders are the headers of a delivery of body signed as hubSettings say, with the
// unsigned event type and delivery id given ("": left out). (The signature is
// CodivUpload's, the hex HMAC-SHA256 of the body, behind a prefix.)
func hubHeaders(eventType, deliveryID, body string) map[string]string {
	h := map[string]string{
		"X-Hub-Signature-256": "sha256=" + testkit.CodivHeaders(secret, eventType, []byte(body))["X-CodivUpload-Signature"],
	}
	if eventType != "" {
		h["X-GitHub-Event"] = eventType
	}
	if deliveryID != "" {
		h["X-GitHub-Delivery"] = deliveryID
	}
	return h
}

// signed returns the headers of a signed codivupload delivery of body, as raw header lines.
func signed(body string) string {
	var b strings.Builder
	for k, v := range testkit.CodivHeaders(secret, "post.published", []byte(body)) {
		b.WriteString(k + ": " + v + "\r\n")
	}
	return b.String()
}

// postTo posts body to path (/webhooks/…) with the headers h, and returns the answer's
// status and body.
func postTo(t *testing.T, addr, path string, h map[string]string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(got)
}

func delivery(id string) string {
	return `{"event":"post.published","id":"` + id + `","data":{"post_id":"p1","platform":"x"}}`
}

// rawAnswer is what came back on a raw connection: the answer, if any, and whether the
// server closed the connection after it.
type rawAnswer struct {
	resp   *http.Response
	body   []byte
	closed bool
	err    error
}

// exchange writes raw to a new connection and reads one answer.
func exchange(t *testing.T, addr string, raw string) rawAnswer {
	t.Helper()
	c := dial(t, addr)
	io.WriteString(c, raw) // the server may close early; its answer says why
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return rawAnswer{err: err}
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	a := rawAnswer{resp: resp, body: body, err: err}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, rerr := br.ReadByte()
	a.closed = rerr != nil
	return a
}

// metric returns the metrics text of srv.
func (s *server) metricsText(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + s.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// headerLines returns n header lines name-000: fill … as raw header lines.
func headerLines(n int, name, fill string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s-%03d: %s\r\n", name, i, fill)
	}
	return b.String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}
