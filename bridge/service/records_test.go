package service_test

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/schemas"
)

// TestRecordsReadBack reads the records back with a plain franz-go consumer and decodes their
// values with hamba/avro and the .avsc files directly, not with the bridge's codec, in both
// encodings: single-object without a registry, Confluent wire format with one.
func TestRecordsReadBack(t *testing.T) {
	for _, mode := range []string{"single-object", "registry"} {
		t.Run(mode, func(t *testing.T) {
			brokers := kafkatest.Brokers(t)
			cfg := testConfig(t, brokers)
			var reg *srfake.Registry
			if mode == "registry" {
				reg = srfake.New()
				t.Cleanup(reg.Close)
				cfg.SchemaRegistry.URL = reg.URL()
			}
			b := start(t, cfg)

			h, body := codiv("post.published", "evt_readback")
			h["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
			if a := send(t, httpClient, "POST", b.url+"/webhooks/codivupload", h, body); a.Status != "accepted" {
				t.Fatalf("%+v", a)
			}
			swBody := []byte(`{"type":"follower.gained","timestamp":"2026-01-01T00:00:00Z","data":{"platform":"x","account_id":"3001969357","follower_id":"4838219291","follower_name":"joemountain"}}`)
			if a := send(t, httpClient, "POST", b.url+"/webhooks/acme", standard("msg_readback", swBody), swBody); a.Status != "accepted" {
				t.Fatalf("%+v", a)
			}

			rec := only(t, readTopic(t, brokers, cfg.Kafka.TopicPrefix+"post.published"))
			wantHeaders(t, rec, map[string]string{"event-type": "post.published", "source": "codivupload", "provider": "codivupload",
				"traceparent": h["traceparent"]})
			got := decode(t, mode, reg, cfg.Kafka.TopicPrefix+"post.published", "post.published", rec.Value)
			wantFields(t, got, map[string]any{
				"event_id": "evt_readback", "event_type": "post.published", "source": "codivupload", "provider": "codivupload",
				"post_id": "post_k8m2v9x1", "platform": "instagram", "platform_post_url": "https://instagram.com/p/Cabc123/",
				"raw_payload": string(body),
			})
			if ts := unwrap(got["published_at"]).(time.Time); !ts.Equal(time.Date(2026, 5, 8, 14, 0, 42, 0, time.UTC)) {
				t.Errorf("published_at %v", ts)
			}
			if ts := unwrap(got["occurred_at"]).(time.Time); ts.Format(time.RFC3339) != bodyTimestamp(t, body) {
				t.Errorf("occurred_at %v", ts)
			}
			if ts := unwrap(got["received_at"]).(time.Time); time.Since(ts) > time.Minute || time.Since(ts) < 0 {
				t.Errorf("received_at %v is not the time of receipt", ts)
			}
			if ra, err := time.Parse(time.RFC3339Nano, header(rec, "received-at")); err != nil || time.Since(ra) > time.Minute {
				t.Errorf("received-at header %q", header(rec, "received-at"))
			}
			// The record's timestamp is the time of receipt, as the envelope says it.
			if ts := unwrap(got["received_at"]).(time.Time); !rec.Timestamp.Equal(ts) {
				t.Errorf("record timestamp %v, received_at %v: want the same instant", rec.Timestamp, ts)
			}

			rec = only(t, readTopic(t, brokers, cfg.Kafka.TopicPrefix+"follower.gained"))
			if string(rec.Key) != "msg_readback" {
				t.Errorf("key %q, want the webhook-id", rec.Key)
			}
			wantHeaders(t, rec, map[string]string{"event-type": "follower.gained", "source": "acme", "provider": "standard-webhooks"})
			got = decode(t, mode, reg, cfg.Kafka.TopicPrefix+"follower.gained", "follower.gained", rec.Value)
			wantFields(t, got, map[string]any{"event_id": "msg_readback", "follower_name": "joemountain", "account_id": "3001969357",
				"raw_payload": string(swBody)})
		})
	}
}

// decode strips the framing of the mode, checking it, and decodes the Avro with the .avsc.
func decode(t *testing.T, mode string, reg *srfake.Registry, topic, eventType string, value []byte) map[string]any {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("..", "..", "schemas", eventType+".avsc"))
	if err != nil {
		t.Fatal(err)
	}
	schema := avro.MustParse(string(text))
	var payload []byte
	switch mode {
	case "single-object":
		// The fingerprint of the spec's canonical form (hamba keeps logicalType in its own;
		// schemas tests the value against an independent implementation of the spec).
		s, _ := schemas.ForType(eventType)
		fp := s.Fingerprint
		if len(value) < 10 || value[0] != 0xC3 || value[1] != 0x01 || string(value[2:10]) != string(fp[:]) {
			t.Fatalf("value does not start with C3 01 and the schema's CRC-64-AVRO fingerprint %x: % x", fp, value[:min(10, len(value))])
		}
		payload = value[10:]
	case "registry":
		if len(value) < 5 || value[0] != 0 {
			t.Fatalf("value does not start with the Confluent magic byte: % x", value[:min(5, len(value))])
		}
		cl, err := sr.NewClient(sr.URLs(reg.URL()))
		if err != nil {
			t.Fatal(err)
		}
		subject, err := cl.SchemaByVersion(t.Context(), topic+"-value", -1)
		if err != nil {
			t.Fatalf("subject %s-value: %v", topic, err)
		}
		if id := int(binary.BigEndian.Uint32(value[1:5])); id != subject.ID {
			t.Fatalf("schema id %d, subject %s-value has %d", id, topic, subject.ID)
		}
		if avro.MustParse(subject.Schema.Schema).Fingerprint() != schema.Fingerprint() {
			t.Fatalf("the registered schema is not the .avsc")
		}
		payload = value[5:]
	}
	out := map[string]any{}
	if err := avro.Unmarshal(schema, payload, &out); err != nil {
		t.Fatalf("decode with %s.avsc: %v", eventType, err)
	}
	return out
}

func wantFields(t *testing.T, got map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if g := unwrap(got[k]); g != v {
			t.Errorf("field %s = %#v, want %#v", k, got[k], v)
		}
	}
}

// unwrap turns bytes into a string and a union, which may decode as {"type": value}, into
// its value.
func unwrap(v any) any {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for _, inner := range m {
			v = inner
		}
	}
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return v
}

func wantHeaders(t *testing.T, r *kgo.Record, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := header(r, k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if header(r, "received-at") == "" {
		t.Errorf("no received-at header")
	}
}

func only(t *testing.T, recs []*kgo.Record) *kgo.Record {
	t.Helper()
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	return recs[0]
}

// bodyTimestamp is the timestamp of a CodivUpload body.
func bodyTimestamp(t *testing.T, body []byte) string {
	t.Helper()
	var b struct {
		Timestamp string `json:"timestamp"`
	}
	if err := json.Unmarshal(body, &b); err != nil || b.Timestamp == "" {
		t.Fatalf("no timestamp in %s: %v", body, err)
	}
	return b.Timestamp
}
