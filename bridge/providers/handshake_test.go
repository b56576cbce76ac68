package providers_test

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/sender"
)

// A handshake answers a GET that anyone may send, with the source's keys: if an answer could
// serve as the signature of a body that a POST to the source accepts, the handshake would be a
// signing oracle (issue 14: X's CRC signed any crc_token, JSON deliveries included). The rule,
// for every Handshaker of the registry: no answer, to any query, verifies as a signature (or a
// URL token) of the query's values, of the answer itself, or of any string in it, in any
// header the preset's deliveries carry.

// handshakeQuery builds the query of a preset's handshake around a value it echoes or signs.
// A Handshaker without an entry fails TestNoHandshakeAnswerSignsADelivery: add it here.
var handshakeQuery = map[string]func(value string) query{
	"meta": func(v string) query {
		return query{"hub.mode": "subscribe", "hub.verify_token": "my-verify-token", "hub.challenge": v}
	},
	"x": func(v string) query { return query{"crc_token": v, "nonce": "MTUzMzE2MjE2MA"} },
}

// TestNoHandshakeAnswerSignsADelivery holds every Handshaker to the rule above, over the
// bodies of every preset's simulated deliveries, the providers' samples, bodies on the edges
// of JSON, and a thousand random tokens, half of the shape the handshakes accept.
func TestNoHandshakeAnswerSignsADelivery(t *testing.T) {
	values := handshakeValues(t)
	checked := 0
	for _, name := range providers.Names() {
		p := mustNew(t, name)
		if _, ok := p.(providers.Handshaker); !ok {
			continue
		}
		build, ok := handshakeQuery[name]
		if !ok {
			t.Errorf("%s has a handshake but no entry in handshakeQuery", name)
			continue
		}
		o := newOracleCheck(t, name, p)
		answered := 0
		for _, v := range values {
			if o.check(t, build(v)) {
				answered++
			}
		}
		if answered == 0 {
			t.Errorf("%s answered none of %d handshakes: the rule was checked on nothing", name, len(values))
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no preset has a handshake: the rule was checked on nothing")
	}
}

// FuzzHandshake holds every Handshaker to the rule above, and to its contract (refused as
// Unauthorized, or answered with no more than the query echoes), on any value.
//
//	go test -run '^$' -fuzz '^FuzzHandshake$' -fuzztime 1m ./bridge/providers/   (or make fuzz)
func FuzzHandshake(f *testing.F) {
	for _, v := range handshakeValues(f) {
		f.Add(v)
	}
	var checks []*oracleCheck
	var builds []func(string) query
	for _, name := range providers.Names() {
		p := mustNew(f, name)
		if _, ok := p.(providers.Handshaker); ok {
			checks, builds = append(checks, newOracleCheck(f, name, p)), append(builds, handshakeQuery[name])
		}
	}
	f.Fuzz(func(t *testing.T, v string) {
		for i, o := range checks {
			if builds[i] == nil {
				t.Fatalf("%s has a handshake but no entry in handshakeQuery", o.name)
			}
			q := builds[i](v)
			checkHandshake(t, fuzzPreset{o.name, o.secret, o.p, o.key}, queryHeaders(q), len(v)+64)
			o.check(t, q)
		}
	})
}

// queryHeaders is q as the fuzz helpers take it.
func queryHeaders(q query) headers {
	h := headers{}
	for k, v := range q {
		h[k] = []byte(v)
	}
	return h
}

// oracleCheck tries a preset's handshake answers as the signatures of its deliveries.
type oracleCheck struct {
	name, secret string
	p            providers.Preset
	key          *providers.Key
	// deliveries are the headers of the preset's simulated deliveries, one of each type: where
	// its signatures (and any timestamp or id they cover) go.
	deliveries []http.Header
}

func newOracleCheck(t testing.TB, name string, p providers.Preset) *oracleCheck {
	t.Helper()
	o := &oracleCheck{name: name, secret: simulationSecrets[name], p: p}
	o.key = mustKey(t, p, o.secret)
	sim := p.(providers.Simulator)
	for i, typ := range sim.Types() {
		d, err := sim.Deliver(sender.SampleEvent(typ, "evt_oracle", fuzzNow, i), o.secret, fuzzNow)
		if err != nil {
			t.Fatalf("%s: Deliver %s: %v", name, typ, err)
		}
		o.deliveries = append(o.deliveries, d.Header)
	}
	return o
}

// check sends q to the handshake and, if it is answered, tries every string of the answer
// as a signature of every body it could have signed. It reports whether q was answered.
func (o *oracleCheck) check(t *testing.T, q query) bool {
	t.Helper()
	_, answer, err := o.p.(providers.Handshaker).Handshake(q, []*providers.Key{o.key})
	if err != nil {
		return false
	}
	sigs := signatureCandidates(answer)
	bodies := append([]string{string(answer)}, sigs...)
	for _, v := range q {
		bodies = append(bodies, v)
	}
	for _, body := range bodies {
		for _, sig := range sigs {
			o.tryAsSignature(t, q, []byte(body), sig)
		}
	}
	return true
}

// tryAsSignature fails t if sig, put in any header of the preset's deliveries, or as a URL
// token, makes body verify.
func (o *oracleCheck) tryAsSignature(t *testing.T, q query, body []byte, sig string) {
	t.Helper()
	keys := []*providers.Key{o.key}
	if u, ok := o.p.(providers.Unsigned); ok && u.VerifyToken([]byte(sig), keys) == nil {
		t.Fatalf("%s: the handshake's answer to %v holds %q, a valid URL token", o.name, q, sig)
	}
	for _, d := range o.deliveries {
		for name := range d {
			if strings.EqualFold(name, "Content-Type") {
				continue
			}
			h := headers{}
			for k := range d {
				h[k] = []byte(d.Get(k))
			}
			h[name] = []byte(sig)
			if s, ok := o.p.(providers.Signed); ok && s.Verify(h, body, keys, fuzzNow) == nil {
				t.Fatalf("%s: the handshake's answer to %v signs %.80q: %q in %s verifies", o.name, q, body, sig, name)
			}
		}
	}
}

// signatureCandidates are the strings an answer offers: itself, every string in it when it
// is JSON, and each of these after its scheme's prefix ("sha256=", "v1,").
func signatureCandidates(answer []byte) []string {
	out := []string{string(answer)}
	var v any
	if json.Unmarshal(answer, &v) == nil {
		out = append(out, jsonStrings(v)...)
	}
	for _, s := range out {
		for _, sep := range []string{"=", ","} {
			if _, rest, ok := strings.Cut(s, sep); ok && rest != "" {
				out = append(out, rest)
			}
		}
	}
	return out
}

func jsonStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, jsonStrings(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for k, e := range v {
			out = append(append(out, k), jsonStrings(e)...)
		}
		return out
	}
	return nil
}

// handshakeValues are the values handshakes are asked to answer: the bodies of every
// preset's simulated deliveries and of the providers' samples (what an attacker wants
// signed), bodies on the edges of JSON, the providers' own tokens, and random tokens, half of
// them of the opaque shape the handshakes accept (letters, digits, -._~+/=).
func handshakeValues(t testing.TB) []string {
	t.Helper()
	values := []string{"9b4507b3-9040-4669-9ca3-6b94edb50553", "1158201444", "challenge_string", "MTUzMzE2MjE2MA==",
		"12345", "true", "null", "{}", "[]", `""`, " {}", "\t{}", "\ufeff{}", "a{", "a b", "a\x00b"}
	values = append(values, trickyBodies...)
	for _, name := range providers.Names() {
		sim, ok := mustNew(t, name).(providers.Simulator)
		if !ok {
			continue
		}
		for i, typ := range sim.Types() {
			if d, err := sim.Deliver(sender.SampleEvent(typ, "evt_forged", fuzzNow, i), simulationSecrets[name], fuzzNow); err == nil {
				values = append(values, string(d.Body))
			}
		}
	}
	samples, _ := filepath.Glob(filepath.Join("testdata", "*", "*.json"))
	for _, s := range samples {
		if b, err := os.ReadFile(s); err == nil {
			values = append(values, string(b))
		}
	}
	r := rand.New(rand.NewPCG(14, 1))
	const opaque = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/="
	for i := range 1000 {
		b := make([]byte, 1+r.IntN(80))
		for j := range b {
			if i%2 == 0 {
				b[j] = opaque[r.IntN(len(opaque))]
			} else {
				b[j] = byte(r.IntN(256))
			}
		}
		values = append(values, string(b))
	}
	return append(values, event.Types...)
}
