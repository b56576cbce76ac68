package redrive

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/internal/committed"
)

// A mark says that one record of a source topic (the dead-letter topic, the quarantine) was
// handled: redriven, or replayed. Marks live in a compacted topic of their own, written in
// the same transaction as what the record became, so a record is marked exactly when its
// move is committed. The key names the record by its topic's id, partition and offset
// ("<topic id in hex>/<partition>/<offset>"): a topic deleted and created again under the
// same name starts its offsets at 0 again, and must not inherit the old topic's marks.
type mark struct {
	p      int32
	offset int64
}

func markKey(id kadm.TopicID, p int32, offset int64) []byte {
	return []byte(hexID(id) + "/" + strconv.Itoa(int(p)) + "/" + strconv.FormatInt(offset, 10))
}

func hexID(id kadm.TopicID) string { return hex.EncodeToString(id[:]) }

// parseMarkKey reads a mark's key; ok is false for a key of another form.
func parseMarkKey(b []byte) (id string, m mark, ok bool) {
	parts := strings.Split(string(b), "/")
	if len(parts) != 3 {
		return "", mark{}, false
	}
	p, err1 := strconv.ParseInt(parts[1], 10, 32)
	off, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return "", mark{}, false
	}
	return parts[0], mark{int32(p), off}, true
}

// readMarks reads the committed marks in topic of the records of the source topic whose
// id is given, with their values. A topic that does not exist holds none.
func readMarks(ctx context.Context, opts []kgo.Opt, adm *kadm.Client, topic string, id kadm.TopicID) (map[mark][]byte, error) {
	ss, err := committed.Ranges(ctx, adm, time.Time{}, topic)
	if err != nil {
		return nil, err
	}
	want := hexID(id)
	marks := map[mark][]byte{}
	_, err = committed.Read(ctx, opts, ss, func(r *kgo.Record) {
		src, m, ok := parseMarkKey(r.Key)
		switch {
		case !ok || src != want:
		case r.Value == nil:
			delete(marks, m)
		default:
			marks[m] = r.Value
		}
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the marks in %s: %w", topic, err)
	}
	return marks, nil
}

// readMarked hands keep each committed record of topic, with whether marksTopic holds its
// mark, and returns the topic's id; it reads nothing when the topic does not exist. The
// records come partition by partition, interleaved: see sortByPlace. The marks are written
// by the runs of transactional id writer: a run that has just ended is read as done (see
// settled).
func readMarked(ctx context.Context, c *cluster, topic, marksTopic, writer string, keep func(r *kgo.Record, marked bool)) (kadm.TopicID, error) {
	id, ok, err := c.topicID(ctx, topic)
	if err != nil || !ok {
		return id, err
	}
	if err := settled(ctx, c.adm, writer); err != nil {
		return id, err
	}
	marks, err := readMarks(ctx, c.opts, c.adm, marksTopic, id)
	if err != nil {
		return id, err
	}
	rgs, err := committed.Ranges(ctx, c.adm, time.Time{}, topic)
	if err != nil {
		return id, err
	}
	_, err = committed.Read(ctx, c.opts, rgs, func(r *kgo.Record) {
		_, marked := marks[mark{r.Partition, r.Offset}]
		keep(r, marked)
	}, nil)
	return id, err
}

// sortByPlace orders what was read by partition, then offset.
func sortByPlace[T any](s []T, place func(T) mark) {
	slices.SortFunc(s, func(a, b T) int {
		pa, pb := place(a), place(b)
		return cmp.Or(cmp.Compare(pa.p, pb.p), cmp.Compare(pa.offset, pb.offset))
	})
}
