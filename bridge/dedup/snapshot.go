package dedup

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"
)

// A snapshot is a Store's remembered ids in a local file, so that a restart reads the file
// and then only the records Kafka received since, instead of the whole window (see
// Rebuild). It holds, for each group, the source and its FIFO of (key, time) as they are
// (superseded entries included: the later mark wins when it is read back), and the time from
// which Kafka must be read to complete it: the copy's time, or the receipt of the oldest
// delivery then in flight if earlier (its record may reach Kafka after the copy), less
// snapshotMargin. Records carry the bridge's receipt time as their timestamp, and Kafka
// finds the first offset at or after a time, so every record missing from the snapshot is
// read back.
//
// Format, little-endian: the magic, since (int64 unix nanoseconds), the number of groups
// (uint32); per group the source (uint16 length, bytes) and its entries (uint64 count, then
// per entry the key's two uint64 and the time as int64); then the CRC-32C of all of it. A
// file that does not read back whole and intact is not used.

var snapshotMagic = []byte("bridge dedup snapshot v1\n")

// snapshotMargin is read back before a snapshot's time, against a clock stepped backwards.
const snapshotMargin = time.Minute

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// groupCopy is one group's FIFO as copied for a snapshot.
type groupCopy struct {
	source string
	stamps []stamp
}

// WriteSnapshot writes s to path: to a temporary file beside it, synced, then renamed over
// path, so a crash leaves the previous snapshot. now is the time of the copy. s is locked
// only while its FIFOs are copied. It returns how many entries it wrote.
func (s *Store) WriteSnapshot(path string, now time.Time) (int, error) {
	groups, since := s.copyForSnapshot(now)
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, fmt.Errorf("dedup: snapshot: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	n, err := encodeSnapshot(tmp, groups, since)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return 0, fmt.Errorf("dedup: snapshot: %w", err)
	}
	return n, nil
}

// copyForSnapshot copies every group's FIFO and returns the time Kafka must be read from.
func (s *Store) copyForSnapshot(now time.Time) ([]groupCopy, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	since := now.UnixNano()
	for _, f := range s.flights {
		since = min(since, f.at)
	}
	groups := make([]groupCopy, len(s.groups))
	for i, g := range s.groups {
		groups[i] = groupCopy{source: g.source, stamps: g.order.copyOut()}
	}
	return groups, time.Unix(0, since).Add(-snapshotMargin)
}

func encodeSnapshot(f io.Writer, groups []groupCopy, since time.Time) (int, error) {
	crc := crc32.New(castagnoli)
	w := bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<20)
	w.Write(snapshotMagic)
	var b [24]byte
	put := func(v ...uint64) {
		for i, x := range v {
			binary.LittleEndian.PutUint64(b[8*i:], x)
		}
		w.Write(b[:8*len(v)])
	}
	put(uint64(since.UnixNano()))
	binary.LittleEndian.PutUint32(b[:], uint32(len(groups)))
	w.Write(b[:4])
	n := 0
	for _, g := range groups {
		binary.LittleEndian.PutUint16(b[:], uint16(len(g.source)))
		w.Write(b[:2])
		w.WriteString(g.source)
		put(uint64(len(g.stamps)))
		for _, st := range g.stamps {
			put(st.k.a, st.k.b, uint64(st.at))
		}
		n += len(g.stamps)
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	binary.LittleEndian.PutUint32(b[:], crc.Sum32())
	_, err := f.Write(b[:4])
	return n, err
}

// loadSnapshot reads the snapshot at path into s, which is being rebuilt: the entries that
// lie within their source's window before now, as s groups them today, in the file's order,
// which is each group's time order. It returns how many entries it read, how many ids were
// new, and the time Kafka must be read from. Nothing is read from a file that is not intact.
func (s *Store) loadSnapshot(path string, now time.Time) (n, ids int, since time.Time, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, time.Time{}, err
	}
	if len(raw) < len(snapshotMagic)+16 || !bytes.HasPrefix(raw, snapshotMagic) {
		return 0, 0, time.Time{}, errors.New("dedup: snapshot: not a snapshot")
	}
	body, sum := raw[:len(raw)-4], binary.LittleEndian.Uint32(raw[len(raw)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return 0, 0, time.Time{}, errors.New("dedup: snapshot: checksum mismatch (torn or corrupt)")
	}
	d := decoder{b: body[len(snapshotMagic):]}
	since = time.Unix(0, int64(d.u64()))
	s.mu.Lock()
	defer s.mu.Unlock()
	for groups := d.u32(); groups > 0 && d.err == nil; groups-- {
		g, count := s.groupOf(d.str()), d.u64()
		g.reserve(int(min(count, uint64(s.maxIDs))))
		cutoff := now.UnixNano() - g.window
		for ; count > 0 && d.err == nil; count-- {
			st := stamp{key{d.u64(), d.u64()}, int64(d.u64())}
			if n++; st.at > cutoff && d.err == nil && s.markSeen(g, st.k, st.at) {
				ids++
			}
		}
	}
	if d.err != nil || len(d.b) > 0 {
		return 0, 0, time.Time{}, errors.New("dedup: snapshot: malformed")
	}
	return n, ids, since, nil
}

// decoder reads a snapshot's fields; past the end it returns zeros and remembers the error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if len(d.b) < n {
		d.err, d.b = io.ErrUnexpectedEOF, nil
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u64() uint64 { return binary.LittleEndian.Uint64(d.take(8)) }
func (d *decoder) u32() uint32 { return binary.LittleEndian.Uint32(d.take(4)) }
func (d *decoder) str() string {
	return string(d.take(int(binary.LittleEndian.Uint16(d.take(2)))))
}
