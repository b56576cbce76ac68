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
		for _, c := range []struct {
			answer        []byte
			status, field string // the member that must carry id
		}{
			{acceptedAnswer(id, rec), "accepted", "event_id"},
			{duplicateAnswer(id), "duplicate", "event_id"},
			{quarantinedAnswer(id), "quarantined", "reason"},
		} {
			var m map[string]any
			if err := json.Unmarshal(c.answer, &m); err != nil {
				t.Fatalf("%s: %v", c.answer, err)
			}
			if m["status"] != c.status || m[c.field] != id {
				t.Errorf("%s: want status %q and %s %q", c.answer, c.status, c.field, id)
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
