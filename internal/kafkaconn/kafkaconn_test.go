package kafkaconn_test

import (
	"context"
	"crypto/tls"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/socialbridge/bridge/bridge/producer"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkaconn"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// pki is what a secure test broker and its clients are set up with: a CA for the broker's
// certificate, another for client certificates, and files for the clients.
type pki struct {
	ca, otherCA, clientCert, clientKey string // files
	broker                             kafkatest.Security
}

const (
	user     = "bridge"
	password = "bridge-pw-5e1f0c"
)

func newPKI(t *testing.T) pki {
	ca, clients, stranger := kafkatest.NewCA(t, "brokers"), kafkatest.NewCA(t, "clients"), kafkatest.NewCA(t, "stranger")
	brokerCert, brokerKey := ca.Issue(t, "127.0.0.1", "localhost", "kafka.test")
	clientCert, clientKey := clients.Issue(t, "bridge-client")
	return pki{
		ca:         kafkatest.WriteFile(t, "ca.pem", ca.PEM),
		otherCA:    kafkatest.WriteFile(t, "stranger.pem", stranger.PEM),
		clientCert: kafkatest.WriteFile(t, "client.pem", clientCert),
		clientKey:  kafkatest.WriteFile(t, "client-key.pem", clientKey),
		broker: kafkatest.Security{
			CertPEM: brokerCert, KeyPEM: brokerKey, ClientCAPEM: clients.PEM,
			Users: map[string]string{user: password},
		},
	}
}

// kafkaConfig returns the kafka section for seed, with its TLS and SASL settings applied,
// checked as `bridge serve` checks it.
func kafkaConfig(t *testing.T, seed string, tlsCfg config.KafkaTLS, saslCfg config.KafkaSASL) config.Kafka {
	t.Helper()
	cfg := config.Default()
	cfg.Kafka.Brokers, cfg.Kafka.TLS, cfg.Kafka.SASL = []string{seed}, tlsCfg, saslCfg
	cfg.Kafka.ProduceTimeout = config.Duration(10 * time.Second)
	cfg.Sources = []config.Source{{Name: "s", Provider: "codivupload", Secrets: []string{"x"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config refused: %v", err)
	}
	return cfg.Kafka
}

// produce sends one record with the bridge's producer options built from k.
func produce(t *testing.T, k config.Kafka, topic, value string) error {
	t.Helper()
	cl, err := kgo.NewClient(producer.Options(k)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(value)}).FirstErr()
}

// TestSecureBroker produces with the bridge's producer options to a real broker over each
// kind of secured listener, and checks that a wrong password, an untrusted CA, a missing
// client certificate and a wrong server name each fail the record with an error saying so
// (and never showing the password).
func TestSecureBroker(t *testing.T) {
	p := newPKI(t)
	b := kafkatest.StartSecureBroker(t, p.broker)
	const topic = "secured"
	createTopic(t, b.Addr(), topic)

	trust := config.KafkaTLS{CA: p.ca}
	mtls := config.KafkaTLS{CA: p.ca, Cert: p.clientCert, Key: p.clientKey}
	scram256 := config.KafkaSASL{Mechanism: config.SASLScramSHA256, Username: user, Password: password}
	scram512 := config.KafkaSASL{Mechanism: config.SASLScramSHA512, Username: user, Password: password}
	plain := config.KafkaSASL{Mechanism: config.SASLPlain, Username: user, Password: password}

	ok := []struct {
		name     string
		listener string
		tls      config.KafkaTLS
		sasl     config.KafkaSASL
	}{
		{"TLS with a client certificate", "SSL", mtls, config.KafkaSASL{}},
		{"SCRAM-SHA-256 over TLS", "SASL_SSL", trust, scram256},
		{"SCRAM-SHA-512 over TLS", "SASL_SSL", trust, scram512},
		{"PLAIN over TLS", "SASL_SSL", trust, plain},
		{"SCRAM-SHA-512 without TLS", "SASL_PLAINTEXT", config.KafkaTLS{}, scram512},
		{"server name", "SASL_SSL", config.KafkaTLS{CA: p.ca, ServerName: "kafka.test"}, scram256},
	}
	for _, c := range ok {
		if err := produce(t, kafkaConfig(t, b.Listener(c.listener), c.tls, c.sasl), topic, c.name); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}

	wrongPassword := scram256
	wrongPassword.Password = "not-" + password
	bad := []struct {
		name     string
		listener string
		tls      config.KafkaTLS
		sasl     config.KafkaSASL
		want     string
	}{
		{"wrong password", "SASL_SSL", trust, wrongPassword, "SASL_AUTHENTICATION_FAILED"},
		{"untrusted CA", "SASL_SSL", config.KafkaTLS{CA: p.otherCA}, scram256, "certificate signed by unknown authority"},
		{"no client certificate", "SSL", trust, config.KafkaSASL{}, "tls: bad certificate"},
		{"wrong server name", "SASL_SSL", config.KafkaTLS{CA: p.ca, ServerName: "other.test"}, scram256, "not other.test"},
	}
	for _, c := range bad {
		k := kafkaConfig(t, b.Listener(c.listener), c.tls, c.sasl)
		k.ProduceTimeout = config.Duration(3 * time.Second) // the record fails after it, with the last error
		err := produce(t, k, topic, c.name)
		t.Logf("%s: %v", c.name, err)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one saying %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), password) {
			t.Errorf("%s: the error shows the password: %v", c.name, err)
		}
	}

	var want []string
	for _, c := range ok {
		want = append(want, c.name)
	}
	if got := readValues(t, b.Addr(), topic); !slices.Equal(got, want) {
		t.Errorf("the topic holds %q, want %q", got, want)
	}
}

// TestOptions checks the options built from a configuration, without a broker.
func TestOptions(t *testing.T) {
	p := newPKI(t)
	k := kafkaConfig(t, "127.0.0.1:9092", config.KafkaTLS{CA: p.ca, Cert: p.clientCert, Key: p.clientKey, ServerName: "kafka.test"},
		config.KafkaSASL{Mechanism: config.SASLScramSHA512, Username: user, Password: password})
	cl, err := kgo.NewClient(kafkaconn.Options(k)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tc, _ := cl.OptValue(kgo.DialTLSConfig).(*tls.Config)
	if tc == nil || tc.ServerName != "kafka.test" || tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.MinVersion < tls.VersionTLS12 {
		t.Fatalf("TLS config %+v", tc)
	}
	ms, _ := cl.OptValue(kgo.SASL).([]sasl.Mechanism)
	if len(ms) != 1 || ms[0].Name() != config.SASLScramSHA512 {
		t.Fatalf("SASL mechanisms %v", ms)
	}

	plain := kafkaConfig(t, "127.0.0.1:9092", config.KafkaTLS{}, config.KafkaSASL{})
	cl2, err := kgo.NewClient(kafkaconn.Options(plain)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	if tc, _ := cl2.OptValue(kgo.DialTLSConfig).(*tls.Config); tc != nil {
		t.Fatal("TLS without a tls section")
	}
	if ms, _ := cl2.OptValue(kgo.SASL).([]sasl.Mechanism); len(ms) != 0 {
		t.Fatal("SASL without a sasl section")
	}
}

func createTopic(t *testing.T, seed, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// readValues reads the values of topic, one partition, up to its end, over the PLAINTEXT
// listener seed.
func readValues(t *testing.T, seed, topic string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	var out []string
	for int64(len(out)) < end.Offset && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}
