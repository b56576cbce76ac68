package providers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// syntaxVerdict is how encoding/json judges body: "" if it is valid JSON, else the reason of
// the error Normalize must fail with.
func syntaxVerdict(body []byte) string {
	err := json.Unmarshal(body, new(json.RawMessage))
	if err == nil {
		return ""
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("malformed JSON: %v (offset %d)", se, se.Offset)
	}
	return "not a syntax error: " + err.Error()
}

// scanVerdict is how the scanner judges body, reading it as readEnvelope does: "" if it is
// valid JSON (an object or not), else the reason of its error.
func scanVerdict(body []byte) string {
	_, err := readEnvelope(body, "type")
	if err == nil || strings.HasPrefix(err.Error(), "malformed JSON: want an object, got ") {
		return ""
	}
	return err.Error()
}

// trickyJSON are bodies on the edges of the grammar, valid or not.
var trickyJSON = []string{
	"", " ", "\t\r\n", "{", "}", "[", "]", "{}", "[]", " {} ", "{}x", "{} x", "{}{}", "[]]", "{}}",
	"\xef\xbb\xbf{}", "\x00", "\xff", "{\xff:1}", `{"a"}`, `{"a" 1}`, `{"a":}`, `{"a":1,}`, `{,}`,
	`{"a":1 "b":2}`, `{"a":1,"a":2}`, `{1:2}`, `{'a':1}`, `[1,]`, `[,1]`, `[1 2]`, `[1,,2]`,
	"1", "-", "-0", "-01", "01", "00", "0.", "0.0", ".5", "1.", "1.5.3", "1e", "1e+", "1e-5",
	"1E5", "1e5.0", "1ex", "+1", "-a", "0x10", "1_000", "123456789012345678901234567890e99999",
	"-" + strings.Repeat("9", 400) + "." + strings.Repeat("0", 400) + "E-" + strings.Repeat("9", 400),
	"true", "tru", "truex", "trUe", "t", "false", "fals", "falsy", "null", "nul", "nulll", "NaN",
	"Infinity", `""`, `"`, `"a`, `"\`, `"\"`, `"\\"`, `"\/"`, `"\x"`, `"\u"`, `"\u12"`, `"\u12"x`,
	`"\u123g"`, `"\uD800"`, `"\ud800\udc00"`, `"\udc00"`, `"\U0041"`, "\"a\tb\"", "\"a\nb\"",
	"\"\x1f\"", "\"\x7f\"", "\"\xff\xfe\"", "\"\xed\xa0\x80\"", "\"\xc3\"", "\"é\"",
	`{"a":[1,{"b":[true,false,null,"x"]}],"c":{}}`, `{"a":[1,{"b":]}`, `{"a":[1}`, `{"a":{]}`,
	`{"data":{"post_id":"p","x":[1,2,{"y":"\u00e9"}]},"type":"post.published"}`,
	`{"data":{"post_id":"p","x":[1,2,{"y":"\u00g9"}]},"type":"post.published"}`,
	`{"data":{"post_id":"p"}} {"data":1}`, `{"id":"1","data":{"x":01}}`, `{"id":"1","data":{"x":-}}`,
	"[" + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth),
	"[" + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth+1),
	`{"a":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + "}",
	`{"a":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + "}",
	`{"a":` + strings.Repeat(`{"b":`, maxDepth-1) + "1" + strings.Repeat("}", maxDepth),
	`{"a":` + strings.Repeat(`{"b":`, maxDepth) + "1" + strings.Repeat("}", maxDepth+1),
	strings.Repeat("[", maxDepth) + "{}" + strings.Repeat("]", maxDepth),
	strings.Repeat("[", maxDepth-1) + "{}" + strings.Repeat("]", maxDepth-1),
	strings.Repeat("[", maxDepth-1) + "[]" + strings.Repeat("]", maxDepth-1),
	strings.Repeat("[", 1<<20),
	strings.Repeat("[{", 100) + `"a"`,
	strings.Repeat(`{"a":[`, 100) + strings.Repeat("]}", 100),
	strings.Repeat(`{"a":[`, 100) + strings.Repeat("}]", 100),
}

func TestScanMatchesEncodingJSON(t *testing.T) {
	for _, body := range trickyJSON {
		want, got := syntaxVerdict([]byte(body)), scanVerdict([]byte(body))
		if got != want {
			t.Errorf("%s: scanner says %q, encoding/json %q", shorten(fmt.Sprintf("%q", body)), got, want)
		}
		if valid := json.Valid([]byte(body)); valid != (got == "") {
			t.Errorf("%s: json.Valid = %t, scanner says %q", shorten(fmt.Sprintf("%q", body)), valid, got)
		}
	}
}

// TestScanDepth checks the nesting limit, encoding/json's, on bodies that would take a
// recursive scanner deep.
func TestScanDepth(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{strings.Repeat("[", 1<<20), "malformed JSON: invalid character '[' exceeded max depth (offset 10001)"},
		{`{"a":` + strings.Repeat("[", 1<<20), "malformed JSON: invalid character '[' exceeded max depth (offset 10005)"},
		{`{"a":` + strings.Repeat(`{"":`, 1<<18), "malformed JSON: invalid character '{' exceeded max depth (offset 40002)"},
	} {
		if got := scanVerdict([]byte(c.body)); got != c.want {
			t.Errorf("%s…: %q, want %q", c.body[:10], got, c.want)
		}
		if want := syntaxVerdict([]byte(c.body)); want != c.want {
			t.Errorf("%s…: encoding/json says %q, want %q", c.body[:10], want, c.want)
		}
	}
}

// checkMembers checks that the members of body, a valid JSON object, read by next as
// readEnvelope reads them, are those encoding/json reads, and so for nested objects.
func checkMembers(t *testing.T, body []byte) {
	obj, err := parseObject(body)
	if err != nil {
		t.Fatalf("parseObject: %v", err)
	}
	compareMembers(t, &obj, body, 3)
	if obj.err != nil {
		t.Fatalf("valid body failed: %v", obj.err)
	}
}

// compareMembers compares the members of obj with those encoding/json reads in text, and
// those of its objects nested up to depth deep.
func compareMembers(t *testing.T, obj *object, text []byte, depth int) {
	var want map[string]json.RawMessage
	if err := json.Unmarshal(text, &want); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	got := map[string]string{}
	for {
		name, value, ok := obj.next()
		if !ok {
			break
		}
		got[name] = value
	}
	if obj.err != nil {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("%d members, encoding/json reads %d", len(got), len(want))
	}
	for name, value := range got {
		if w, ok := want[name]; !ok || string(w) != value {
			t.Fatalf("member %q = %q, encoding/json reads %q", name, value, w)
		}
		if value[0] == '{' && depth > 1 {
			compareMembers(t, &object{s: value, i: 1}, []byte(value), depth-1)
		}
	}
}

// FuzzScanValid checks that the scanner judges any bytes as encoding/json does, failing with
// the same error at the same offset, and that it reads valid objects as encoding/json does.
func FuzzScanValid(f *testing.F) {
	for _, body := range trickyJSON {
		if len(body) < 1<<15 {
			f.Add([]byte(body))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		want, got := syntaxVerdict(body), scanVerdict(body)
		if got != want {
			t.Fatalf("scanner says %q, encoding/json %q", got, want)
		}
		if json.Valid(body) != (got == "") {
			t.Fatalf("json.Valid = %t, scanner says %q", json.Valid(body), got)
		}
		if got == "" && bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
			checkMembers(t, body)
		}
	})
}
