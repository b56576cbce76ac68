package ingress_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/schemas"
)

// failingEncoder is the ingress's encoder failing, as a defect of the bridge would, to
// encode the events of one post id while failFor names it: their delivery is a 500.
type failingEncoder struct {
	schemas.Encoder
	mu  sync.Mutex
	bad string
}

func newFailingEncoder(t *testing.T) *failingEncoder {
	t.Helper()
	enc, err := schemas.NewSingleObject()
	if err != nil {
		t.Fatal(err)
	}
	return &failingEncoder{Encoder: enc}
}

func (e *failingEncoder) Encode(dst []byte, ev *event.Event) ([]byte, error) {
	e.mu.Lock()
	bad := e.bad
	e.mu.Unlock()
	if bad != "" && ev.PostID != nil && *ev.PostID == bad {
		return dst, errors.New("the encoder broke")
	}
	return e.Encoder.Encode(dst, ev)
}

func (e *failingEncoder) failFor(postID string) {
	e.mu.Lock()
	e.bad = postID
	e.mu.Unlock()
}

// postizPost is a post of a Postiz delivery; state "" leaves the state out.
func postizPost(id, state string) string {
	s := ""
	if state != "" {
		s = `,"state":"` + state + `"`
	}
	return `{"id":"` + id + `","publishDate":"2026-05-08T14:00:00.000Z","releaseURL":"https://x.com/acme/status/` + id +
		`"` + s + `,"integration":{"name":"acme","providerIdentifier":"x"}}`
}

const postizPath = "/webhooks/postiz/" + urlToken

// batch is the answer to a delivery of several events.
type batch struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Events []struct {
		Status  string `json:"status"`
		EventID string `json:"event_id"`
	} `json:"events"`
}

func readBatch(t *testing.T, answer string) batch {
	t.Helper()
	var b batch
	if err := json.Unmarshal([]byte(answer), &b); err != nil {
		t.Fatalf("answer %q: %v", answer, err)
	}
	return b
}

// statuses is the status of the batch, then of each of its events.
func (b batch) statuses() string {
	s := []string{b.Status}
	for _, e := range b.Events {
		s = append(s, e.Status)
	}
	return strings.Join(s, " ")
}

// TestDeliveryOfSeveralEvents: a delivery of several events produces each event as a record
// of its own (an ignored one produces nothing and is counted) and lists each outcome; sent
// again, each event is a duplicate. A delivery of one event is answered as any other; of one
// ignored post or of none, "ignored"; one that cannot be split, quarantined.
func TestDeliveryOfSeveralEvents(t *testing.T) {
	rec := &recorder{}
	srv := serve(t, func(o *ingress.Options) {
		o.Producer = rec
		o.Sources = append(o.Sources, postizSource(t))
	})
	body := "[" + postizPost("p_a", "PUBLISHED") + "," + postizPost("p_q", "QUEUE") + "," + postizPost("p_e", "ERROR") + "]"
	for _, want := range []string{"accepted accepted ignored accepted", "duplicate duplicate ignored duplicate"} {
		code, got := postTo(t, srv.addr, postizPath, nil, body)
		if b := readBatch(t, got); code != 200 || b.statuses() != want {
			t.Fatalf("answered %d %s, want 200 with the statuses %s", code, got, want)
		}
	}
	recs := rec.records()
	var kinds []string
	for _, r := range recs {
		kinds = append(kinds, r.Topic+" "+recordHeader(r, "source")+" "+recordHeader(r, "provider"))
		if recordHeader(r, "received-at") == "" {
			t.Errorf("record %s has no received-at", r.Key)
		}
	}
	slices.Sort(kinds)
	if want := []string{"social.post.failed postiz postiz", "social.post.published postiz postiz"}; !slices.Equal(kinds, want) {
		t.Fatalf("records %q, want %q", kinds, want)
	}
	if m := srv.metricsText(t); !strings.Contains(m, `bridge_ignored_events_total{source="postiz"} 2`) {
		t.Errorf("ignored events after the QUEUE post twice:\n%s", grepLines(m, "bridge_ignored_events_total"))
	}

	for _, c := range []struct {
		name, body, want string
		code             int
	}{
		{"an empty list", "[]", `{"status":"ignored","reason":"postiz sent an empty list`, 200},
		{"one ignored post", "[" + postizPost("p_q1", "QUEUE") + "]", `{"status":"ignored","reason":"postiz post in state`, 200},
		{"one post", "[" + postizPost("p_one", "") + "]", `{"status":"accepted","event_id":`, 200},
		{"a post without id", `[{"state":"PUBLISHED"}]`, `{"status":"quarantined","reason":`, 202},
	} {
		code, got := postTo(t, srv.addr, postizPath, nil, c.body)
		if code != c.code || !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: answered %d %s, want %d %s…", c.name, code, got, c.code, c.want)
		}
	}
	recs = rec.records()[len(recs):]
	var topics []string
	for _, r := range recs {
		topics = append(topics, r.Topic)
	}
	if want := []string{"social.post.published", event.QuarantineTopic("social.")}; !slices.Equal(topics, want) {
		t.Errorf("records of the single deliveries in %q, want %q", topics, want)
	}
	if m := srv.metricsText(t); !strings.Contains(m, `bridge_ignored_events_total{source="postiz"} 4`) {
		t.Errorf("ignored events:\n%s", grepLines(m, "bridge_ignored_events_total"))
	}
}

// TestDeliveryOfSeveralEventsPartlyFailed: when an event of a delivery fails, the delivery
// fails, saying how many of its events did; the others are stored, so that the retry
// produces only the rest. Kafka's failure (503, retried) is answered before another.
func TestDeliveryOfSeveralEventsPartlyFailed(t *testing.T) {
	rec, enc := &recorder{}, newFailingEncoder(t)
	srv := serve(t, func(o *ingress.Options) {
		o.Producer, o.Encoder = rec, enc
		o.Sources = append(o.Sources, postizSource(t))
	})
	body := "[" + postizPost("p_ok", "") + "," + postizPost("p_bad", "") + "]"
	enc.failFor("p_bad")
	code, got := postTo(t, srv.addr, postizPath, nil, body)
	if b := readBatch(t, got); code != 500 || !strings.HasPrefix(b.Error, "1 of the delivery's 2 events failed, the others are stored") {
		t.Fatalf("one event of two failed: answered %d %s, want 500 naming 1 of 2", code, got)
	}
	if n := len(rec.records()); n != 1 {
		t.Fatalf("%d records, want the one that did not fail", n)
	}
	enc.failFor("")
	code, got = postTo(t, srv.addr, postizPath, nil, body)
	if b := readBatch(t, got); code != 200 || b.statuses() != "accepted duplicate accepted" {
		t.Fatalf("the retry answered %d %s, want the stored event a duplicate, the other accepted", code, got)
	}
	if n := len(rec.records()); n != 2 {
		t.Fatalf("%d records after the retry, want 2", n)
	}

	enc.failFor("p_bad2")
	rec.failWith(failure.New(failure.Unavailable, "kafka is down"))
	code, got = postTo(t, srv.addr, postizPath, nil, "["+postizPost("p_bad2", "")+","+postizPost("p_ok2", "")+"]")
	if b := readBatch(t, got); code != 503 || !strings.HasPrefix(b.Error, "2 of the delivery's 2 events failed") ||
		!strings.HasSuffix(b.Error, "kafka is down") {
		t.Errorf("one event unencodable, Kafka down for the other: answered %d %s, want 503 for Kafka, naming 2 of 2", code, got)
	}
}

// TestIgnoredDeliveryOfAContentKeyedSource: a delivery of a content-keyed source that carries
// no event is remembered under its key, so that the same signed bytes resent with unsigned
// headers that would map it to an event are a duplicate, and produce nothing.
func TestIgnoredDeliveryOfAContentKeyedSource(t *testing.T) {
	rec := &recorder{}
	srv := serve(t, func(o *ingress.Options) {
		o.Producer = rec
		o.Sources = append(o.Sources, hmacSource(t, "github", hubSettings))
	})
	body := `{"zen":"Keep it logically awesome.","data":{"post_id":"p1","platform":"x"}}`
	code, got := postTo(t, srv.addr, "/webhooks/github", hubHeaders("ping", "d-1", body), body)
	if code != 200 || !strings.HasPrefix(got, `{"status":"ignored"`) {
		t.Fatalf("a ping answered %d %s, want 200 ignored", code, got)
	}
	code, got = postTo(t, srv.addr, "/webhooks/github", hubHeaders("push", "d-2", body), body)
	if code != 200 || !strings.HasPrefix(got, `{"status":"duplicate"`) {
		t.Fatalf("the ping's bytes resent as a push answered %d %s, want 200 duplicate", code, got)
	}
	if n := len(rec.records()); n != 0 {
		t.Errorf("%d records, want none", n)
	}
}

// TestDedupKeyOnlyWhenTheIDIsUnsigned: a source whose event id is signed is deduplicated on
// it (a redelivery with other data is a duplicate, the record carries no dedup key); one
// whose id is in an unsigned header on a digest of what is signed (a redelivery under
// another id is a duplicate, the record carries the digest).
func TestDedupKeyOnlyWhenTheIDIsUnsigned(t *testing.T) {
	rec := &recorder{}
	srv := serve(t, func(o *ingress.Options) {
		o.Producer = rec
		o.Sources = append(o.Sources, hmacSource(t, "github", hubSettings), hmacSource(t, "signed", hubIDSigned))
	})
	signedBody := func(post string) string {
		return `{"id":"evt_signed","type":"post.published","data":{"post_id":"` + post + `","platform":"x"}}`
	}
	hubBody := `{"data":{"post_id":"p1","platform":"x"}}`
	for i, c := range []struct {
		path, body string
		h          map[string]string
		want       string
	}{
		{"/webhooks/signed", signedBody("p1"), hubHeaders("", "", signedBody("p1")), "accepted"},
		{"/webhooks/signed", signedBody("p2"), hubHeaders("", "", signedBody("p2")), "duplicate"},
		{"/webhooks/github", hubBody, hubHeaders("push", "d-1", hubBody), "accepted"},
		{"/webhooks/github", hubBody, hubHeaders("push", "d-2", hubBody), "duplicate"},
	} {
		code, got := postTo(t, srv.addr, c.path, c.h, c.body)
		if code != 200 || !strings.HasPrefix(got, `{"status":"`+c.want+`"`) {
			t.Fatalf("delivery %d to %s answered %d %s, want 200 %s", i, c.path, code, got, c.want)
		}
	}
	recs := rec.records()
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	if k := recordHeader(recs[0], dedup.KeyHeader); k != "" {
		t.Errorf("the record of a signed id carries %s %q", dedup.KeyHeader, k)
	}
	if k := recordHeader(recs[1], dedup.KeyHeader); !strings.HasPrefix(k, "signed_") || string(recs[1].Key) != "d-1" {
		t.Errorf("the record of an unsigned id %q carries %s %q, want the digest", recs[1].Key, dedup.KeyHeader, k)
	}
}
