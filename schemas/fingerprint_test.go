package schemas_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

// This file computes fingerprints the way the Avro specification describes them, without
// the package or hamba: "Parsing Canonical Form for Schemas" and "Schema Fingerprints"
// (https://avro.apache.org/docs/1.12.0/specification/#schema-fingerprints).

// rabin is CRC-64-AVRO, transcribed from the specification's reference code.
func rabin(buf []byte) uint64 {
	const empty = 0xc15d213aa4d7a795
	var table [256]uint64
	for i := range table {
		fp := uint64(i)
		for range 8 {
			fp = (fp >> 1) ^ (empty & -(fp & 1))
		}
		table[i] = fp
	}
	fp := uint64(empty)
	for _, b := range buf {
		fp = (fp >> 8) ^ table[byte(fp)^b]
	}
	return fp
}

var primitives = []string{"null", "boolean", "int", "long", "float", "double", "bytes", "string"}

// parsingCanonicalForm transforms schema JSON text per the specification: [PRIMITIVES],
// [FULLNAMES], [STRIP], [ORDER], [STRINGS], [INTEGERS], [WHITESPACE]. Named types are
// written in full the first time and by name afterwards, as in the Java implementation.
func parsingCanonicalForm(t *testing.T, text string) string {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(text))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	pcf(t, &b, v, "", map[string]bool{})
	return b.String()
}

func pcf(t *testing.T, b *strings.Builder, v any, ns string, seen map[string]bool) {
	switch v := v.(type) {
	case string:
		if slices.Contains(primitives, v) {
			quote(b, v)
		} else {
			quote(b, fullName(v, ns))
		}
	case []any:
		b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			pcf(t, b, x, ns, seen)
		}
		b.WriteByte(']')
	case map[string]any:
		pcfObject(t, b, v, ns, seen)
	default:
		t.Fatalf("unexpected schema JSON %v", v)
	}
}

func pcfObject(t *testing.T, b *strings.Builder, v map[string]any, ns string, seen map[string]bool) {
	typ, _ := v["type"].(string)
	if _, named := v["name"]; !named || !slices.Contains([]string{"record", "error", "enum", "fixed"}, typ) {
		if typ != "array" && typ != "map" { // primitive, maybe with logicalType: [STRIP] leaves "type"
			pcf(t, b, v["type"], ns, seen)
			return
		}
	}
	var parts []string
	if name, ok := v["name"].(string); ok {
		if space, ok := v["namespace"].(string); ok && !strings.Contains(name, ".") {
			name = space + "." + name
		}
		name = fullName(name, ns)
		if seen[name] {
			quote(b, name)
			return
		}
		seen[name] = true
		ns = name[:max(strings.LastIndex(name, "."), 0)]
		parts = append(parts, `"name":`+quoted(name))
	}
	parts = append(parts, `"type":`+quoted(typ))
	for _, key := range []string{"fields", "symbols", "items", "values", "size"} {
		x, ok := v[key]
		if !ok {
			continue
		}
		var sub strings.Builder
		switch key {
		case "fields":
			sub.WriteByte('[')
			for i, f := range x.([]any) {
				f := f.(map[string]any)
				if i > 0 {
					sub.WriteByte(',')
				}
				sub.WriteString(`{"name":` + quoted(f["name"].(string)) + `,"type":`)
				pcf(t, &sub, f["type"], ns, seen)
				sub.WriteByte('}')
			}
			sub.WriteByte(']')
		case "size":
			sub.WriteString(x.(json.Number).String())
		default:
			pcf(t, &sub, x, ns, seen)
		}
		parts = append(parts, `"`+key+`":`+sub.String())
	}
	b.WriteString("{" + strings.Join(parts, ",") + "}")
}

func fullName(name, ns string) string {
	if strings.Contains(name, ".") || ns == "" {
		return name
	}
	return ns + "." + name
}

func quoted(s string) string {
	var b strings.Builder
	quote(&b, s)
	return b.String()
}

// quote writes s as a JSON string with no escapes beyond the ones JSON requires ([STRINGS]).
func quote(b *strings.Builder, s string) {
	var out bytes.Buffer
	e := json.NewEncoder(&out)
	e.SetEscapeHTML(false)
	if err := e.Encode(s); err != nil {
		panic(err)
	}
	b.WriteString(strings.TrimSuffix(out.String(), "\n"))
}

// TestSpecVectors checks the test's own canonical form and Rabin code against values from
// the Avro project's share/test/data/schema-tests.txt.
func TestSpecVectors(t *testing.T) {
	for _, tc := range []struct {
		schema, canonical string
		fingerprint       int64
	}{
		{`"int"`, `"int"`, 8247732601305521295}, // 0x7275d51a3f395c8f
		{`{"type":"int"}`, `"int"`, 8247732601305521295},
		{`"null"`, `"null"`, 7195948357588979594},
		{`{"fields":[], "type":"record", "name":"foo"}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
		{`{"type":"long","logicalType":"timestamp-millis"}`, `"long"`, -3434872931120570953},
	} {
		got := parsingCanonicalForm(t, tc.schema)
		if got != tc.canonical {
			t.Errorf("canonical form of %s = %s, want %s", tc.schema, got, tc.canonical)
		}
		if fp := rabin([]byte(got)); fp != uint64(tc.fingerprint) {
			t.Errorf("fingerprint of %s = %d, want %d", got, int64(fp), tc.fingerprint)
		}
	}
}

// TestFingerprints checks every Schema.Fingerprint, and the header the single-object codec
// writes, against the specification's algorithm applied to the .avsc text.
func TestFingerprints(t *testing.T) {
	so, err := schemas.NewSingleObject()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[[8]byte]string{}
	for _, s := range schemas.All() {
		var want [8]byte
		binary.LittleEndian.PutUint64(want[:], rabin([]byte(parsingCanonicalForm(t, s.Text))))
		if s.Fingerprint != want {
			t.Errorf("%s: Fingerprint %x, want %x", s.Type, s.Fingerprint, want)
		}
		if other, dup := seen[want]; dup {
			t.Errorf("%s and %s share fingerprint %x", s.Type, other, want)
		}
		seen[want] = s.Type
		value, err := so.Encode(nil, envelope(s.Type))
		if err != nil {
			t.Fatal(err)
		}
		if header := append([]byte{0xC3, 0x01}, want[:]...); !bytes.HasPrefix(value, header) {
			t.Errorf("%s: value starts % x, want % x", s.Type, value[:min(len(value), 10)], header)
		}
	}
	if len(seen) != len(event.Types) {
		t.Errorf("%d fingerprints for %d types", len(seen), len(event.Types))
	}
}
