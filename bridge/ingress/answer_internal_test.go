package ingress

import (
	"encoding/json"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                  true,
		"application/json; charset=utf-8":   true,
		"application/json;charset=UTF-8":    true,
		"Application/JSON":                  true,
		"application/cloudevents+json":      true,
		"application/jsonx":                 false,
		"text/plain":                        false,
		"":                                  false,
		"application/x-www-form-urlencoded": false,
		"application/+json":                 false,
	} {
		if got := isJSON([]byte(ct)); got != want {
			t.Errorf("isJSON(%q) = %v, want %v", ct, got, want)
		}
	}
}

func TestAnswersAreJSON(t *testing.T) {
	rec := &kgo.Record{Topic: "social.post.published", Partition: 3, Offset: 42}
	for _, id := range []string{"evt_a8b3c7e2", `evt_"quoted"\`, "evt_\u00e9\n<tag>"} {
		for _, b := range [][]byte{acceptedAnswer(id, rec), duplicateAnswer(id), quarantinedAnswer(id)} {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			if m["event_id"] != nil && m["event_id"] != id || m["reason"] != nil && m["reason"] != id {
				t.Errorf("%s does not carry %q", b, id)
			}
		}
	}
	var m struct {
		Status    string
		Topic     string
		Partition int32
		Offset    int64
	}
	if err := json.Unmarshal(acceptedAnswer("x", rec), &m); err != nil || m.Status != "accepted" || m.Partition != 3 || m.Offset != 42 || m.Topic != rec.Topic {
		t.Errorf("accepted answer %+v %v", m, err)
	}
}
