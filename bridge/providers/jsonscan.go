package providers

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/socialbridge/bridge/bridge/failure"
)

// object reads a JSON object member by member without building Go values: its strings are
// substrings of one copy of the body, so reading a delivery costs one allocation however many
// fields it has.
//
// The object of a body (from parseObject) checks the body's syntax as it goes, exactly as
// encoding/json would judge it, down to the values it only skips; once next has returned
// false, err says whether the body is JSON. An object inside it (from a value next returned)
// trusts the text, which was checked on the way.
type object struct {
	s     string // a body (checked), or an object's text from '{' on (trusted)
	i     int    // where the next member, or the ',' or '}' before it, starts
	check bool   // s is a body, to check as next goes
	more  bool   // next has read a member, so a ',' or the '}' comes next
	done  bool   // next has reached the end
	err   error  // the body's syntax error, once done
}

// parseObject copies body and starts reading it as one JSON object. A body that is not an
// object fails here, as malformed when it is not JSON either; an object is checked by next.
func parseObject(body []byte) (object, error) {
	s := string(body)
	i := skipSpace(s, 0)
	if i < len(s) && s[i] == '{' {
		return object{s: s, i: i + 1, check: true}, nil
	}
	end, err := checkValue(s, i, 0)
	if err == nil {
		err = checkEnd(s, end)
	}
	if err != nil {
		return object{}, err
	}
	return object{}, failure.New(failure.Unnormalizable, "malformed JSON: want an object, got %s", describe(s[i:]))
}

// next returns the next member's name, decoded, and its value as raw JSON text. It returns
// false at the end of the object, or, in a body, at its first syntax error (see err).
func (o *object) next() (name, value string, ok bool) {
	if o.check {
		return o.nextChecked()
	}
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

// nextChecked is next for a body: it checks the member it reads, nested values included,
// and, at the closing '}', that only whitespace follows.
func (o *object) nextChecked() (name, value string, ok bool) {
	if o.done {
		return "", "", false
	}
	s := o.s
	i := skipSpace(s, o.i)
	switch {
	case i == len(s):
		return o.fail(unexpectedEnd(s))
	case s[i] == '}':
		o.done, o.err = true, checkEnd(s, i+1)
		return "", "", false
	case !o.more:
	case s[i] != ',':
		return o.fail(invalidChar(s, i, "after object key:value pair"))
	default:
		if i = skipSpace(s, i+1); i == len(s) {
			return o.fail(unexpectedEnd(s))
		}
	}
	if s[i] != '"' {
		return o.fail(invalidChar(s, i, "looking for beginning of object key string"))
	}
	end, err := checkString(s, i)
	if err != nil {
		return o.fail(err)
	}
	name = text(s[i:end])
	if i = skipSpace(s, end); i == len(s) {
		return o.fail(unexpectedEnd(s))
	}
	if s[i] != ':' {
		return o.fail(invalidChar(s, i, "after object key"))
	}
	i = skipSpace(s, i+1)
	if end, err = checkValue(s, i, 1); err != nil {
		return o.fail(err)
	}
	o.i, o.more = end, true
	return name, s[i:end], true
}

func (o *object) fail(err error) (name, value string, ok bool) {
	o.done, o.err = true, err
	return "", "", false
}

func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool {
	return c <= ' ' && (c == ' ' || c == '\t' || c == '\n' || c == '\r')
}

// valueEnd returns the index just past the value that starts at s[i], in checked text.
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

// stringEnd returns the index just past the string that starts at s[i], in checked text.
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

// The checker below accepts exactly what encoding/json accepts (RFC 8259, with invalid
// UTF-8 allowed in strings and \u escapes of lone surrogates, which decode to U+FFFD), and
// fails with the SyntaxError encoding/json would report, message and offset alike. Like
// encoding/json's scanner, it reads the end of the input as one space more: "1e" fails on
// that space, "[1" as unexpected end.

// maxDepth is how deeply arrays and objects may nest, as in encoding/json: the body is
// checked without recursion, but its structure is a stack of this many bits.
const maxDepth = 10000

// checkValue checks the value that starts at s[i], after any whitespace, inside depth
// arrays and objects, and returns the index just past it.
func checkValue(s string, i, depth int) (int, error) {
	i = skipSpace(s, i)
	if i == len(s) {
		return 0, unexpectedEnd(s)
	}
	switch c := s[i]; c {
	case '"':
		return checkString(s, i)
	case '{', '[':
		return checkNested(s, i, depth)
	case 't':
		return checkLiteral(s, i, "true")
	case 'f':
		return checkLiteral(s, i, "false")
	case 'n':
		return checkLiteral(s, i, "null")
	default:
		if c == '-' || isDigit(c) {
			return checkNumber(s, i)
		}
	}
	return 0, invalidChar(s, i, "looking for beginning of value")
}

// checkNested checks the array or object that starts at s[i], inside depth others.
func checkNested(s string, i, depth int) (int, error) {
	var inObject [(maxDepth + 63) / 64]uint64 // a bit per level above base: an object, not an array
	base := depth
	for {
		// s[i] begins a value.
		switch c := s[i]; c {
		case '{', '[':
			if depth == maxDepth {
				return 0, invalidChar(s, i, "exceeded max depth")
			}
			level := depth - base
			if c == '{' {
				inObject[level/64] |= 1 << (level % 64)
			} else {
				inObject[level/64] &^= 1 << (level % 64)
			}
			depth++
			if i = skipSpace(s, i+1); i == len(s) {
				return 0, unexpectedEnd(s)
			}
			switch {
			case c == '[' && s[i] == ']', c == '{' && s[i] == '}':
				depth--
				i++
			case c == '[':
				continue
			default:
				var err error
				if i, err = checkKey(s, i); err != nil {
					return 0, err
				}
				continue
			}
		default: // a scalar: checkValue does not come back here
			var err error
			if i, err = checkValue(s, i, depth); err != nil {
				return 0, err
			}
		}
		// A value ends before s[i]: close what it ends, up to the next value.
		for {
			if depth == base {
				return i, nil
			}
			if i = skipSpace(s, i); i == len(s) {
				return 0, unexpectedEnd(s)
			}
			level := depth - 1 - base
			object := inObject[level/64]&(1<<(level%64)) != 0
			c := s[i]
			if c == '}' && object || c == ']' && !object {
				depth--
				i++
				continue
			}
			if c != ',' {
				if object {
					return 0, invalidChar(s, i, "after object key:value pair")
				}
				return 0, invalidChar(s, i, "after array element")
			}
			if i = skipSpace(s, i+1); i == len(s) {
				return 0, unexpectedEnd(s)
			}
			if object {
				var err error
				if i, err = checkKey(s, i); err != nil {
					return 0, err
				}
			}
			break
		}
	}
}

// checkKey checks the member name that starts at s[i] and its ':', and returns the index of
// the value that follows.
func checkKey(s string, i int) (int, error) {
	if s[i] != '"' {
		return 0, invalidChar(s, i, "looking for beginning of object key string")
	}
	i, err := checkString(s, i)
	if err != nil {
		return 0, err
	}
	if i = skipSpace(s, i); i == len(s) {
		return 0, unexpectedEnd(s)
	}
	if s[i] != ':' {
		return 0, invalidChar(s, i, "after object key")
	}
	if i = skipSpace(s, i+1); i == len(s) {
		return 0, unexpectedEnd(s)
	}
	return i, nil
}

// checkString checks the string that starts at s[i] and returns the index just past it.
func checkString(s string, i int) (int, error) {
	for i++; i < len(s); i++ {
		c := s[i]
		if plain[c] {
			continue
		}
		switch c {
		case '"':
			return i + 1, nil
		case '\\':
			switch i++; at(s, i) {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for range 4 {
					if i++; !isHex(at(s, i)) {
						return 0, invalidChar(s, i, "in \\u hexadecimal character escape")
					}
				}
			default:
				return 0, invalidChar(s, i, "in string escape code")
			}
		default:
			return 0, invalidChar(s, i, "in string literal")
		}
	}
	return 0, unexpectedEnd(s)
}

// plain holds the bytes a string holds as they are: all but '"', '\\' and control characters.
// Bytes of invalid UTF-8 are plain, as for encoding/json.
var plain = func() (t [256]bool) {
	for c := 0x20; c < len(t); c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// checkNumber checks the number that starts at s[i] and returns the index just past it.
func checkNumber(s string, i int) (int, error) {
	if s[i] == '-' {
		if i++; !isDigit(at(s, i)) {
			return 0, invalidChar(s, i, "in numeric literal")
		}
	}
	if s[i] == '0' {
		i++
	} else {
		i = skipDigits(s, i)
	}
	if at(s, i) == '.' {
		if i++; !isDigit(at(s, i)) {
			return 0, invalidChar(s, i, "after decimal point in numeric literal")
		}
		i = skipDigits(s, i)
	}
	if c := at(s, i); c == 'e' || c == 'E' {
		if c = at(s, i+1); c == '+' || c == '-' {
			i++
		}
		if i++; !isDigit(at(s, i)) {
			return 0, invalidChar(s, i, "in exponent of numeric literal")
		}
		i = skipDigits(s, i)
	}
	return i, nil
}

func skipDigits(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// checkLiteral checks that lit, true, false or null, starts at s[i], and returns the index
// just past it.
func checkLiteral(s string, i int, lit string) (int, error) {
	if strings.HasPrefix(s[i:], lit) {
		return i + len(lit), nil
	}
	for k := 1; ; k++ {
		if at(s, i+k) != lit[k] {
			return 0, invalidChar(s, i+k, "in literal "+lit+" (expecting "+quoteChar(lit[k])+")")
		}
	}
}

// checkEnd checks that only whitespace follows the body's value, which ends before s[i].
func checkEnd(s string, i int) error {
	if i = skipSpace(s, i); i < len(s) {
		return invalidChar(s, i, "after top-level value")
	}
	return nil
}

// at returns s[i], or a space at the end of s, as encoding/json's scanner reads it.
func at(s string, i int) byte {
	if i < len(s) {
		return s[i]
	}
	return ' '
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unexpectedEnd is the error of body s, which ends inside its value.
func unexpectedEnd(s string) error {
	return failure.New(failure.Unnormalizable, "malformed JSON: unexpected end of JSON input (offset %d)", len(s))
}

// invalidChar is the error of body s at s[i] (at its end, the space encoding/json reads
// there), with the offset encoding/json reports: the bytes read up to and including it.
func invalidChar(s string, i int, context string) error {
	return failure.New(failure.Unnormalizable, "malformed JSON: invalid character %s %s (offset %d)",
		quoteChar(at(s, i)), context, min(i+1, len(s)))
}

// quoteChar quotes c as encoding/json does in its errors.
func quoteChar(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	q := strconv.Quote(string(rune(c)))
	return "'" + q[1:len(q)-1] + "'"
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
