package ingress

import (
	"encoding/json"
	"strconv"

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

func quarantinedAnswer(reason string) []byte {
	b := append(make([]byte, 0, 48+len(reason)), `{"status":"quarantined","reason":`...)
	return append(appendJSONString(b, reason), '}')
}

// appendJSONString quotes s as a JSON string, directly when it needs no escaping.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func ignoredAnswer(reason string) []byte {
	b := append(make([]byte, 0, 48+len(reason)), `{"status":"ignored","reason":`...)
	return append(appendJSONString(b, reason), '}')
}

// batchAnswer lists the outcome of each part of a delivery of several events, in order,
// under the strongest status among them: accepted, else duplicate, else ignored.
func batchAnswer(parts []providers.Part, outcomes []outcome) []byte {
	status, items := "ignored", make([]byte, 0, 128*len(parts))
	for i, p := range parts {
		if i > 0 {
			items = append(items, ',')
		}
		switch o := outcomes[i]; {
		case p.Ignored != "":
			items = append(items, ignoredAnswer(p.Ignored)...)
		case o.dup:
			items = append(items, duplicateAnswer(p.Event.ID)...)
			if status == "ignored" {
				status = "duplicate"
			}
		default:
			items = append(items, acceptedAnswer(p.Event.ID, o.rec)...)
			status = "accepted"
		}
	}
	b := append(make([]byte, 0, len(items)+48), `{"status":"`...)
	b = append(append(b, status...), `","events":[`...)
	return append(append(b, items...), "]}"...)
}
