package providers_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/sender"
)

// The fuzz targets hold every registered preset (providers.Names(), so a new preset is
// fuzzed without a line here) to the contract of the request path, on any body and headers:
// no panic; Verify fails only as Unauthorized and Normalize only as Unnormalizable, with a
// short UTF-8 reason; a normalized event has a UTF-8 id, a known type, UTF-8 fields, and comes
// only from strict JSON; and the memory either allocates grows with the input's size alone.
// Seeds: each preset's simulated deliveries of every type it sends, the golden inputs of
// testdata/<preset>/, the bodies below, and the providers' samples in testdata/fuzz/.
//
//	go test -run '^$' -fuzz '^FuzzNormalize$' -fuzztime 1m ./bridge/providers/   (or make fuzz)

var fuzzNow = time.Date(2026, 5, 8, 14, 0, 42, 0, time.UTC)

// A fuzz input is a body and a header block, "Name: value" lines.
func addSeeds(f *testing.F) {
	for _, name := range providers.Names() {
		sim, ok := mustNew(f, name).(providers.Simulator)
		if !ok {
			continue // TestEveryPresetSimulates fails for it
		}
		for i, typ := range sim.Types() {
			d, err := sim.Deliver(sender.SampleEvent(typ, "evt_seed", fuzzNow, i), simulationSecrets[name], fuzzNow)
			if err == nil {
				f.Add(d.Body, headerBlock(d.Header))
			}
		}
	}
	inputs, _ := filepath.Glob(filepath.Join("testdata", "*", "*.json"))
	for _, in := range inputs {
		body, _ := os.ReadFile(in)
		head, _ := os.ReadFile(strings.TrimSuffix(in, ".json") + ".headers")
		f.Add(body, string(head))
	}
	for _, body := range trickyBodies {
		f.Add([]byte(body), "X-CodivUpload-Event: post.published\nwebhook-id: msg_1\n")
	}
}

func headerBlock(h http.Header) string {
	var b strings.Builder
	for name, values := range h {
		for _, v := range values {
			b.WriteString(name + ": " + v + "\n")
		}
	}
	return b.String()
}

// parseHeaders reads a header block as a server would hand it over: names and values
// trimmed, any bytes kept.
func parseHeaders(block string) headers {
	h := headers{}
	for line := range strings.Lines(block) {
		if name, value, ok := strings.Cut(line, ":"); ok {
			h[strings.TrimSpace(name)] = []byte(strings.TrimSpace(value))
		}
	}
	return h
}

// trickyBodies are deliveries whose JSON is on the edges of the grammar, valid or not,
// mostly where the presets only skip over it.
var trickyBodies = []string{
	"", " ", "\xef\xbb\xbf{}", "{}x", "{} ", "[]", `"x"`, "1e", "-", "01", "nul",
	`{"id":"e1","event":"post.published","data":{"post_id":"p"}}x`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p"},}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p",}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p","n":1e}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p","n":-}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p","n":01}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p","n":1.5e+308,"m":-0.0E-0}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p","n":` + strings.Repeat("9", 400) + `}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"\u12"}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"\ud800"}}`,
	`{"id":"\ud800","event":"post.published"}`, `{"id":"\udbff","event":"post.published"}`,
	"{\"id\":\"\xff\",\"event\":\"post.published\"}", `{"id":"e1","event":"post.published","id":null}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p","post_id":"q"}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"\ud800\udc00\u00e9\/\"\\"}}`,
	"{\"id\":\"e1\",\"event\":\"post.published\",\"data\":{\"post_id\":\"a\tb\"}}",
	"{\"id\":\"e1\",\"event\":\"post.published\",\"data\":{\"post_id\":\"\xff\xfe\"}}",
	`{"id":"e1","event":"post.published","data":{"post_id":"p","x":{"y":[true,false,null,{}]}}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p","x":{"y":[tru]}}}`,
	`{"id":"e1","event":"post.published","data":{"post_id":"p","x":{"y":[1}}}}`,
	`{"id":"e1","event":"post.published","unknown":[{"a":"b"}],"data":{"post_id":"p"}}`,
	`{"id":"e1","event":"post.published","unknown":[{"a":"b"]}],"data":{"post_id":"p"}}`,
	`{"id":"e1","event":"post.published","data":{"x":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `}}`,
	`{"id":"e1","event":"post.published","data":{"x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}}`,
	`{"id":"e1","event":"post.published","data":{"x":` + strings.Repeat("[", 20000),
}

// FuzzVerify checks every preset's proof of authenticity (Verify, Handshake, VerifyToken),
// under the key of its simulated deliveries.
func FuzzVerify(f *testing.F) {
	addSeeds(f)
	presets := fuzzPresets(f)
	f.Fuzz(func(t *testing.T, body []byte, head string) {
		h := parseHeaders(head)
		for _, c := range presets {
			checkSignature(t, c, h, body, len(body)+len(head))
			checkHandshake(t, c, h, len(head))
			checkToken(t, c, body)
		}
	})
}

// checkSignature holds a Signed preset's Verify to its contract on any body and headers: no
// more allocated than the input's size allows, and an Unauthorized failure, naming no secret.
func checkSignature(t *testing.T, c fuzzPreset, h headers, body []byte, size int) {
	s, ok := c.p.(providers.Signed)
	if !ok {
		return
	}
	var err error
	checkAllocs(t, c.name+" Verify", size, func() { err = s.Verify(h, body, []*providers.Key{c.key}, fuzzNow) })
	if err != nil {
		checkReason(t, c.name+" Verify", err, failure.Unauthorized)
		if strings.Contains(err.Error(), c.secret) {
			t.Fatalf("%s: Verify's error shows the secret: %v", c.name, err)
		}
	}
}

// checkHandshake holds a Handshaker to its contract on a query of any names and values: an
// Unauthorized failure, or an answer of a content type and no more than the query echoes.
func checkHandshake(t *testing.T, c fuzzPreset, q headers, size int) {
	hs, ok := c.p.(providers.Handshaker)
	if !ok {
		return
	}
	var ct string
	var answer []byte
	var err error
	checkAllocs(t, c.name+" Handshake", size, func() { ct, answer, err = hs.Handshake(q, []*providers.Key{c.key}) })
	switch {
	case err != nil:
		checkReason(t, c.name+" Handshake", err, failure.Unauthorized)
	case ct == "" || len(answer) > size+256:
		t.Fatalf("%s: Handshake answered %q, %d bytes to %d bytes of query", c.name, ct, len(answer), size)
	}
}

// checkToken holds an Unsigned preset to its contract on any token: refused unless it is the
// secret, as Unauthorized, and never shown in the error.
func checkToken(t *testing.T, c fuzzPreset, token []byte) {
	u, ok := c.p.(providers.Unsigned)
	if !ok {
		return
	}
	var err error
	checkAllocs(t, c.name+" VerifyToken", len(token), func() { err = u.VerifyToken(token, []*providers.Key{c.key}) })
	switch {
	case err == nil && string(token) != c.secret:
		t.Fatalf("%s: token %q accepted", c.name, token)
	case err != nil:
		checkReason(t, c.name+" VerifyToken", err, failure.Unauthorized)
		if len(token) >= 4 && strings.Contains(err.Error(), string(token)) {
			t.Fatalf("%s: VerifyToken's error shows the token: %v", c.name, err)
		}
	}
}

// FuzzNormalize checks every preset's Normalize, and, for the presets whose bodies carry
// the canonical data object, that they read what encoding/json reads.
func FuzzNormalize(f *testing.F) {
	addSeeds(f)
	presets := fuzzPresets(f)
	f.Fuzz(func(t *testing.T, body []byte, head string) {
		h := parseHeaders(head)
		strict := providers.StrictJSON(body) == nil
		for _, c := range presets {
			var ev event.Event
			var err error
			checkAllocs(t, c.name+" Normalize", len(body)+len(head), func() {
				ev = event.Event{Source: "src", Provider: c.name, ReceivedAt: fuzzNow, Raw: body}
				err = c.p.Normalize(h, body, &ev)
			})
			if err != nil {
				reason := checkReason(t, c.name+" Normalize", err, failure.Unnormalizable)
				if canonicalBodies[c.name] && strict && strings.HasPrefix(reason, "malformed JSON") &&
					!strings.HasPrefix(reason, "malformed JSON: want an object, got ") {
					t.Fatalf("%s: strict JSON reported as %q", c.name, reason)
				}
				continue
			}
			if !strict {
				t.Fatalf("%s: normalized a body that is not strict JSON (%v)", c.name, providers.StrictJSON(body))
			}
			checkEvent(t, c.name, &ev, body)
			if canonicalBodies[c.name] {
				checkAgainstJSON(t, c.p, body, &ev)
			}
		}
		for _, c := range presets {
			checkSplit(t, c, h, body, strict, len(body)+len(head))
			checkPage(t, c, body)
		}
	})
}

// checkSplit holds a Splitter to what Normalize is held to, for each part of a delivery.
func checkSplit(t *testing.T, c fuzzPreset, h headers, body []byte, strict bool, size int) {
	sp, ok := c.p.(providers.Splitter)
	if !ok {
		return
	}
	var parts []providers.Part
	var err error
	checkAllocs(t, c.name+" Split", size, func() { parts, err = sp.Split(h, body) })
	if err != nil {
		checkReason(t, c.name+" Split", err, failure.Unnormalizable)
		return
	}
	if !strict {
		t.Fatalf("%s: split a body that is not strict JSON (%v)", c.name, providers.StrictJSON(body))
	}
	for _, part := range parts {
		if part.Ignored != "" {
			if !utf8.ValidString(part.Ignored) {
				t.Fatalf("%s: a part ignored for %q, not UTF-8", c.name, part.Ignored)
			}
			continue
		}
		ev := part.Event
		ev.Source, ev.Provider, ev.ReceivedAt, ev.Raw = "src", c.name, fuzzNow, body
		checkEvent(t, c.name, &ev, body)
	}
}

// checkPage holds a Poller's reading of an API page to the contract of Normalize's errors,
// and its items to UTF-8 ids.
func checkPage(t *testing.T, c fuzzPreset, body []byte) {
	pl, ok := c.p.(providers.Poller)
	if !ok {
		return
	}
	var items []providers.Item
	var err error
	checkAllocs(t, c.name+" Page", len(body), func() { items, _, err = pl.Page(body) })
	if err != nil {
		checkReason(t, c.name+" Page", err, failure.Unnormalizable)
		return
	}
	for _, it := range items {
		if it.ID == "" || !utf8.ValidString(it.ID) {
			t.Fatalf("%s: a page item with id %q", c.name, it.ID)
		}
	}
}

// canonicalBodies are the presets whose body is the envelope with the canonical data object.
var canonicalBodies = map[string]bool{"codivupload": true, "standard-webhooks": true}

type fuzzPreset struct {
	name, secret string
	p            providers.Preset
	key          *providers.Key
}

// fuzzPresets are every registered preset, configured as the other tests configure it
// (testSettings), and the configurations that take the id from a header (headerIDPresets).
func fuzzPresets(f *testing.F) []fuzzPreset {
	var out []fuzzPreset
	add := func(label, name string, p providers.Preset) {
		secret, ok := simulationSecrets[name]
		if !ok {
			f.Fatalf("no secret for %s in simulationSecrets", name)
		}
		key, err := p.Key(secret)
		if err != nil {
			f.Fatalf("%s: Key: %v", label, err)
		}
		out = append(out, fuzzPreset{label, secret, p, key})
	}
	for _, name := range providers.Names() {
		add(name, name, mustNew(f, name))
	}
	for label, c := range headerIDPresets {
		p, err := providers.New(c.name, c.settings)
		if err != nil {
			f.Fatalf("%s: %v", label, err)
		}
		add(label, c.name, p)
	}
	return out
}

// checkReason checks that err is a failure of kind with a reason fit for an answer and a
// Kafka header: UTF-8, short; and returns the reason.
func checkReason(t *testing.T, what string, err error, kind failure.Kind) string {
	t.Helper()
	fe, ok := errors.AsType[*failure.Error](err)
	switch {
	case !ok || fe.Kind != kind:
		t.Fatalf("%s: err = %#v, want a *failure.Error of kind %d", what, err, kind)
	case fe.Reason == "" || !utf8.ValidString(fe.Reason) || len(fe.Reason) > 512:
		t.Fatalf("%s: reason %q: want UTF-8, 1 to 512 bytes", what, fe.Reason)
	}
	return fe.Reason
}

// checkEvent checks what a normalized event must hold whatever the preset: a UTF-8 id (the
// record key and an Avro string), a known type, UTF-8 strings, and the caller's fields kept.
func checkEvent(t *testing.T, name string, ev *event.Event, body []byte) {
	t.Helper()
	if ev.ID == "" || !utf8.ValidString(ev.ID) || !event.Known(ev.Type) {
		t.Fatalf("%s: normalized to id %q, type %q", name, ev.ID, ev.Type)
	}
	if ev.Source != "src" || ev.Provider != name || !ev.ReceivedAt.Equal(fuzzNow) || !bytes.Equal(ev.Raw, body) {
		t.Fatalf("%s: Normalize dropped the caller's fields: %+v", name, ev)
	}
	for field, v := range stringFields(ev) {
		if v != nil && !utf8.ValidString(*v) {
			t.Fatalf("%s: %s = %q is not UTF-8", name, field, *v)
		}
	}
}

func checkAgainstJSON(t *testing.T, p providers.Preset, body []byte, ev *event.Event) {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("%T: normalized a body encoding/json refuses: %v", p, err)
	}
	if _, ok := p.(providers.CodivUpload); ok && m["id"] != ev.ID {
		t.Fatalf("id = %q, encoding/json reads %q", ev.ID, m["id"])
	}
	data, _ := m["data"].(map[string]any)
	for name, got := range stringFields(ev) {
		want, ok := data[name].(string)
		switch {
		case ok && (got == nil || *got != want):
			t.Fatalf("%T: %s = %v, encoding/json reads %q", p, name, got, want)
		case !ok && got != nil:
			t.Fatalf("%T: %s = %q, encoding/json reads %v", p, name, *got, data[name])
		}
	}
}

// Bounds on what one call may allocate: a constant, plus a share of the input's size. The
// constant leaves room for a decoder built afresh when its pool is empty (under -race,
// sync.Pool drops a quarter of what it is given: 45 kB measured for meta). The bytes per
// input byte leave room for the decoder's nesting stack, the most per input byte: 8 bytes a
// level for one byte of input ('['), doubled as it grows (up to its 10,000 levels). The count
// leaves room for presets that decode into Go values (an allocation per id or list, a few
// bytes of input each), yet fails one that allocates more often than every other input
// byte, or by anything but the input (a loop, a retry, an amplification).
const (
	allocBase     = 64 << 10
	allocPerByte  = 32
	allocsBase    = 64
	bytesPerAlloc = 2
)

// checkAllocs fails t if f, once warm, allocates more than the bounds above for an input of
// size bytes: allocation must not grow with anything but the input (not with its nesting,
// its number of members, or a value it repeats).
func checkAllocs(t *testing.T, what string, size int, f func()) {
	t.Helper()
	n, bytes := allocated(f)
	maxN, maxBytes := uint64(allocsBase+size/bytesPerAlloc), uint64(allocBase+allocPerByte*size)
	if n > maxN || bytes > maxBytes {
		t.Fatalf("%s: %d allocations, %d bytes for %d bytes of input; want at most %d and %d",
			what, n, bytes, size, maxN, maxBytes)
	}
}

// allocated returns the allocations and bytes of one call of f, once warm.
func allocated(f func()) (n, bytes uint64) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // as testing.AllocsPerRun: fewer strangers' allocations
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

var sink []byte

// TestAllocatedMeasures checks that the allocation bound can fail: allocated sees what a
// call allocates.
func TestAllocatedMeasures(t *testing.T) {
	n, bytes := allocated(func() { sink = make([]byte, 1<<20) })
	if n < 1 || bytes < 1<<20 {
		t.Fatalf("allocated = %d, %d bytes for a 1 MiB make", n, bytes)
	}
}
