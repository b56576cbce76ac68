package spool

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// segment is one file of the log, named by a number above every older segment's and every
// entry's before it.
// Only the newest is written; a segment is deleted once every entry in it is drained and
// every older one is gone, so that an ack frame never outlives the entries it names.
type segment struct {
	id   uint64
	f    *os.File
	size int64
	live int // entries in it not yet done
}

const segmentExt = ".seg"

func segmentPath(dir string, id uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", id, segmentExt))
}

// listSegments returns the ids of dir's segment files, oldest first.
func listSegments(dir string) ([]uint64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), segmentExt)
		if !ok || de.IsDir() {
			continue
		}
		if id, err := strconv.ParseUint(name, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// createSegment creates the segment id and makes its name durable (fsync of dir).
func createSegment(dir string, id uint64, sync func(*os.File) error) (*segment, error) {
	f, err := os.OpenFile(segmentPath(dir, id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syncDir(dir, sync); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &segment{id: id, f: f}, nil
}

func syncDir(dir string, sync func(*os.File) error) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return sync(d)
}

// remove closes and deletes seg. Its deletion need not be durable: a segment that comes back
// after a crash holds entries already in Kafka, which Reconcile finds there.
func (seg *segment) remove() error {
	seg.f.Close()
	return os.Remove(seg.f.Name())
}
