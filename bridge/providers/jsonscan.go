package providers

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/socialbridge/bridge/bridge/failure"
)

// object reads a JSON object that encoding/json has already validated, member by member and
// without building Go values: its strings are substrings of one copy of the body, so reading
// a delivery costs one allocation however many fields it has.
type object struct {
	s string // the object's text, from '{' on
	i int    // where the next member starts
}

// parseObject copies body and checks that it is one well-formed JSON object.
func parseObject(body []byte) (object, error) {
	if !json.Valid(body) {
		return object{}, malformed(body)
	}
	s := string(body)
	s = s[skipSpace(s, 0):]
	if s[0] != '{' {
		return object{}, failure.New(failure.Unnormalizable, "malformed JSON: want an object, got %s", describe(s))
	}
	return object{s: s, i: 1}, nil
}

// malformed says where body, which is not valid JSON, goes wrong.
func malformed(body []byte) error {
	err := json.Unmarshal(body, new(json.RawMessage))
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return failure.New(failure.Unnormalizable, "malformed JSON: %v (offset %d)", se, se.Offset)
	}
	return failure.New(failure.Unnormalizable, "malformed JSON: %v", err)
}

// next returns the next member's name, decoded, and its value as raw JSON text.
func (o *object) next() (name, value string, ok bool) {
	i := skipSpace(o.s, o.i)
	if o.s[i] == ',' {
		i = skipSpace(o.s, i+1)
	}
	if o.s[i] == '}' {
		return "", "", false
	}
	end := stringEnd(o.s, i)
	name = text(o.s[i:end])
	i = skipSpace(o.s, skipSpace(o.s, end)+1) // past the ':'
	end = valueEnd(o.s, i)
	o.i = end
	return name, o.s[i:end], true
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the value that starts at s[i].
func valueEnd(s string, i int) int {
	switch s[i] {
	case '"':
		return stringEnd(s, i)
	case '{', '[':
		for depth := 0; ; i++ {
			switch s[i] {
			case '"':
				i = stringEnd(s, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	}
	for i < len(s) && !endsScalar(s[i]) {
		i++
	}
	return i
}

// endsScalar reports whether c ends a number, true, false or null.
func endsScalar(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// stringEnd returns the index just past the string that starts at s[i].
func stringEnd(s string, i int) int {
	for i++; ; i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
}

// text returns the value of the JSON string tok.
func text(tok string) string {
	s := tok[1 : len(tok)-1]
	if strings.IndexByte(s, '\\') < 0 && utf8.ValidString(s) {
		return s
	}
	var v string
	_ = json.Unmarshal([]byte(tok), &v) // tok was validated, so this cannot fail
	return v
}

// describe shows a JSON value in an error message: an object or array by its kind, anything
// else by its value, shortened.
func describe(tok string) string {
	switch tok[0] {
	case '"':
		return quote(text(tok))
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return shorten(tok)
}

// quote quotes s for an error message, shortened.
func quote(s string) string {
	if short := shorten(s); len(short) < len(s) {
		return strconv.Quote(short[:len(short)-len("…")]) + "…"
	}
	return strconv.Quote(s)
}

// shorten cuts s to a length a log line and a Kafka header can hold.
func shorten(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > limit-utf8.UTFMax && !utf8.RuneStart(s[cut]) { // s need not be UTF-8
		cut--
	}
	return s[:cut] + "…"
}

// decoder turns a JSON value into a T; want says what it accepts, for error messages.
type decoder[T any] struct {
	want   string
	decode func(tok string) (T, bool)
}

var (
	asString = decoder[string]{"a string", decodeString}
	asTime   = decoder[time.Time]{"an RFC 3339 time", decodeTime}
	asBool   = decoder[bool]{"a boolean", decodeBool}
	asInt32  = decoder[int32]{"a 32-bit integer", decodeInt32}
)

// decodeField decodes the value tok of the member key of parent ("" or "data.").
func decodeField[T any](parent, key, tok string, d decoder[T]) (T, error) {
	v, ok := d.decode(tok)
	if !ok {
		return v, failure.New(failure.Unnormalizable, "field %q: want %s, got %s", parent+key, d.want, describe(tok))
	}
	return v, nil
}

func decodeString(tok string) (string, bool) {
	if tok[0] != '"' {
		return "", false
	}
	return text(tok), true
}

func decodeTime(tok string) (time.Time, bool) {
	s, ok := decodeString(tok)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	return t.UTC(), err == nil
}

func decodeBool(tok string) (bool, bool) {
	return tok == "true", tok == "true" || tok == "false"
}

func decodeInt32(tok string) (int32, bool) {
	n, err := strconv.ParseInt(tok, 10, 32)
	return int32(n), err == nil
}
