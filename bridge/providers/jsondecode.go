package providers

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/socialbridge/bridge/bridge/failure"
)

// The presets whose bodies nest (arrays of events, objects in objects) decode them with
// github.com/go-json-experiment/json into Go structs: it refuses duplicate member names and
// invalid UTF-8, which the providers never send and an attacker might. Ids, which providers
// send as strings or numbers, are kept as jsontext.Value and read with scalarText.

// unmarshalBody decodes a whole body into v, failing as Unnormalizable with where and why,
// in words that name JSON, not Go types.
func unmarshalBody(body []byte, v any) error {
	err := unmarshal(body, v)
	if fe, ok := errors.AsType[*failure.Error](err); ok && strings.HasPrefix(fe.Reason, "want ") {
		fe.Reason = "the body: " + fe.Reason
	}
	return err
}

// unmarshal decodes a value of a body into v, failing as unmarshalBody does; a failure of
// the value itself, not of a member, reads "want …, got …".
func unmarshal(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return jsonFailure(err)
	}
	return nil
}

func jsonFailure(err error) error {
	if se, ok := errors.AsType[*jsontext.SyntacticError](err); ok {
		return failure.New(failure.Unnormalizable, "malformed JSON: %v (offset %d)", se.Err, se.ByteOffset)
	}
	if se, ok := errors.AsType[*json.SemanticError](err); ok {
		want := fmt.Sprintf("want %s, got %s", goKind(se.GoType), jsonKind(se.JSONKind))
		if se.JSONPointer == "" {
			return failure.New(failure.Unnormalizable, "%s", want)
		}
		return failure.New(failure.Unnormalizable, "field %s: %s", quote(dotted(se.JSONPointer)), want)
	}
	return failure.New(failure.Unnormalizable, "malformed JSON")
}

// dotted writes a JSON pointer as the dotted path the rest of the bridge's messages use.
func dotted(p jsontext.Pointer) string {
	var names []string
	for name := range p.Tokens() {
		names = append(names, name)
	}
	return strings.Join(names, ".")
}

var valueType = reflect.TypeFor[jsontext.Value]()

func goKind(t reflect.Type) string {
	if t == nil {
		return "another value"
	}
	switch k := t.Kind(); {
	case t == valueType:
		return "any value"
	case k == reflect.String:
		return "a string"
	case k == reflect.Bool:
		return "a boolean"
	case k >= reflect.Int && k <= reflect.Float64:
		return "a number"
	case k == reflect.Struct || k == reflect.Map:
		return "an object"
	case k == reflect.Slice || k == reflect.Array:
		return "an array"
	case k == reflect.Pointer:
		return goKind(t.Elem())
	}
	return "another value"
}

func jsonKind(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "another value"
}

// marshalRaw encodes v, whose jsontext.Value fields hold what a provider sent, keeping
// their strings escaped as they were: what a narrowed raw payload is made with.
func marshalRaw(v any) []byte {
	b, err := json.Marshal(v, jsontext.PreserveRawStrings(true))
	if err != nil {
		// v holds values that were decoded from valid JSON: this cannot happen.
		panic(fmt.Sprintf("providers: re-encoding a decoded delivery: %v", err))
	}
	return b
}

// scalarText returns the text of a JSON string, or the digits of a JSON number, and ""
// for anything else (absent, null, an object…): how ids sent either way are read.
func scalarText(v jsontext.Value) string {
	switch v.Kind() {
	case '"':
		var s string
		_ = json.Unmarshal(v, &s) // v was validated when its body was decoded
		return s
	case '0':
		return string(v)
	}
	return ""
}

// present reports whether v is a member that was sent with a value other than null.
func present(v jsontext.Value) bool {
	return len(v) > 0 && v.Kind() != 'n'
}

// unixTime reads a time sent as unix seconds, a number or a string of digits, or as an RFC
// 3339 string; ok is false for anything else, and for absent values.
func unixTime(v jsontext.Value) (t time.Time, ok bool) {
	s := scalarText(v)
	if s == "" {
		return time.Time{}, false
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f < math.MaxInt32*4 {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
	}
	t, err := time.Parse(time.RFC3339, s)
	return t.UTC(), err == nil
}

// ptr returns a pointer to s, or nil for "": what a typed field is set from.
func ptr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// timePtr returns a pointer to t, or nil for the zero time.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// unnormalizable is a failure of a body that cannot be mapped.
func unnormalizable(format string, args ...any) error {
	return failure.New(failure.Unnormalizable, format, args...)
}

// reasonOf is the reason of a failure from this package's decoding.
func reasonOf(err error) string {
	if fe, ok := errors.AsType[*failure.Error](err); ok {
		return fe.Reason
	}
	return err.Error()
}

// member is one name and raw value of a JSON object, in the order it was sent.
type member struct {
	name  string
	value jsontext.Value
}

// objectMembers reads body, which must be one JSON object, into its members in order: for
// bodies whose member names are not known in advance (X's event arrays).
func objectMembers(body []byte) ([]member, error) {
	d := jsontext.NewDecoder(bytes.NewReader(body))
	tok, err := d.ReadToken()
	if err != nil {
		return nil, jsonFailure(err)
	}
	if kind := tok.Kind(); kind != '{' {
		if err := json.Unmarshal(body, new(jsontext.Value)); err != nil {
			return nil, jsonFailure(err)
		}
		return nil, unnormalizable("malformed JSON: want an object, got %s", jsonKind(kind))
	}
	var ms []member
	for d.PeekKind() == '"' {
		tok, err := d.ReadToken()
		if err != nil {
			return nil, jsonFailure(err)
		}
		name := tok.String() // before the next read voids tok
		value, err := d.ReadValue()
		if err != nil {
			return nil, jsonFailure(err)
		}
		ms = append(ms, member{name, bytes.Clone(value)})
	}
	if _, err := d.ReadToken(); err != nil { // the closing brace
		return nil, jsonFailure(err)
	}
	switch _, err := d.ReadToken(); {
	case err == nil:
		return nil, unnormalizable("malformed JSON: more after the object (offset %d)", d.InputOffset())
	case !errors.Is(err, io.EOF):
		return nil, jsonFailure(err)
	}
	return ms, nil
}

// appendObject writes members as one JSON object, their values as they were sent.
func appendObject(b []byte, ms ...member) []byte {
	b = append(b, '{')
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b, _ = jsontext.AppendQuote(b, m.name) // names came from valid JSON
		b = append(append(b, ':'), m.value...)
	}
	return append(b, '}')
}
