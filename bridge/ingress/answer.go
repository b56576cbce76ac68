package ingress

import (
	"encoding/json"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
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
