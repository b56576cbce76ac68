package spool

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// A segment file is a sequence of frames:
//
//	length  uint32, little endian: the bytes of body
//	crc     uint32, little endian: CRC-32C (Castagnoli) of body
//	body    kind (1 byte), then its payload
//
// A frame that is cut short, or whose CRC does not match, ends what can be read of the file:
// at the end of the newest segment that is a write torn by a crash (its append was never
// acknowledged), and the file is cut back to the last whole frame.

// The kinds of frame.
const (
	kindEntry  byte = 1 // a spooled record (record.go)
	kindAck    byte = 2 // these entries are in Kafka, or were found duplicates: never produce them
	kindVerify byte = 3 // these entries, spooled unverified, now hold their dedup reservation
)

const frameHeader = 8

// maxFrame bounds a frame's length as read back, so that a corrupt length never makes a
// huge allocation: far above any record (kafka.max_message_bytes is at most 64 MiB).
const maxFrame = 256 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errTorn = errors.New("spool: torn or corrupt frame")

// appendFrame appends a frame of kind whose payload is what fill appends.
func appendFrame(b []byte, kind byte, fill func([]byte) []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0, kind)
	b = fill(b)
	body := b[start+frameHeader:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(body, castagnoli))
	return b
}

// nextFrame reads the frame at the start of b: its kind, payload and whole length. errTorn
// means b does not start with a whole, intact frame.
func nextFrame(b []byte) (kind byte, payload []byte, n int, err error) {
	if len(b) < frameHeader+1 {
		return 0, nil, 0, errTorn
	}
	size := binary.LittleEndian.Uint32(b)
	if size == 0 || size > maxFrame || int(size) > len(b)-frameHeader {
		return 0, nil, 0, errTorn
	}
	body := b[frameHeader : frameHeader+int(size)]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, nil, 0, errTorn
	}
	return body[0], body[1:], frameHeader + int(size), nil
}

// appendSeqs appends a list of entry sequence numbers, ascending: count, first, deltas.
func appendSeqs(b []byte, seqs []uint64) []byte {
	b = binary.AppendUvarint(b, uint64(len(seqs)))
	prev := uint64(0)
	for _, s := range seqs {
		b = binary.AppendUvarint(b, s-prev)
		prev = s
	}
	return b
}

func readSeqs(p []byte) ([]uint64, error) {
	d := decoder{b: p}
	n := d.uvarint()
	if n > uint64(len(p)) {
		return nil, errTorn
	}
	out := make([]uint64, 0, n)
	prev := uint64(0)
	for range n {
		prev += d.uvarint()
		out = append(out, prev)
	}
	return out, d.end()
}
