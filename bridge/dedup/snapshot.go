package dedup

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// A snapshot is a Store's remembered ids in a local file, so that a restart reads the file
// and then only the records Kafka received since, instead of the whole window (see
// Rebuild). It holds, for each group, its sources, its window and its FIFO of (key, time) as
// they are (superseded entries included: the later mark wins when it is read back), and the
// time from which Kafka must be read to complete it: the copy's time, or the receipt of the
// oldest delivery then in flight if earlier (its record may reach Kafka after the copy), less
// snapshotMargin. Records carry the bridge's receipt time as their timestamp, and Kafka
// finds the first offset at or after a time, so every record missing from the snapshot is
// read back.
//
// Keys are hashes, so a group's entries cannot be told apart by source: a group of the file
// is read into the Store's group only when all its sources still share one group, whose
// window is no longer than the file's (see placeSnapshot). The sources of a group that cannot
// be placed so are read from Kafka over their whole window, as without a snapshot.
//
// Format, little-endian: the magic, since (int64 unix nanoseconds), the number of groups
// (uint32); per group its window (int64 nanoseconds), its sources (uint16 count, then per
// source a uint16 length and the bytes; no source for the default group, which holds every
// source without a group of its own) and its entries (uint64 count, then per entry the key's
// two uint64 and the time as int64); then the CRC-32C of all of it. A file that does not read
// back whole and intact is not used, nor one of the first format, which lacked the windows
// and the default group's sources.

var (
	snapshotMagic   = []byte("bridge dedup snapshot v2\n")
	snapshotMagicV1 = []byte("bridge dedup snapshot v1\n")
)

// snapshotMargin is read back before a snapshot's time, against a clock stepped backwards.
const snapshotMargin = time.Minute

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// groupCopy is one group of a snapshot: its FIFO as copied, or as read back.
type groupCopy struct {
	sources []string // none for the default group
	window  int64
	stamps  []stamp
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
		groups[i] = groupCopy{window: g.window, stamps: g.order.copyOut()}
		if g != s.def {
			groups[i].sources = []string{g.source}
		}
	}
	return groups, time.Unix(0, since).Add(-snapshotMargin)
}

func encodeSnapshot(f io.Writer, groups []groupCopy, since time.Time) (int, error) {
	crc := crc32.New(castagnoli)
	w := bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<20)
	w.Write(snapshotMagic)
	var b [24]byte
	put16 := func(v int) {
		binary.LittleEndian.PutUint16(b[:], uint16(v))
		w.Write(b[:2])
	}
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
		put(uint64(g.window))
		put16(len(g.sources))
		for _, src := range g.sources {
			put16(len(src))
			w.WriteString(src)
		}
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

// loaded is what loadSnapshot read.
type loaded struct {
	entries, ids int       // entries read, ids new to the Store
	since        time.Time // Kafka must be read from then on
	reread       []string  // the groups of the Store the file could not fill, as "source (window)"
}

// loadSnapshot reads the snapshot at path into s, which is being rebuilt: the entries that
// lie within their group's window before now, each group of the file into the group of s
// that holds all its sources today (see placeSnapshot). The time Kafka must be read from is
// the file's, or the start of the window of a group of s that the file could not fill.
// Nothing is read from a file that is not intact.
func (s *Store) loadSnapshot(path string, now time.Time) (loaded, error) {
	since, groups, err := readSnapshot(path)
	if err != nil {
		return loaded{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	into, stale := s.placeSnapshot(groups)
	l := loaded{since: since}
	for target, from := range into {
		n, ids := s.loadGroup(target, from, now)
		l.entries, l.ids = l.entries+n, l.ids+ids
	}
	for _, g := range s.groups {
		if stale[g] {
			l.since = minTime(l.since, now.Add(-time.Duration(g.window)))
			l.reread = append(l.reread, g.describe())
		}
	}
	return l, nil
}

// placeSnapshot decides where the file's groups go in s: a group goes into the group of s
// that all its sources belong to now, if that group's window is no longer than the file's;
// the default group's sources are every source not named elsewhere in the file, so it goes
// into s's default group if every source with a group of its own in s is named in the file.
// A group of the file that cannot be placed makes stale every group of s holding one of its
// sources: the file lacks ids of that group, or cannot tell them from another group's.
func (s *Store) placeSnapshot(groups []groupCopy) (into map[*group][]groupCopy, stale map[*group]bool) {
	named := make(map[string]bool)
	for _, h := range groups {
		for _, src := range h.sources {
			named[src] = true
		}
	}
	into, stale = make(map[*group][]groupCopy), make(map[*group]bool)
	for _, h := range groups {
		if g := s.targetOf(h, named); g != nil {
			into[g] = append(into[g], h)
			continue
		}
		for _, src := range h.sources {
			stale[s.groupOf(src)] = true
		}
		if len(h.sources) == 0 {
			stale[s.def] = true
			for src, g := range s.sources {
				if !named[src] {
					stale[g] = true
				}
			}
		}
	}
	return into, stale
}

// targetOf returns the group of s that holds every source of h today, if its window is no
// longer than h's; else nil.
func (s *Store) targetOf(h groupCopy, named map[string]bool) *group {
	target := s.def
	if len(h.sources) > 0 {
		target = s.groupOf(h.sources[0])
	}
	for _, src := range h.sources {
		if s.groupOf(src) != target {
			return nil
		}
	}
	if len(h.sources) == 0 {
		for src := range s.sources {
			if !named[src] {
				return nil
			}
		}
	}
	if target.window > h.window {
		return nil
	}
	return target
}

// loadGroup marks the entries of from in g that lie within g's window before now, in time
// order: the file's order when from is one group, else merged.
func (s *Store) loadGroup(g *group, from []groupCopy, now time.Time) (n, ids int) {
	stamps := from[0].stamps
	if len(from) > 1 {
		stamps = nil
		for _, h := range from {
			stamps = append(stamps, h.stamps...)
		}
		slices.SortStableFunc(stamps, func(a, b stamp) int { return cmp.Compare(a.at, b.at) })
	}
	g.reserve(min(len(stamps), s.maxIDs))
	cutoff := now.UnixNano() - g.window
	for _, st := range stamps {
		if st.at > cutoff && s.markSeen(g, st.k, st.at) {
			ids++
		}
	}
	return len(stamps), ids
}

func (g *group) describe() string {
	if g.source == "" {
		return fmt.Sprintf("the sources of dedup.window (%s)", time.Duration(g.window))
	}
	return fmt.Sprintf("%s (%s)", g.source, time.Duration(g.window))
}

// readSnapshot reads and checks the file at path.
func readSnapshot(path string) (since time.Time, groups []groupCopy, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, nil, err
	}
	if bytes.HasPrefix(raw, snapshotMagicV1) {
		return time.Time{}, nil, errors.New("dedup: snapshot: of an older format, which lacks the groups' windows and sources")
	}
	if len(raw) < len(snapshotMagic)+16 || !bytes.HasPrefix(raw, snapshotMagic) {
		return time.Time{}, nil, errors.New("dedup: snapshot: not a snapshot")
	}
	body, sum := raw[:len(raw)-4], binary.LittleEndian.Uint32(raw[len(raw)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return time.Time{}, nil, errors.New("dedup: snapshot: checksum mismatch (torn or corrupt)")
	}
	d := decoder{b: body[len(snapshotMagic):]}
	since = time.Unix(0, int64(d.u64()))
	defaults := 0
	for n := d.u32(); n > 0 && d.err == nil; n-- {
		h := d.group()
		if len(h.sources) == 0 {
			defaults++
		}
		groups = append(groups, h)
	}
	if d.err != nil || len(d.b) > 0 || defaults != 1 {
		return time.Time{}, nil, errors.New("dedup: snapshot: malformed")
	}
	return since, groups, nil
}

// group reads one group; its entries are checked against what is left before any is made.
func (d *decoder) group() groupCopy {
	h := groupCopy{window: int64(d.u64())}
	for n := d.u16(); n > 0 && d.err == nil; n-- {
		h.sources = append(h.sources, d.str())
	}
	count := d.u64()
	if d.err != nil || count > uint64(len(d.b)/24) {
		d.err = io.ErrUnexpectedEOF
		return h
	}
	h.stamps = make([]stamp, count)
	for i := range h.stamps {
		h.stamps[i] = stamp{key{d.u64(), d.u64()}, int64(d.u64())}
	}
	return h
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
func (d *decoder) u16() uint16 { return binary.LittleEndian.Uint16(d.take(2)) }
func (d *decoder) str() string { return string(d.take(int(d.u16()))) }
