package redrive

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
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
	ss, err := spans(ctx, adm, time.Time{}, topic)
	if err != nil {
		return nil, err
	}
	want := hexID(id)
	marks := map[mark][]byte{}
	_, err = readCommitted(ctx, opts, ss, func(r *kgo.Record) {
		src, m, ok := parseMarkKey(r.Key)
		switch {
		case !ok || src != want:
		case r.Value == nil:
			delete(marks, m)
		default:
			marks[m] = r.Value
		}
	})
	if err != nil {
		return nil, fmt.Errorf("reading the marks in %s: %w", topic, err)
	}
	return marks, nil
}
