package ingress

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/event"
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

// TestBatchAnswer checks the answer to a delivery of several events: each outcome in order,
// under the strongest status among them.
func TestBatchAnswer(t *testing.T) {
	rec := &kgo.Record{Topic: "social.comment.received", Partition: 1, Offset: 7}
	ev := func(id string) providers.Part { return providers.Part{Event: event.Event{ID: id}} }
	ignored := providers.Part{Ignored: `meta field "ratings" is not mapped`}
	for _, c := range []struct {
		parts    []providers.Part
		outcomes []outcome
		status   string
		statuses []string
	}{
		{[]providers.Part{ev("a"), ev("b"), ignored}, []outcome{{dup: true}, {rec: rec}, {}}, "accepted", []string{"duplicate", "accepted", "ignored"}},
		{[]providers.Part{ev("a"), ignored}, []outcome{{dup: true}, {}}, "duplicate", []string{"duplicate", "ignored"}},
		{[]providers.Part{ignored, ignored}, []outcome{{}, {}}, "ignored", []string{"ignored", "ignored"}},
		{[]providers.Part{ev("a"), ev("b"), ev("c")}, []outcome{{dup: true}, {rec: rec, spooled: true}, {rec: rec}}, "accepted", []string{"duplicate", "spooled", "accepted"}},
		{[]providers.Part{ev("a"), ev("b"), ignored}, []outcome{{rec: rec, spooled: true}, {dup: true}, {}}, "spooled", []string{"spooled", "duplicate", "ignored"}},
	} {
		b := batchAnswer(c.parts, c.outcomes)
		var m struct {
			Status string
			Events []struct{ Status, EventID, Topic, Reason string }
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		got := make([]string, len(m.Events))
		for i, e := range m.Events {
			got[i] = e.Status
		}
		if m.Status != c.status || !slices.Equal(got, c.statuses) {
			t.Errorf("%s: status %s %v, want %s %v", b, m.Status, got, c.status, c.statuses)
		}
	}
	if b := ignoredAnswer("postiz sent an empty list"); string(b) != `{"status":"ignored","reason":"postiz sent an empty list"}` {
		t.Errorf("ignored answer %s", b)
	}
}
