package providers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// strictVerdict is how the body must be judged, by encoding/json plus the three rules it
// does not enforce: nil if body is strict JSON, else the rules it breaks ("syntax" alone, or
// any of "utf8", "surrogate", "duplicate").
func strictVerdict(body []byte) []string {
	if !json.Valid(body) {
		return []string{"syntax"}
	}
	var broken []string
	if !utf8.Valid(body) {
		broken = append(broken, "utf8")
	}
	if hasLoneSurrogate(body) {
		broken = append(broken, "surrogate")
	}
	if hasDuplicateName(body) {
		broken = append(broken, "duplicate")
	}
	return broken
}

// hasLoneSurrogate reports whether valid JSON text b has a \u escape of half a surrogate
// pair without its other half. In valid JSON a backslash only ever starts an escape.
func hasLoneSurrogate(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if b[i+1] != 'u' {
			i++
			continue
		}
		r := hex4(b[i+2 : i+6])
		i += 5
		if !utf16.IsSurrogate(r) {
			continue
		}
		if r >= 0xdc00 || i+6 >= len(b) || b[i+1] != '\\' || b[i+2] != 'u' ||
			utf16.DecodeRune(r, hex4(b[i+3:i+7])) == utf8.RuneError {
			return true
		}
		i += 6
	}
	return false
}

func hex4(b []byte) rune {
	n, _ := strconv.ParseUint(string(b), 16, 16)
	return rune(n)
}

// hasDuplicateName reports whether an object of valid JSON text b names a member twice,
// comparing names as encoding/json decodes them.
func hasDuplicateName(b []byte) bool {
	d := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		names  map[string]bool
		object bool
		name   bool // the next string of an object is a name
	}
	var stack []frame
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		top := len(stack) - 1
		switch tok {
		case json.Delim('{'), json.Delim('['):
			if top >= 0 && stack[top].object {
				stack[top].name = true
			}
			stack = append(stack, frame{names: map[string]bool{}, object: tok == json.Delim('{'), name: true})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:top]
			continue
		}
		if top < 0 || !stack[top].object {
			continue
		}
		if f := &stack[top]; f.name {
			if f.names[tok.(string)] {
				return true
			}
			f.names[tok.(string)], f.name = true, false
		} else {
			f.name = true
		}
	}
}

// scanVerdict is how the reader judges body, reading it as readEnvelope does: "" if it is
// strict JSON (an object or not), else the reason of its error.
func scanVerdict(body []byte) string {
	_, err := readEnvelope(body, "type")
	if err == nil || strings.HasPrefix(err.Error(), "malformed JSON: want an object, got ") {
		return ""
	}
	return err.Error()
}

const maxDepth = 10000 // jsontext's, as encoding/json's

// trickyJSON are bodies on the edges of the grammar, valid or not.
var trickyJSON = []string{
	"", " ", "\t\r\n", "{", "}", "[", "]", "{}", "[]", " {} ", "{}x", "{} x", "{}{}", "[]]", "{}}",
	"\xef\xbb\xbf{}", "\x00", "\xff", "{\xff:1}", `{"a"}`, `{"a" 1}`, `{"a":}`, `{"a":1,}`, `{,}`,
	`{"a":1 "b":2}`, `{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"a":{"b":1,"b":2}}`, `{"a":[{"b":1,"b":2}]}`,
	`{"a":{"b":1},"b":{"b":2}}`, `{1:2}`, `{'a':1}`, `[1,]`, `[,1]`, `[1 2]`, `[1,,2]`,
	"1", "-", "-0", "-01", "01", "00", "0.", "0.0", ".5", "1.", "1.5.3", "1e", "1e+", "1e-5",
	"1E5", "1e5.0", "1ex", "+1", "-a", "0x10", "1_000", "123456789012345678901234567890e99999",
	"-" + strings.Repeat("9", 400) + "." + strings.Repeat("0", 400) + "E-" + strings.Repeat("9", 400),
	"true", "tru", "truex", "trUe", "t", "false", "fals", "falsy", "null", "nul", "nulll", "NaN",
	"Infinity", `""`, `"`, `"a`, `"\`, `"\"`, `"\\"`, `"\/"`, `"\x"`, `"\u"`, `"\u12"`, `"\u12"x`,
	`"\u123g"`, `"\uD800"`, `"\ud800\udc00"`, `"\udc00"`, `"\udbff"`, `"\ud800\u0041"`, `"\ud800x"`,
	`"\\ud800"`, `"\U0041"`, "\"a\tb\"", "\"a\nb\"",
	"\"\x1f\"", "\"\x7f\"", "\"\xff\xfe\"", "\"\xed\xa0\x80\"", "\"\xc3\"", "\"é\"",
	`{"a":[1,{"b":[true,false,null,"x"]}],"c":{}}`, `{"a":[1,{"b":]}`, `{"a":[1}`, `{"a":{]}`,
	`{"data":{"post_id":"p","x":[1,2,{"y":"\u00e9"}]},"type":"post.published"}`,
	`{"data":{"post_id":"p","x":[1,2,{"y":"\u00g9"}]},"type":"post.published"}`,
	`{"data":{"post_id":"p","post_id":"q"},"type":"post.published"}`,
	`{"data":{"post_id":"\ud800"},"type":"post.published"}`,
	"{\"data\":{\"post_id\":\"\xff\"},\"type\":\"post.published\"}",
	`{"data":{"post_id":"p"}} {"data":1}`, `{"id":"1","data":{"x":01}}`, `{"id":"1","data":{"x":-}}`,
	"[" + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth),
	"[" + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth+1),
	`{"a":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + "}",
	`{"a":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + "}",
	`{"a":` + strings.Repeat(`{"b":`, maxDepth-1) + "1" + strings.Repeat("}", maxDepth),
	`{"a":` + strings.Repeat(`{"b":`, maxDepth) + "1" + strings.Repeat("}", maxDepth+1),
	`{"data":` + strings.Repeat(`{"b":`, maxDepth-1) + "1" + strings.Repeat("}", maxDepth),
	`{"data":` + strings.Repeat(`{"b":`, maxDepth) + "1" + strings.Repeat("}", maxDepth+1),
	strings.Repeat("[", maxDepth) + "{}" + strings.Repeat("]", maxDepth),
	strings.Repeat("[", maxDepth-1) + "{}" + strings.Repeat("]", maxDepth-1),
	strings.Repeat("[", maxDepth-1) + "[]" + strings.Repeat("]", maxDepth-1),
	strings.Repeat("[", 1<<20),
	strings.Repeat("[{", 100) + `"a"`,
	strings.Repeat(`{"a":[`, 100) + strings.Repeat("]}", 100),
	strings.Repeat(`{"a":[`, 100) + strings.Repeat("}]", 100),
}

// ruleReasons is what a refusal for breaking each strict-only rule says.
var ruleReasons = map[string]string{
	"utf8": "invalid UTF-8", "surrogate": "invalid surrogate pair", "duplicate": "duplicate key",
}

// checkVerdict checks that the reader accepts body exactly when it is strict JSON, and
// names a rule it breaks when only a strict-only rule refuses it.
func checkVerdict(t *testing.T, body []byte) {
	t.Helper()
	broken, got := strictVerdict(body), scanVerdict(body)
	name := shorten(fmt.Sprintf("%q", body))
	switch {
	case len(broken) == 0 && got != "":
		t.Errorf("%s: strict JSON refused: %s", name, got)
	case len(broken) > 0 && got == "":
		t.Errorf("%s: accepted, but it breaks %v", name, broken)
	case len(broken) > 0 && !strings.HasPrefix(got, "malformed JSON: "):
		t.Errorf("%s: refused as %q, want malformed JSON", name, got)
	case len(broken) > 0 && broken[0] != "syntax" && !slices.ContainsFunc(broken, func(rule string) bool {
		return strings.Contains(got, ruleReasons[rule])
	}):
		t.Errorf("%s: refused as %q, want a reason naming one of %v", name, got, broken)
	}
}

func TestScanIsStrictJSON(t *testing.T) {
	for _, body := range trickyJSON {
		checkVerdict(t, []byte(body))
	}
}

// TestScanReasons pins the reasons of the refusals encoding/json would not make: each
// names what is wrong and where, since the reason is all a reader of the dead-letter topic
// has.
func TestScanReasons(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"id":"\ud800"}`, "malformed JSON: invalid surrogate pair `\\ud800\"}` in string in \"/id\" (offset 7)"},
		{`{"id":"\udbff"}`, "malformed JSON: invalid surrogate pair `\\udbff\"}` in string in \"/id\" (offset 7)"},
		{`{"id":"x\udc00"}`, "malformed JSON: invalid surrogate pair `\\udc00\"}` in string in \"/id\" (offset 8)"},
		{"{\"id\":\"\xff\"}", `malformed JSON: invalid UTF-8 in "/id" (offset 7)`},
		{"{\"id\":\"a\xed\xa0\x80\"}", `malformed JSON: invalid UTF-8 in "/id" (offset 8)`},
		{`{"id":"x","id":null}`, `malformed JSON: duplicate key "id" (offset 10)`},
		{`{"id":"x","\u0069d":"y"}`, `malformed JSON: duplicate key "id" (offset 10)`},
		{`{"id":"x","data":{"post_id":"a","post_id":"b"}}`, `malformed JSON: duplicate key "post_id" in "/data" (offset 32)`},
		{`{"id":"x"} x`, `malformed JSON: invalid character 'x' after top-level value (offset 11)`},
		{`{"id":"x"}{}`, `malformed JSON: invalid character '{' after top-level value (offset 10)`},
		{`{"id":"x"`, `malformed JSON: unexpected end of JSON input (offset 9)`},
		{``, `malformed JSON: unexpected end of JSON input (offset 0)`},
		{`{"id":x}`, `malformed JSON: invalid character 'x' at start of value in "/id" (offset 6)`},
		{`[1,2]`, `malformed JSON: want an object, got an array`},
	} {
		_, err := readEnvelope([]byte(c.body), "type")
		if err == nil || err.Error() != c.want {
			t.Errorf("%s:\n got %v\nwant %s", c.body, err, c.want)
		}
	}
}

// TestScanDepth checks the nesting limit, encoding/json's, on bodies that would take a
// recursive reader deep, in the body and in its data.
func TestScanDepth(t *testing.T) {
	for _, body := range []string{
		strings.Repeat("[", 1<<20),
		`{"a":` + strings.Repeat("[", 1<<20),
		`{"data":` + strings.Repeat(`{"":`, 1<<18),
		`{"data":{"x":` + strings.Repeat(`[`, 1<<18),
	} {
		if got := scanVerdict([]byte(body)); !strings.Contains(got, "exceeded max depth") {
			t.Errorf("%s…: %q, want exceeded max depth", body[:10], got)
		}
	}
}

// checkMembers checks that the members of body, strict JSON with an object at the top, read
// by next as readEnvelope reads them, are those encoding/json reads, and so for nested
// objects, read both in the same pass (enter) and from their text (objectOf).
func checkMembers(t *testing.T, body []byte) {
	t.Helper()
	obj, err := parseObject(body)
	if err != nil {
		t.Fatalf("parseObject: %v", err)
	}
	defer obj.close()
	compareMembers(t, &obj, body, 3)
	if obj.err != nil {
		t.Fatalf("strict JSON failed: %v", obj.err)
	}
	if obj.text() != strings.TrimSpace(string(body)) {
		t.Fatalf("text() = %q", obj.text())
	}
}

// compareMembers compares the members of obj with those encoding/json reads in text, and
// those of its objects nested up to depth deep.
func compareMembers(t *testing.T, obj *object, text []byte, depth int) {
	t.Helper()
	var want map[string]json.RawMessage
	if err := json.Unmarshal(text, &want); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	got := map[string]string{}
	for i := 0; ; i++ {
		name, ok := obj.name()
		if !ok {
			break
		}
		if i%2 == 1 && depth > 1 {
			if inner, ok := obj.enter(); ok {
				compareMembers(t, &inner, want[name], depth-1)
				if inner.err != nil {
					t.Fatalf("member %q: %v", name, inner.err)
				}
				got[name] = inner.text()
				continue
			}
		}
		value, ok := obj.value()
		if !ok {
			break
		}
		got[name] = value
		if value[0] == '{' && depth > 1 {
			inner := objectOf(value)
			compareMembers(t, &inner, []byte(value), depth-1)
		}
	}
	if obj.err != nil {
		t.Fatalf("%v", obj.err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d members, encoding/json reads %d", len(got), len(want))
	}
	for name, value := range got {
		if w, ok := want[name]; !ok || string(w) != value {
			t.Fatalf("member %q = %q, encoding/json reads %q", name, value, w)
		}
	}
}

func TestScanMembers(t *testing.T) {
	for _, body := range trickyJSON {
		if strictVerdict([]byte(body)) == nil && strings.HasPrefix(strings.TrimSpace(body), "{") {
			checkMembers(t, []byte(body))
		}
	}
}

// FuzzScanStrict checks that the reader accepts any bytes exactly when they are strict JSON
// (encoding/json's grammar, UTF-8, paired surrogates, unique names), and that it reads valid
// objects as encoding/json does.
func FuzzScanStrict(f *testing.F) {
	for _, body := range trickyJSON {
		if len(body) < 1<<15 {
			f.Add([]byte(body))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkVerdict(t, body)
		if strictVerdict(body) == nil && bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
			checkMembers(t, body)
		}
	})
}
