package providers_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
)

// The worked configurations of docs/providers.md, with GitHub's and Stripe's samples (testdata/hmac).
var (
	githubScheme = providers.HMACScheme{
		Header: "X-Hub-Signature-256", Prefix: "sha256=", Encoding: "hex", Signed: "{body}",
		ID: "header:X-GitHub-Delivery", Type: "header:X-GitHub-Event", Types: map[string]string{"ping": "ignore"},
	}
	stripeScheme = providers.HMACScheme{
		Header: "Stripe-Signature", Prefix: "v1=", Encoding: "hex", Signed: "{timestamp}.{body}",
		TimestampHeader: "Stripe-Signature", TimestampPrefix: "t=", Tolerance: 5 * time.Minute,
		ID: "json:id", Type: "json:type", Time: "json:created",
		Types: map[string]string{"payment_intent.succeeded": "post.published"},
	}
)

const (
	githubSecret = "It's a Secret to Everybody"
	stripeSecret = "whsec_5f1c0b2e8d4a4e6f9b7c3a1d2e4f6a8b"
)

var stripeNow = time.Unix(1767225600, 0)

func hmacPreset(t *testing.T, s providers.HMACScheme) providers.Signed {
	t.Helper()
	p, err := providers.New("hmac", providers.Settings{HMAC: &s})
	if err != nil {
		t.Fatal(err)
	}
	return p.(providers.Signed)
}

// TestHMACGitHub is GitHub's published known answer and its ping sample.
func TestHMACGitHub(t *testing.T) {
	p := hmacPreset(t, githubScheme)
	right := []*providers.Key{mustKey(t, p, githubSecret)}
	kat := headers{"X-Hub-Signature-256": []byte("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")}
	if err := p.Verify(kat, []byte("Hello, World!"), right, time.Time{}); err != nil {
		t.Fatalf("GitHub's known answer: %v", err)
	}
	body, h := sample(t, "hmac", "github_ping")
	const header = "X-Hub-Signature-256"
	for _, tc := range []struct {
		name   string
		h      headers
		body   []byte
		keys   []*providers.Key
		reason string
	}{
		{"ping", h, body, right, ""},
		{"wrong secret", h, body, []*providers.Key{mustKey(t, p, "It's a Secret to Nobody")}, "signature does not match"},
		{"body changed by one byte", h, bytes.Replace(body, []byte("awesome"), []byte("awesomE"), 1), right, "signature does not match"},
		{"signature made for another source", h.with(header, "sha256="+hexSig("another repository's secret", body)), body, right, "signature does not match"},
		{"missing header", h.with(header, "-"), body, right, "missing X-Hub-Signature-256 header"},
		{"only the sha1 signature", h.with(header, string(h.Peek("X-Hub-Signature"))), body, right, "malformed X-Hub-Signature-256 header: want sha256=<64 hex digits>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkFailure(t, p.Verify(tc.h, tc.body, tc.keys, time.Time{}), failure.Unauthorized, tc.reason)
		})
	}
	parts, err := p.(providers.Splitter).Split(h, body)
	if err != nil || len(parts) != 1 || parts[0].Ignored != `hmac.types maps "ping" to ignore` {
		t.Fatalf("ping: %+v, %v; want it ignored", parts, err)
	}
	var ev event.Event
	noTypes := githubScheme
	noTypes.Types = nil
	checkFailure(t, hmacPreset(t, noTypes).Normalize(h, body, &ev), failure.Unnormalizable, `unknown event type "ping" (map it in hmac.types)`)
	push := h.with("X-GitHub-Event", "post.published")
	if err := hmacPreset(t, noTypes).Normalize(push, body, &ev); err != nil || ev.ID != "72d3162e-cc78-11e3-81ab-4c9367dc0958" || ev.Type != event.PostPublished {
		t.Fatalf("id and type from headers: %+v, %v", ev, err)
	}
}

// TestHMACStripe is Stripe's sample: a timestamp and signatures in one header.
func TestHMACStripe(t *testing.T) {
	p := hmacPreset(t, stripeScheme)
	right := []*providers.Key{mustKey(t, p, stripeSecret)}
	body, h := sample(t, "hmac", "stripe_payment_intent")
	const header = "Stripe-Signature"
	v1 := string(h.Peek(header))[len("t=1767225600,v1="):]
	old := hexSig("whsec_old", append([]byte("1767225600."), body...))
	for _, tc := range []struct {
		name   string
		h      headers
		body   []byte
		keys   []*providers.Key
		now    time.Time
		reason string
	}{
		{"sample", h, body, right, stripeNow, ""},
		{"rolled secret: two v1", h.with(header, "t=1767225600,v1="+old+",v1="+v1), body, right, stripeNow, ""},
		{"v0 and unknown keys ignored", h.with(header, "t=1767225600,v0=abc,v1="+v1+",x=1"), body, right, stripeNow, ""},
		{"5 minutes old", h, body, right, stripeNow.Add(5 * time.Minute), ""},
		{"stale timestamp", h, body, right, stripeNow.Add(6 * time.Minute), "Stripe-Signature too old: more than 5m0s before now"},
		{"timestamp changed", h.with(header, "t=1767225601,v1="+v1), body, right, stripeNow, "signature does not match"},
		{"wrong secret", h, body, []*providers.Key{mustKey(t, p, "whsec_not_it")}, stripeNow, "signature does not match"},
		{"body changed by one byte", h, bytes.Replace(body, []byte("2000"), []byte("2001"), 1), right, stripeNow, "signature does not match"},
		{"signature made for another source", h.with(header, "t=1767225600,v1="+old), body, right, stripeNow, "signature does not match"},
		{"missing header", h.with(header, "-"), body, right, stripeNow, "missing Stripe-Signature header"},
		{"missing timestamp", h.with(header, "v1="+v1), body, right, stripeNow, "missing timestamp in the Stripe-Signature header"},
		{"only v0", h.with(header, "t=1767225600,v0="+v1), body, right, stripeNow, "malformed Stripe-Signature header: want v1=<64 hex digits>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkFailure(t, p.Verify(tc.h, tc.body, tc.keys, tc.now), failure.Unauthorized, tc.reason)
		})
	}
	var ev event.Event
	if err := p.Normalize(h, body, &ev); err != nil || ev.ID != "evt_1NG8Du2eZvKYlo2CUI79vXWy" || ev.Type != event.PostPublished || !ev.OccurredAt.Equal(stripeNow) {
		t.Fatalf("Normalize = %+v, %v", ev, err)
	}
}

// TestHMACSettings checks that every bad scheme is refused at start, naming its key.
func TestHMACSettings(t *testing.T) {
	with := func(f func(*providers.HMACScheme)) providers.HMACScheme {
		s := githubScheme
		f(&s)
		return s
	}
	for _, c := range []struct {
		s   providers.HMACScheme
		key string
	}{
		{with(func(s *providers.HMACScheme) { s.Header = "" }), "hmac.header"},
		{with(func(s *providers.HMACScheme) { s.Encoding = "base32" }), "hmac.encoding"},
		{with(func(s *providers.HMACScheme) { s.Signed = "{timestamp}" }), "hmac.signed"},
		{with(func(s *providers.HMACScheme) { s.Signed = "{body}{body}" }), "hmac.signed"},
		{with(func(s *providers.HMACScheme) { s.Signed = "{id}.{body}" }), "hmac.signed"},
		{with(func(s *providers.HMACScheme) { s.Signed = "{body" }), "hmac.signed"},
		{with(func(s *providers.HMACScheme) { s.Signed = "{timestamp}.{body}" }), "hmac.timestamp_header"},
		{with(func(s *providers.HMACScheme) { s.TimestampPrefix = "t=" }), "hmac.timestamp_prefix"},
		{with(func(s *providers.HMACScheme) { s.Tolerance = -time.Second }), "hmac.tolerance"},
		{with(func(s *providers.HMACScheme) { s.ID = "" }), "hmac.id"},
		{with(func(s *providers.HMACScheme) { s.ID = "body:id" }), "hmac.id"},
		{with(func(s *providers.HMACScheme) { s.Type = "json:a..b" }), "hmac.type"},
		{with(func(s *providers.HMACScheme) { s.Time = "header:" }), "hmac.time"},
		{with(func(s *providers.HMACScheme) { s.Data = "header:X-Data" }), "hmac.data"},
		{with(func(s *providers.HMACScheme) { s.Types = map[string]string{"push": "post.pushed"} }), "hmac.types.push"},
	} {
		_, err := providers.New("hmac", providers.Settings{HMAC: &c.s})
		se, ok := errors.AsType[*providers.SettingError](err)
		if !ok || se.Key != c.key {
			t.Errorf("%+v: err = %v, want one about %s", c.s, err, c.key)
		}
	}
}

// TestHMACTimeAndData checks the optional locations: the time as unix seconds or RFC 3339,
// the data fields by their canonical names, and ids sent as numbers.
func TestHMACTimeAndData(t *testing.T) {
	p := mustNew(t, "hmac")
	for _, c := range []struct {
		body string
		want time.Time
	}{
		{`{"id":"e1","type":"post.failed","timestamp":"2026-01-01T00:00:00Z","data":{"post_id":"p1","error_code":"rate_limited"}}`, stripeNow},
		{`{"id":17,"type":"post.failed","timestamp":1767225600,"data":{"post_id":"p1","error_code":"rate_limited"}}`, stripeNow},
	} {
		var ev event.Event
		if err := p.Normalize(headers{}, []byte(c.body), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != event.PostFailed || !ev.OccurredAt.Equal(c.want) || *ev.PostID != "p1" || *ev.ErrorCode != "rate_limited" || ev.ID == "" {
			t.Errorf("%s: %+v", c.body, ev)
		}
	}
	var ev event.Event
	err := p.Normalize(headers{}, []byte(`{"id":"e1","type":"post.failed","timestamp":"tomorrow"}`), &ev)
	checkFailure(t, err, failure.Unnormalizable, `event time "tomorrow": want RFC 3339 or unix seconds`)
	err = p.Normalize(headers{}, []byte(`{"type":"post.failed"}`), &ev)
	checkFailure(t, err, failure.Unnormalizable, `missing event id: no string at "id"`)
}

// TestHMACUnsignedFields names the id and type locations that the signature does not cover,
// and keys deliveries on what it does: the same for any unsigned header, or timestamp, and
// another for any other signed byte.
func TestHMACUnsignedFields(t *testing.T) {
	idSigned := providers.HMACScheme{Header: "X-Sig", Signed: "{header:x-id}.{timestamp}.{body}", TimestampHeader: "X-Ts",
		ID: "header:X-Id", Type: "header:X-Type"}
	for _, c := range []struct {
		name   string
		scheme providers.HMACScheme
		want   []string
	}{
		{"github", githubScheme, []string{"id from header X-GitHub-Delivery", "type from header X-GitHub-Event"}},
		{"stripe", stripeScheme, nil},
		{"id signed, type not", idSigned, []string{"type from header X-Type"}},
	} {
		ck, ok := hmacPreset(t, c.scheme).(providers.ContentKeyed)
		if got := ck.UnsignedFields(); !ok || !slices.Equal(got, c.want) {
			t.Errorf("%s: Unsigned() = %q, want %q", c.name, got, c.want)
		}
	}
	gh := hmacPreset(t, githubScheme).(providers.ContentKeyed)
	body := []byte(`{"zen":"Keep it logically awesome."}`)
	key := gh.DedupKey(headers{"X-GitHub-Delivery": []byte("d-1"), "X-GitHub-Event": []byte("ping")}, body)
	if !strings.HasPrefix(key, "signed_") || len(key) != len("signed_")+32 {
		t.Fatalf("DedupKey = %q", key)
	}
	if other := gh.DedupKey(headers{"X-GitHub-Delivery": []byte("d-2"), "X-GitHub-Event": []byte("push")}, body); other != key {
		t.Errorf("another delivery id and type changed the key: %s, %s", key, other)
	}
	if other := gh.DedupKey(headers{}, append(bytes.Clone(body), ' ')); other == key {
		t.Error("another body has the same key")
	}
	signedID := hmacPreset(t, idSigned).(providers.ContentKeyed)
	at := func(id, ts string) string {
		return signedID.DedupKey(headers{"X-Id": []byte(id), "X-Ts": []byte(ts), "X-Type": []byte(ts)}, body)
	}
	if at("1", "100") != at("1", "200") || at("1", "100") == at("2", "100") {
		t.Error("the key of a scheme signing its id and a timestamp must follow the id, not the timestamp")
	}
}
