package schemas

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/pkg/crc64"
)

// fingerprint is the CRC-64-AVRO fingerprint of s's Parsing Canonical Form, little-endian.
//
// hamba's own FingerprintUsing(avro.CRC64Avro) keeps logicalType in the canonical form, which
// the Avro specification strips ([STRIP]: only type, name, fields, symbols, items, values,
// size survive), so its value differs from the Java, Python and Rust implementations for
// our timestamp fields. Consumers resolve our single-object header with those, hence this.
func fingerprint(s avro.Schema) ([8]byte, error) {
	var b strings.Builder
	if err := canonical(&b, s); err != nil {
		return [8]byte{}, err
	}
	h := crc64.New()
	h.Write([]byte(b.String()))
	var fp [8]byte
	binary.LittleEndian.PutUint64(fp[:], h.Sum64())
	return fp, nil
}

// canonical writes the Parsing Canonical Form of s to b.
func canonical(b *strings.Builder, s avro.Schema) error {
	switch s := s.(type) {
	case *avro.NullSchema:
		b.WriteString(`"null"`)
	case *avro.PrimitiveSchema:
		b.WriteString(strconv.Quote(string(s.Type())))
	case *avro.RefSchema:
		b.WriteString(strconv.Quote(s.Schema().FullName()))
	case *avro.RecordSchema:
		return canonicalRecord(b, s)
	case *avro.UnionSchema:
		return canonicalList(b, len(s.Types()), func(i int) error { return canonical(b, s.Types()[i]) })
	case *avro.ArraySchema:
		b.WriteString(`{"type":"array","items":`)
		if err := canonical(b, s.Items()); err != nil {
			return err
		}
		b.WriteByte('}')
	case *avro.MapSchema:
		b.WriteString(`{"type":"map","values":`)
		if err := canonical(b, s.Values()); err != nil {
			return err
		}
		b.WriteByte('}')
	case *avro.EnumSchema:
		fmt.Fprintf(b, `{"name":%q,"type":"enum","symbols":`, s.FullName())
		err := canonicalList(b, len(s.Symbols()), func(i int) error {
			b.WriteString(strconv.Quote(s.Symbols()[i]))
			return nil
		})
		b.WriteByte('}')
		return err
	case *avro.FixedSchema:
		fmt.Fprintf(b, `{"name":%q,"type":"fixed","size":%d}`, s.FullName(), s.Size())
	default:
		return fmt.Errorf("no canonical form for %s schema", s.Type())
	}
	return nil
}

func canonicalRecord(b *strings.Builder, s *avro.RecordSchema) error {
	typ := "record"
	if s.IsError() {
		typ = "error"
	}
	fmt.Fprintf(b, `{"name":%q,"type":%q,"fields":`, s.FullName(), typ)
	err := canonicalList(b, len(s.Fields()), func(i int) error {
		f := s.Fields()[i]
		fmt.Fprintf(b, `{"name":%q,"type":`, f.Name())
		if err := canonical(b, f.Type()); err != nil {
			return err
		}
		b.WriteByte('}')
		return nil
	})
	b.WriteByte('}')
	return err
}

func canonicalList(b *strings.Builder, n int, item func(i int) error) error {
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := item(i); err != nil {
			return err
		}
	}
	b.WriteByte(']')
	return nil
}
