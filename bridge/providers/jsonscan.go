package providers

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/socialbridge/bridge/bridge/failure"
)

// Bodies are read with jsontext (go-json-experiment/json), which is strict where
// encoding/json is lenient: a string must be valid UTF-8 with no lone surrogate escape, and
// an object must not repeat a member name. Otherwise two different ids could decode to the
// same U+FFFD, a body could mean one thing to us and another to the next reader, and an
// Avro string could hold bytes other languages' decoders refuse.

// object reads a JSON object member by member without building Go values: its names and
// values are substrings of one string, so reading a delivery costs one allocation however
// many fields it has.
//
// The object of a body (from parseObject) checks the whole body as it goes, values it only
// skips included; once next has returned false, err says whether the body is strict JSON.
// An object from enter reads a member's value in the same pass; one from objectOf reads a
// value next returned, apart.
type object struct {
	s     string  // the text read: a body's copy, or an object's value
	r     *reader // nil once next has returned false or close was called
	own   bool    // o gives r back when done; an object from enter reads with its parent's
	top   bool    // s is a body: only whitespace may follow the object
	start int     // where in s the object begins
	end   int     // where in s the object ends, once next has returned false
	err   error   // the body's syntax error, once next has returned false
}

// reader is a pooled decoder with the buffer it reads from, so reading allocates nothing
// once warm.
type reader struct {
	buf bytes.Buffer
	dec jsontext.Decoder
}

var readers = sync.Pool{New: func() any { return new(reader) }}

// maxPooledBuffer bounds what a pooled reader keeps between requests: a rare large body
// should not pin its size in memory for every reader in the pool.
const maxPooledBuffer = 64 << 10

func openReader(s string) *reader {
	r := readers.Get().(*reader)
	r.buf.Reset()
	r.buf.WriteString(s)
	r.dec.Reset(&r.buf)
	return r
}

func (r *reader) release() {
	r.buf.Reset()
	r.dec.Reset(&r.buf) // no longer pins the last text
	if r.buf.Cap() > maxPooledBuffer {
		r.buf = bytes.Buffer{}
	}
	readers.Put(r)
}

// parseObject copies body and starts reading it as one JSON object. A body that is not an
// object fails here, as malformed when it is not strict JSON either; an object is checked by
// next.
func parseObject(body []byte) (object, error) {
	s := string(body)
	r := openReader(s)
	if r.dec.PeekKind() == '{' {
		if _, err := r.dec.ReadToken(); err == nil {
			return object{s: s, r: r, own: true, top: true, start: int(r.dec.InputOffset()) - 1}, nil
		}
	}
	defer r.release()
	v, err := r.dec.ReadValue()
	if err == nil {
		err = checkEnd(s, int(r.dec.InputOffset()))
	}
	if err != nil {
		return object{}, malformed(err, len(s))
	}
	return object{}, failure.New(failure.Unnormalizable, "malformed JSON: want an object, got %s", describe(string(v)))
}

// objectOf reads value, an object's text, as strictly as a body: for a value next returned,
// which a preset reads apart from the body.
func objectOf(value string) object {
	o := object{s: value, r: openReader(value), own: true}
	if _, err := o.r.dec.ReadToken(); err != nil {
		o.finish(err)
	}
	return o
}

// next returns the next member's name, decoded, and its value as raw JSON text. It returns
// false at the end of the object, or at its first syntax error (see err).
func (o *object) next() (name, value string, ok bool) {
	if name, ok = o.name(); !ok {
		return "", "", false
	}
	value, ok = o.value()
	return name, value, ok
}

// name reads the next member's name, decoded; value or enter reads its value. It returns
// false at the end of the object, or at its first syntax error (see err).
func (o *object) name() (string, bool) {
	if o.r == nil {
		return "", false
	}
	dec := &o.r.dec
	if dec.PeekKind() == '}' {
		_, err := dec.ReadToken()
		o.end = int(dec.InputOffset())
		if err == nil && o.top {
			err = checkEnd(o.s, o.end)
		}
		return "", o.finish(err)
	}
	tok, err := dec.ReadValue()
	if err != nil {
		return "", o.finish(err)
	}
	return text(o.s[int(dec.InputOffset())-len(tok) : dec.InputOffset()]), true
}

// value reads the value of the member whose name was read last, as raw JSON text.
func (o *object) value() (string, bool) {
	if o.r == nil {
		return "", false
	}
	dec := &o.r.dec
	tok, err := dec.ReadValue()
	if err != nil {
		return "", o.finish(err)
	}
	return o.s[int(dec.InputOffset())-len(tok) : dec.InputOffset()], true
}

// enter reads the value of the member whose name was read last, if it is an object, member
// by member: reading the body once, however deep the members that matter. Once the returned
// object's next has returned false, o reads on after it; the caller passes on its err. It
// returns false, reading nothing, for a value of another kind.
func (o *object) enter() (object, bool) {
	if o.r == nil {
		return object{}, false
	}
	dec := &o.r.dec
	if dec.PeekKind() != '{' {
		return object{}, false
	}
	if _, err := dec.ReadToken(); err != nil {
		o.finish(err)
		return object{}, false
	}
	return object{s: o.s, r: o.r, start: int(dec.InputOffset()) - 1}, true
}

// text returns the object's JSON text, once next has returned false without an error.
func (o *object) text() string { return o.s[o.start:o.end] }

// finish ends reading o, at its end or at the syntax error err. It returns false, for name
// and value to return.
func (o *object) finish(err error) bool {
	if err != nil {
		o.err = malformed(err, len(o.s))
	}
	o.close()
	return false
}

// close gives back what o reads with, for a caller that stops before the end of o.
func (o *object) close() {
	if o.r != nil && o.own {
		o.r.release()
	}
	o.r = nil
}

// checkEnd checks that only whitespace follows the body's value, which ends before s[i].
func checkEnd(s string, i int) error {
	rest := strings.TrimLeft(s[i:], " \t\r\n")
	if rest == "" {
		return nil
	}
	return failure.New(failure.Unnormalizable, "malformed JSON: invalid character %s after top-level value (offset %d)",
		quoteRune(rest), len(s)-len(rest))
}

// malformed is the failure of a body of n bytes that the decoder refused: what is wrong,
// where (a JSON pointer, inside the body's value) and at which byte.
func malformed(err error, n int) error {
	if _, ok := errors.AsType[*failure.Error](err); ok {
		return err
	}
	se, ok := errors.AsType[*jsontext.SyntacticError](err)
	if !ok {
		se = &jsontext.SyntacticError{Err: err}
	}
	what, ptr, offset := se.Err.Error(), se.JSONPointer, se.ByteOffset
	switch {
	case errors.Is(se.Err, io.EOF) || errors.Is(se.Err, io.ErrUnexpectedEOF):
		what, offset = "unexpected end of JSON input", int64(n)
	case errors.Is(se.Err, jsontext.ErrDuplicateName):
		what, ptr = "duplicate key "+quote(ptr.LastToken()), ptr.Parent()
	}
	where := ""
	if ptr != "" {
		where = " in " + quote(string(ptr))
	}
	return failure.New(failure.Unnormalizable, "malformed JSON: %s%s (offset %d)", what, where, offset)
}

// quoteRune quotes the first character of s as an error message shows it.
func quoteRune(s string) string {
	r, _ := utf8.DecodeRuneInString(s)
	return strconv.QuoteRune(r)
}

// text returns the value of the JSON string tok, a checked one.
func text(tok string) string {
	s := tok[1 : len(tok)-1]
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	b, _ := jsontext.AppendUnquote(nil, tok) // tok was checked, so this cannot fail
	return string(b)
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
