package service_test

import (
	"strings"
	"testing"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestKafkaOverTLSAndSCRAM runs a whole bridge against a broker it reaches only over
// SASL_SSL with SCRAM-SHA-256, trusting a CA of the test's own: topics are created, a
// delivery is answered 200 once it is in Kafka, and a second bridge rebuilds its dedup set
// from the topics, so it answers the redelivery "duplicate".
func TestKafkaOverTLSAndSCRAM(t *testing.T) {
	ca := kafkatest.NewCA(t, "brokers")
	cert, key := ca.Issue(t, "127.0.0.1")
	broker := kafkatest.StartSecureBroker(t, kafkatest.Security{
		CertPEM: cert, KeyPEM: key, Users: map[string]string{"bridge": "scram-pw-3c9d"},
	})
	cfg := testConfig(t, []string{broker.Listener("SASL_SSL")})
	cfg.Kafka.TLS = config.KafkaTLS{CA: kafkatest.WriteFile(t, "ca.pem", ca.PEM)}
	cfg.Kafka.SASL = config.KafkaSASL{Mechanism: config.SASLScramSHA256, Username: "bridge", Password: "scram-pw-3c9d"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	b := start(t, cfg)

	h, body := codiv("post.published", "evt_over_scram")
	if a := send(t, httpClient, "POST", b.url+"/webhooks/codivupload", h, body); a.Code != 200 || a.Status != "accepted" {
		t.Fatalf("answered %d %q %s", a.Code, a.Status, a.Error)
	}
	recs := readTopic(t, []string{broker.Addr()}, cfg.Kafka.TopicPrefix+"post.published")
	if len(recs) != 1 || string(recs[0].Key) != "evt_over_scram" {
		t.Fatalf("post.published holds %d records, want the accepted one", len(recs))
	}

	b.stop(t)
	again := start(t, cfg)
	if a := send(t, httpClient, "POST", again.url+"/webhooks/codivupload", h, body); a.Code != 200 || a.Status != "duplicate" {
		t.Fatalf("after a restart, the redelivery answered %d %q %s; want 200 duplicate", a.Code, a.Status, a.Error)
	}
	if strings.Contains(b.logs.String()+again.logs.String(), "scram-pw-3c9d") {
		t.Fatal("the SASL password is in the log")
	}
}
