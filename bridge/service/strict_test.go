package service_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestStrictIDsAreQuarantined sends, through the ingress to the real broker, the deliveries
// a lenient reader gets wrong: ids that only decode by repair (lone surrogates, invalid
// UTF-8), which would collide (the second answered "duplicate" and never stored), and a body
// naming its id twice. Each is quarantined with a reason, verbatim, and nothing is accepted.
func TestStrictIDsAreQuarantined(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := testConfig(t, brokers)
	b := start(t, cfg)

	codivBody := func(idMember string) []byte {
		return []byte(`{"event":"post.published",` + idMember + `,"timestamp":"2026-05-08T14:00:42Z","data":{"post_id":"post_k8m2v9x1","platform":"instagram"}}`)
	}
	swBody := []byte(`{"type":"post.published","timestamp":"2026-01-01T00:00:00Z","data":{"post_id":"p_1"}}`)
	cases := []struct {
		name, source string
		headers      map[string]string
		body         []byte
		reason       string
	}{
		{"lone high surrogate", "codivupload", nil, codivBody(`"id":"evt_\ud800"`), "invalid surrogate pair"},
		{"lone high surrogate, another", "codivupload", nil, codivBody(`"id":"evt_\udbff"`), "invalid surrogate pair"},
		{"invalid UTF-8", "codivupload", nil, codivBody("\"id\":\"evt_\xff\""), "invalid UTF-8"},
		{"duplicate key, last null", "codivupload", nil, codivBody(`"id":"evt_dup1","id":null`), `duplicate key "id"`},
		{"duplicate key, two ids", "codivupload", nil, codivBody(`"id":"evt_dup2","id":"evt_dup3"`), `duplicate key "id"`},
		{"webhook-id not UTF-8", "acme", standard("msg_\xc3\x28", swBody), swBody, "not UTF-8"},
	}
	for _, c := range cases {
		h := c.headers
		if h == nil {
			h = codivHeaders("post.published", c.body)
		}
		a := send(t, httpClient, "POST", b.url+"/webhooks/"+c.source, h, c.body)
		if a.Code != 202 || a.Status != "quarantined" || !strings.Contains(a.Reason, c.reason) {
			t.Errorf("%s: answered %d %q %q, want 202 quarantined naming %q", c.name, a.Code, a.Status, a.Reason+a.Error, c.reason)
		}
	}

	if recs := readTopic(t, brokers, cfg.Kafka.TopicPrefix+"post.published"); len(recs) != 0 {
		t.Errorf("post.published holds %d records, want none: %q", len(recs), recs[0].Key)
	}
	dead := readTopic(t, brokers, cfg.Kafka.TopicPrefix+event.QuarantineSuffix)
	if len(dead) != len(cases) {
		t.Fatalf("deadletter holds %d records, want %d", len(dead), len(cases))
	}
	for _, c := range cases {
		found := false
		for _, r := range dead {
			if bytes.Equal(r.Value, c.body) && header(r, "source") == c.source && strings.Contains(header(r, "reason"), c.reason) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: not in the deadletter topic verbatim with its reason", c.name)
		}
	}
}
