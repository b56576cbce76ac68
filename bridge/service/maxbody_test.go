package service_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// codivOfSize builds a signed CodivUpload delivery of eventType whose body is exactly size
// bytes: most of it one typed field (platform_post_url), so that the record holds the body
// twice, as raw_payload and as that field.
func codivOfSize(t *testing.T, eventType, id string, size int) (map[string]string, []byte) {
	t.Helper()
	head := fmt.Sprintf(`{"event":%q,"id":%q,"timestamp":%q,"data":{"post_id":"post_max","platform":"x","platform_post_url":"https://x.com/`,
		eventType, id, time.Now().UTC().Format(time.RFC3339))
	tail := `"}}`
	pad := size - len(head) - len(tail)
	if pad < 0 {
		t.Fatalf("a body of %d bytes cannot hold the envelope", size)
	}
	body := []byte(head + strings.Repeat("p", pad) + tail)
	return codivHeaders(eventType, body), body
}

// TestBodyOfMaxBodyBytes: a verified delivery whose body is exactly http.max_body_bytes (the
// default, 1 MiB) is answered 200 and is in its topic; one of the same size that cannot be
// normalized is answered 202 and is in quarantine. Neither meets a record limit of franz-go
// or of the topics the bridge created.
func TestBodyOfMaxBodyBytes(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := testConfig(t, brokers)
	cfg.HTTP.MaxBodyBytes = 1 << 20
	if err := cfg.Validate(); err != nil { // derives the record limit from the body's again
		t.Fatal(err)
	}
	b := start(t, cfg)

	h, body := codivOfSize(t, event.PostPublished, "evt_max_body", cfg.HTTP.MaxBodyBytes)
	if a := send(t, httpClient, "POST", b.url+"/webhooks/codivupload", h, body); a.Code != 200 || a.Status != "accepted" {
		t.Fatalf("a body of exactly max_body_bytes (%d): %+v; want 200 accepted", len(body), a)
	}
	recs := readTopic(t, brokers, event.Topic(cfg.Kafka.TopicPrefix, event.PostPublished))
	if n := countKey(recs, "evt_max_body"); n != 1 {
		t.Fatalf("evt_max_body is in its topic %d times; want 1", n)
	}
	if !bytes.Contains(recs[0].Value, body) {
		t.Error("the record does not hold the body as raw_payload")
	}

	h, body = codivOfSize(t, "post.unheard_of", "evt_max_quarantined", cfg.HTTP.MaxBodyBytes)
	if a := send(t, httpClient, "POST", b.url+"/webhooks/codivupload", h, body); a.Code != 202 || a.Status != "quarantined" {
		t.Fatalf("an unnormalizable body of exactly max_body_bytes: %+v; want 202 quarantined", a)
	}
	dead := only(t, readTopic(t, brokers, event.QuarantineTopic(cfg.Kafka.TopicPrefix)))
	if !bytes.Equal(dead.Value, body) {
		t.Error("the quarantined value is not the body as sent")
	}
}
