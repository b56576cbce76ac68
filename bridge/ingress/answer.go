package ingress

import (
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/providers"
)

// The answers are written by hand: they are on every request and have few fields.

func acceptedAnswer(id string, rec *kgo.Record) []byte {
	b := make([]byte, 0, 96+len(id)+len(rec.Topic))
	b = append(b, `{"status":"accepted","event_id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"topic":`...)
	b = appendJSONString(b, rec.Topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(rec.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, rec.Offset, 10)
	return append(b, '}')
}

func duplicateAnswer(id string) []byte {
	b := append(make([]byte, 0, 48+len(id)), `{"status":"duplicate","event_id":`...)
	return append(appendJSONString(b, id), '}')
}

func spooledAnswer(id string) []byte {
	b := append(make([]byte, 0, 48+len(id)), `{"status":"spooled","event_id":`...)
	return append(appendJSONString(b, id), '}')
}

func quarantinedAnswer(reason string) []byte {
	b := append(make([]byte, 0, 48+len(reason)), `{"status":"quarantined","reason":`...)
	return append(appendJSONString(b, reason), '}')
}

// appendJSONString quotes s as a JSON string. Invalid UTF-8 (never in an event id, which
// must be UTF-8) would come out as U+FFFD, still valid JSON, hence the ignored error.
func appendJSONString(b []byte, s string) []byte {
	b, _ = jsontext.AppendQuote(b, s)
	return b
}

func ignoredAnswer(reason string) []byte {
	b := append(make([]byte, 0, 48+len(reason)), `{"status":"ignored","reason":`...)
	return append(appendJSONString(b, reason), '}')
}

// batchAnswer lists the outcome of each part of a delivery of several events, in order,
// under the strongest status among them: accepted, else spooled, else duplicate, else ignored.
func batchAnswer(parts []providers.Part, outcomes []outcome) []byte {
	status, items := "ignored", make([]byte, 0, 128*len(parts))
	raise := func(to string) {
		if batchRank(to) > batchRank(status) {
			status = to
		}
	}
	for i, p := range parts {
		if i > 0 {
			items = append(items, ',')
		}
		switch o := outcomes[i]; {
		case p.Ignored != "":
			items = append(items, ignoredAnswer(p.Ignored)...)
		case o.dup:
			items = append(items, duplicateAnswer(p.Event.ID)...)
			raise("duplicate")
		case o.spooled:
			items = append(items, spooledAnswer(p.Event.ID)...)
			raise("spooled")
		default:
			items = append(items, acceptedAnswer(p.Event.ID, o.rec)...)
			raise("accepted")
		}
	}
	b := append(make([]byte, 0, len(items)+48), `{"status":"`...)
	b = append(append(b, status...), `","events":[`...)
	return append(append(b, items...), "]}"...)
}

// batchRank orders the statuses of a batch's events; the top one is the batch's.
func batchRank(status string) int {
	switch status {
	case "duplicate":
		return 1
	case "spooled":
		return 2
	case "accepted":
		return 3
	}
	return 0
}
