package service_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/sender"
)

// The attack suite: for every preset of the registry, the attacks that apply to it (forged or
// missing signature, another source's signature, a handshake's answer used as a signature, a
// replay under a fresh unsigned id or another type, a signed time past the window, an
// oversized body, URL-token guessing…), each sent to one running bridge on the real broker and
// each expected to be refused (4xx) or, for a resent delivery, answered duplicate. Then a valid
// delivery per source (the positive signal: an attack's record would have been acknowledged
// by Kafka before its answer, so before these) and every topic, the quarantine included, must
// hold exactly the valid deliveries' records.
//
// Most rows come from what a preset is (providers.Handshaker, Unsigned, Dated, …), so a new
// preset gets them; a preset without an entry in targets fails the suite.

// target is one source of the suite: a preset, configured, and the attacks of its own.
type target struct {
	preset    string
	configure func(*config.Source)
	// secrets: the source's, its twin's (another source of the same preset), an attacker's.
	secrets [3]string
	// window is how old (or how far ahead) a delivery may be made before it is refused; 0
	// when nothing of it tells its age.
	window time.Duration
	// handshake builds the query of a handshake around the value it echoes or signs.
	handshake func(value string) url.Values
	// own are the attacks of this source's own headers.
	own func(s *suite, tg *target) []attack
}

var targets = map[string]*target{
	"ayrshare": {preset: "ayrshare", secrets: [3]string{"ayr-atk-secret", "ayr-atk-twin", "ayr-atk-attacker"}, window: time.Hour,
		own: ayrshareAttacks},
	"codivupload": {preset: "codivupload", secrets: [3]string{"cdv_atk_secret", "cdv_atk_twin", "cdv_atk_attacker"},
		window: 24*time.Hour - providers.ClockSkew, own: codivAttacks},
	"meta": {preset: "meta", secrets: [3]string{"meta-atk-secret", "meta-atk-twin", "meta-atk-attacker"},
		window:    36*time.Hour - providers.ClockSkew,
		configure: func(s *config.Source) { s.VerifyToken = "atk-verify-token" },
		handshake: func(v string) url.Values {
			return url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"atk-verify-token"}, "hub.challenge": {v}}
		},
		own: metaAttacks},
	"github": {preset: "hmac", secrets: [3]string{"gh-atk-secret", "gh-atk-twin", "gh-atk-attacker"},
		configure: func(s *config.Source) { s.HMAC = githubSource("").HMAC }, own: githubAttacks},
	"stripe": {preset: "hmac", secrets: [3]string{"whsec_atk_stripe", "whsec_atk_twin", "whsec_atk_attacker"}, window: 5 * time.Minute,
		configure: func(s *config.Source) {
			s.HMAC = &config.HMAC{Header: "Stripe-Signature", Prefix: "v1=", Encoding: "hex", Signed: "{timestamp}.{body}",
				TimestampHeader: "Stripe-Signature", TimestampPrefix: "t=", ID: "json:id", Type: "json:type", Time: "json:created",
				Types: map[string]string{"payment_intent.succeeded": event.PostPublished}}
		}},
	"postbridge": {preset: "post-bridge", secrets: [3]string{postBridgeKey, "pb_live_atk_twin", "pb_live_atk_attacker"}},
	"postiz":     {preset: "postiz", secrets: [3]string{"0e1d2c3b4a5968778695a4b3c2d1e0f9", "1f2e3d4c5b6a7988a7b6c5d4e3f2a1b0", "2a3b4c5d6e7f8091a2b3c4d5e6f708192"}},
	"standard": {preset: "standard-webhooks", window: 5 * time.Minute, own: standardAttacks,
		secrets: [3]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_dHdpbi1vZi10aGUtc3RhbmRhcmQtc291cmNl", "whsec_YXR0YWNrZXJzLW93bi1zZWNyZXQtMTIzNA=="}},
	"uploadpost": {preset: "upload-post", secrets: [3]string{"9f2c4e7a1b3d5f608a2c4e6b8d0f1a3c", "8e1b3d6f0a2c4e5f7a9b1c3d5e7f9a2b", "7d0a2c5e9f1b3d4e6f8a0b2c4d6e8f1a"}},
	"x": {preset: "x", secrets: [3]string{"x-atk-consumer-secret", "x-atk-twin", "x-atk-attacker"},
		window:    24*time.Hour - providers.ClockSkew,
		handshake: func(v string) url.Values { return url.Values{"crc_token": {v}, "nonce": {"MTUzMzE2MjE2MA"}} }},
}

// attack is one row: the requests it sends, each of which must be refused or be a duplicate.
type attack struct {
	source, name string
	requests     func(t *testing.T) []request
}

type request struct {
	method, path string
	header       http.Header
	body         []byte
}

// suite is the running bridge and what the attacks need of it.
type suite struct {
	url   string
	n     int            // for fresh event ids
	valid map[string]int // records each source's valid deliveries made
	ids   []string       // their event ids
}

// accept sends a valid delivery, which must be accepted, and counts what it stored.
func (s *suite) accept(t *testing.T, source string, d providers.Delivery) {
	t.Helper()
	code, a := s.do(t, request{http.MethodPost, "/webhooks/" + source + d.Path, d.Header, d.Body})
	if code != 200 || a.Status != "accepted" {
		t.Fatalf("a valid delivery to %s: %d %s", source, code, a.raw)
	}
	n, ids := a.accepted()
	s.valid[source] += n
	s.ids = append(s.ids, ids...)
}

// TestAttacks runs every attack of every target against one bridge; see the top of the file.
func TestAttacks(t *testing.T) {
	covered := map[string]bool{}
	for _, tg := range targets {
		covered[tg.preset] = true
	}
	for _, name := range providers.Names() {
		if !covered[name] {
			t.Errorf("preset %s has no target in the attack suite: add one to targets", name)
		}
	}
	brokers := kafkatest.Brokers(t)
	api := httptest.NewServer(&resultsAPI{})
	defer api.Close()
	cfg := attackConfig(t, brokers, api.URL)
	b := start(t, cfg)
	s := &suite{url: b.url, valid: map[string]int{}}
	var attacks []attack
	for _, source := range sortedTargets() {
		tg := targets[source]
		if _, polled := mustPreset(t, tg).(providers.Poller); !polled {
			s.accept(t, source, s.deliver(t, tg, tg.secrets[0], "evt_atk_"+source, time.Now()))
		}
		attacks = append(attacks, s.attacks(t, source, tg)...)
	}
	sent := 0
	for _, a := range attacks {
		for i, req := range a.requests(t) {
			sent++
			code, ans := s.do(t, req)
			if refused := code >= 400 && code < 500; !refused && (code != 200 || ans.Status != "duplicate") {
				t.Errorf("%s: %s: request %d (%s %s) answered %d %s, want a 4xx or a duplicate",
					a.source, a.name, i, req.method, redactPath(req.path), code, ans.raw)
			}
		}
	}
	for _, source := range sortedTargets() {
		if _, polled := mustPreset(t, targets[source]).(providers.Poller); !polled {
			s.accept(t, source, s.deliver(t, targets[source], targets[source].secrets[0], "evt_after_"+source, time.Now()))
		}
	}
	checkStored(t, brokers, cfg.Kafka.TopicPrefix, s.valid, s.ids)
	if !t.Failed() {
		t.Logf("%d attacks (%d requests) on %d sources of %d presets: every one refused or a duplicate, nothing stored",
			len(attacks), sent, len(targets), len(covered))
	}
	if len(attacks) < 100 {
		t.Errorf("only %d attacks: the suite lost its rows", len(attacks))
	}
}

func sortedTargets() []string {
	var out []string
	for name := range targets {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// attackConfig has one source per target and its twin, another source of the same preset.
func attackConfig(t *testing.T, brokers []string, pollURL string) config.Config {
	cfg := testConfig(t, brokers)
	cfg.Sources = nil
	for _, name := range sortedTargets() {
		tg := targets[name]
		for i, suffix := range []string{"", "-twin"} {
			src := config.Source{Name: name + suffix, Provider: tg.preset, Secrets: []string{tg.secrets[i]}}
			if tg.configure != nil {
				tg.configure(&src)
			}
			if tg.preset == "post-bridge" {
				src.Poll = &config.Poll{BaseURL: pollURL, Interval: config.Duration(time.Hour)}
			}
			cfg.Sources = append(cfg.Sources, src)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func mustPreset(t *testing.T, tg *target) providers.Preset {
	t.Helper()
	src := config.Source{Provider: tg.preset}
	if tg.configure != nil {
		tg.configure(&src)
	}
	p, err := providers.New(tg.preset, src.Settings())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// deliver renders a delivery of the target's first type, a new event, made at at, signed with
// secret.
func (s *suite) deliver(t *testing.T, tg *target, secret, id string, at time.Time) providers.Delivery {
	t.Helper()
	sim := mustPreset(t, tg).(providers.Simulator)
	s.n++
	d, err := sim.Deliver(sender.SampleEvent(sim.Types()[0], fmt.Sprintf("%s_%d", id, s.n), at, s.n), secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// attacks are the rows of one target: those its preset's kind calls for, and its own.
func (s *suite) attacks(t *testing.T, source string, tg *target) []attack {
	p := mustPreset(t, tg)
	var out []attack
	add := func(name string, requests func(t *testing.T) []request) {
		out = append(out, attack{source, name, requests})
	}
	fresh := func(t *testing.T) providers.Delivery {
		return s.deliver(t, tg, tg.secrets[0], "evt_"+source, time.Now())
	}
	post := func(d providers.Delivery) request {
		return request{http.MethodPost, "/webhooks/" + source + d.Path, d.Header, d.Body}
	}
	one := func(f func(t *testing.T) request) func(t *testing.T) []request {
		return func(t *testing.T) []request { return []request{f(t)} }
	}

	_, polled := p.(providers.Poller)
	_, unsigned := p.(providers.Unsigned)
	add("an exact resend of a valid delivery", func(t *testing.T) []request {
		d := fresh(t)
		if !polled {
			s.accept(t, source, d)
		}
		return []request{post(d), post(d)}
	})
	add("signed with an attacker's secret", one(func(t *testing.T) request {
		return post(s.deliver(t, tg, tg.secrets[2], "evt_forged", time.Now()))
	}))
	add("signed for another source of the same provider", one(func(t *testing.T) request {
		return post(s.deliver(t, tg, tg.secrets[1], "evt_twin", time.Now()))
	}))
	add("no credentials at all", one(func(t *testing.T) request {
		d := fresh(t)
		d.Header, d.Path = http.Header{"Content-Type": {"application/json"}}, ""
		return post(d)
	}))
	if !unsigned { // a URL token binds no body nor header: whoever holds it sends anything
		add("the body changed after signing", one(func(t *testing.T) request {
			d := fresh(t)
			d.Body = bytes.Replace(d.Body, []byte(`":`), []byte(`": `), 1)
			return post(d)
		}))
		add("every header blanked", one(func(t *testing.T) request {
			d := fresh(t)
			for k := range d.Header {
				if k != "Content-Type" {
					d.Header.Set(k, "")
				}
			}
			return post(d)
		}))
	}
	add(fmt.Sprintf("a body over http.max_body_bytes (%d), with valid headers", maxBody), one(func(t *testing.T) request {
		d := fresh(t)
		d.Body = append(bytes.TrimSuffix(d.Body, []byte("}")), []byte(`,"pad":"`+strings.Repeat("a", maxBody)+`"}`)...)
		return post(d)
	}))
	add("not JSON by its content type", one(func(t *testing.T) request {
		d := fresh(t)
		d.Header.Set("Content-Type", "text/plain")
		return post(d)
	}))
	add("another method", one(func(t *testing.T) request {
		r := post(fresh(t))
		r.method = http.MethodPut
		return r
	}))
	if unsigned {
		out = append(out, s.tokenAttacks(source, tg, fresh, post)...)
	} else {
		add("a URL token on a signed source (its own secret)", one(func(t *testing.T) request {
			r := post(fresh(t))
			r.path += "/" + url.PathEscape(tg.secrets[0])
			return r
		}))
	}
	if _, ok := p.(providers.Handshaker); ok {
		out = append(out, s.handshakeAttacks(t, source, tg, p)...)
	} else {
		add("a handshake GET on a source that has none", one(func(t *testing.T) request {
			return request{http.MethodGet, "/webhooks/" + source + "?crc_token=abc&hub.challenge=1&hub.mode=subscribe", nil, nil}
		}))
	}
	if tg.window > 0 {
		for _, c := range []struct {
			name string
			by   time.Duration
		}{{"made before the replay window", -tg.window - time.Hour}, {"made ahead of the clock, past the skew allowed", tg.window + time.Hour}} {
			add(c.name, one(func(t *testing.T) request {
				at := time.Now().Add(c.by)
				return post(s.deliver(t, tg, tg.secrets[0], "evt_time", at))
			}))
		}
	}
	if tg.own != nil {
		out = append(out, tg.own(s, tg)...)
	}
	return out
}

// maxBody is http.max_body_bytes in the suite (testConfig's).
const maxBody = 64 << 10

// tokenAttacks guess the URL token of a source authenticated by one.
func (s *suite) tokenAttacks(source string, tg *target, fresh func(*testing.T) providers.Delivery, post func(providers.Delivery) request) []attack {
	token := tg.secrets[0]
	var out []attack
	for _, g := range []struct{ name, path string }{
		{"a guessed URL token: the other source's", "/" + tg.secrets[1]},
		{"a guessed URL token: all but its last character", "/" + token[:len(token)-1]},
		{"a guessed URL token: one more character", "/" + token + "0"},
		{"a guessed URL token: in upper case", "/" + strings.ToUpper(token)},
		{"a guessed URL token: its first half", "/" + token[:len(token)/2]},
		{"a guessed URL token: the source's name", "/" + source},
		{"a guessed URL token: followed by another segment", "/" + token + "/x"},
		{"a guessed URL token: percent-encoded dots", "/%2e%2e"},
		{"a guessed URL token: in the query instead", "?token=" + token},
	} {
		out = append(out, attack{source, g.name, func(t *testing.T) []request {
			d := fresh(t)
			d.Path = g.path
			return []request{post(d)}
		}})
	}
	return out
}

// handshakeAttacks ask the source's handshake to sign or echo what an attacker wants, and
// post it with the answer in every header of a delivery, as it is or after its scheme's
// prefix.
func (s *suite) handshakeAttacks(t *testing.T, source string, tg *target, p providers.Preset) []attack {
	if tg.handshake == nil {
		t.Fatalf("%s has a handshake but its target has no handshake query", source)
	}
	get := func(t *testing.T, v string) (int, []byte) {
		resp, err := httpClient.Get(s.url + "/webhooks/" + source + "?" + tg.handshake(v).Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	asSignatures := func(t *testing.T, value string) []request {
		code, answer := get(t, value)
		if code != 200 {
			return []request{{http.MethodGet, "/webhooks/" + source + "?" + tg.handshake(value).Encode(), nil, nil}}
		}
		var reqs []request
		d := s.deliver(t, tg, tg.secrets[0], "evt_hs", time.Now())
		for _, sig := range answerStrings(answer) {
			for name := range d.Header {
				if name == "Content-Type" {
					continue
				}
				h := d.Header.Clone()
				h.Set(name, sig)
				reqs = append(reqs, request{http.MethodPost, "/webhooks/" + source, h, []byte(value)})
			}
		}
		return reqs
	}
	forged := string(s.deliver(t, tg, tg.secrets[0], "evt_forged_by_handshake", time.Now()).Body)
	var out []attack
	for _, c := range []struct{ name, value string }{
		{"the handshake asked to sign a forged delivery, which is then posted with its answer", forged},
		{"the handshake's answer to an opaque token posted as its signature", "opaque-token_1.2~3"},
		{"the handshake's answer to a number posted as its signature", "1158201444"},
		{"the handshake's answer to a JSON literal posted as its signature", "true"},
		{"the handshake asked to echo markup", "<script>alert(1)</script>"},
	} {
		out = append(out, attack{source, c.name, func(t *testing.T) []request { return asSignatures(t, c.value) }})
	}
	return out
}

// answerStrings are the strings a handshake's answer offers as a signature: itself, each
// string in it, and each after its scheme's prefix.
func answerStrings(answer []byte) []string {
	out := []string{string(answer)}
	var v map[string]any
	if json.Unmarshal(answer, &v) == nil {
		for _, s := range v {
			if s, ok := s.(string); ok {
				out = append(out, s)
			}
		}
	}
	for _, s := range out {
		if _, rest, ok := strings.Cut(s, "="); ok {
			out = append(out, rest)
		}
	}
	return out
}

// codivAttacks resend a CodivUpload delivery with its unsigned type header swapped.
func codivAttacks(s *suite, tg *target) []attack {
	return headerSwaps(s, "codivupload", tg, "X-CodivUpload-Event", []string{event.PostFailed, "post.deleted", ""})
}

// ayrshareAttacks resend an Ayrshare delivery with a fresh X-Authorization-Timestamp, which
// its signature does not cover: the hookId, signed, makes it a duplicate.
func ayrshareAttacks(s *suite, tg *target) []attack {
	return headerSwaps(s, "ayrshare", tg, "X-Authorization-Timestamp", []string{strconv.FormatInt(time.Now().Unix()+1, 10)})
}

// githubAttacks resend a GitHub-style delivery under fresh unsigned ids and types, and a
// ping (ignored) as a type that would be produced.
func githubAttacks(s *suite, tg *target) []attack {
	out := headerSwaps(s, "github", tg, "X-GitHub-Delivery", []string{"d-fresh-1", "d-fresh-2"})
	out = append(out, headerSwaps(s, "github", tg, "X-GitHub-Event", []string{event.PostFailed, "issues", "ping"})...)
	return append(out, attack{"github", "an ignored ping resent as an event under a fresh id", func(t *testing.T) []request {
		body := []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`)
		h := githubHeaders(tg.secrets[0], "d-ping", "ping", body)
		if code, a := s.do(t, request{http.MethodPost, "/webhooks/github", h, body}); code != 200 || a.Status != "ignored" {
			t.Fatalf("the ping: %d %s", code, a.raw)
		}
		return []request{{http.MethodPost, "/webhooks/github", githubHeaders(tg.secrets[0], "d-ping-2", event.PostPublished, body), body}}
	}})
}

// standardAttacks resend a Standard Webhooks delivery under a fresh webhook-id, which its
// signature covers.
func standardAttacks(s *suite, tg *target) []attack {
	return headerSwaps(s, "standard", tg, "webhook-id", []string{"msg_fresh"})
}

// metaAttacks guess the verify token, and send the legacy SHA-1 signature instead of the
// SHA-256 one.
func metaAttacks(s *suite, tg *target) []attack {
	var out []attack
	for _, guess := range []string{"", "atk-verify-toke", "atk-verify-token ", "ATK-VERIFY-TOKEN", "meta-atk-secret"} {
		out = append(out, attack{"meta", fmt.Sprintf("the verification GET with a guessed verify token %q", guess), func(*testing.T) []request {
			q := tg.handshake("1158201444")
			q.Set("hub.verify_token", guess)
			return []request{{http.MethodGet, "/webhooks/meta?" + q.Encode(), nil, nil}}
		}})
	}
	return append(out, attack{"meta", "only the legacy SHA-1 X-Hub-Signature", func(t *testing.T) []request {
		d := s.deliver(t, tg, tg.secrets[0], "evt_sha1", time.Now())
		d.Header.Set("X-Hub-Signature", "sha1="+strings.Repeat("0", 40))
		d.Header.Del("X-Hub-Signature-256")
		return []request{{http.MethodPost, "/webhooks/meta", d.Header, d.Body}}
	}})
}

// headerSwaps resend a valid delivery, once accepted, with header set to each of values.
func headerSwaps(s *suite, source string, tg *target, header string, values []string) []attack {
	var out []attack
	for _, v := range values {
		out = append(out, attack{source, fmt.Sprintf("resent with %s: %q", header, v), func(t *testing.T) []request {
			d := s.deliver(t, tg, tg.secrets[0], "evt_swap", time.Now())
			s.accept(t, source, d)
			d.Header.Set(header, v)
			return []request{{http.MethodPost, "/webhooks/" + source, d.Header, d.Body}}
		}})
	}
	return out
}

func githubHeaders(secret, delivery, typ string, body []byte) http.Header {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return http.Header{"Content-Type": {"application/json"}, "X-Github-Delivery": {delivery}, "X-Github-Event": {typ},
		"X-Hub-Signature-256": {"sha256=" + hex.EncodeToString(mac.Sum(nil))}}
}

// suiteAnswer is an answer as the suite reads it: JSON with a status, or not.
type suiteAnswer struct {
	raw     string
	Status  string `json:"status"`
	EventID string `json:"event_id"`
	Events  []struct {
		Status  string `json:"status"`
		EventID string `json:"event_id"`
	} `json:"events"`
}

// accepted counts the events an accepted answer stored, with their ids.
func (a suiteAnswer) accepted() (int, []string) {
	if len(a.Events) == 0 {
		return 1, []string{a.EventID}
	}
	var ids []string
	for _, e := range a.Events {
		if e.Status == "accepted" {
			ids = append(ids, e.EventID)
		}
	}
	return len(ids), ids
}

func (s *suite) do(t *testing.T, r request) (int, suiteAnswer) {
	t.Helper()
	req, err := http.NewRequest(r.method, s.url+r.path, bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, redactPath(r.path), err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := suiteAnswer{raw: string(raw)}
	_ = json.Unmarshal(raw, &a) // a handshake's answer may be text
	return resp.StatusCode, a
}

// redactPath keeps URL tokens out of the test's output.
func redactPath(p string) string {
	if i := strings.Index(p[len("/webhooks/"):], "/"); i >= 0 {
		return p[:len("/webhooks/")+i] + "/…"
	}
	return p
}

// checkStored reads every topic the bridge writes: the event topics hold exactly the
// records of the valid deliveries (by source, and by id), the quarantine none.
func checkStored(t *testing.T, brokers []string, prefix string, valid map[string]int, ids []string) {
	t.Helper()
	got := map[string]int{}
	for _, topic := range event.Topics(prefix) {
		recs := readTopic(t, brokers, topic)
		if topic == event.QuarantineTopic(prefix) {
			for _, r := range recs {
				t.Errorf("the quarantine holds a delivery of %s: %s (%.80s)", header(r, "source"), header(r, "reason"), r.Value)
			}
			continue
		}
		for _, r := range recs {
			got[header(r, "source")]++
			if !slices.Contains(ids, string(r.Key)) {
				t.Errorf("%s holds a record no valid delivery made: %s from %s", topic, r.Key, header(r, "source"))
			}
		}
	}
	for source := range targets {
		for _, s := range []string{source, source + "-twin"} {
			if got[s] != valid[s] {
				t.Errorf("source %s: %d records stored, want %d, those of its valid deliveries", s, got[s], valid[s])
			}
		}
	}
}
