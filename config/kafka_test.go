package config_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// kafkaSecurity returns a file whose kafka section ends with the YAML flow mapping entries
// extra (e.g. "tls: {ca: x}").
func kafkaSecurity(extra string) string {
	return `
kafka: {brokers: ["127.0.0.1:9093"], ` + extra + `}
sources: [{name: a, provider: codivupload, secrets: [x]}]`
}

func TestKafkaSecurity(t *testing.T) {
	ca := kafkatest.NewCA(t, "test")
	cert, key := ca.Issue(t, "bridge")
	caFile, certFile, keyFile := kafkatest.WriteFile(t, "ca.pem", ca.PEM), kafkatest.WriteFile(t, "c.pem", cert), kafkatest.WriteFile(t, "k.pem", key)
	notPEM := kafkatest.WriteFile(t, "not.pem", []byte("hello"))

	good := kafkaSecurity(fmt.Sprintf(`tls: {ca: %q, cert: %q, key: %q, server_name: kafka.example},
  sasl: {mechanism: SCRAM-SHA-512, username: bridge, password: "${KAFKA_PASSWORD}"}`, caFile, certFile, keyFile))
	cfg, err := config.Parse([]byte(good), env(map[string]string{"KAFKA_PASSWORD": "pw-from-env"}))
	if err != nil {
		t.Fatalf("a complete tls and sasl section is refused: %v", err)
	}
	k := cfg.Kafka
	if !k.TLS.On() || k.TLS.CA != caFile || k.TLS.ServerName != "kafka.example" || k.SASL.Password != "pw-from-env" {
		t.Fatalf("read %+v %+v", k.TLS, k.SASL)
	}
	if logged := fmt.Sprintf("%+v", cfg.Redacted()); strings.Contains(logged, "pw-from-env") {
		t.Fatalf("Redacted shows the SASL password: %s", logged)
	}
	if cfg.Kafka.SASL.Password != "pw-from-env" {
		t.Fatal("Redacted changed the original")
	}
	if on := config.Default().Kafka.TLS.On(); on {
		t.Fatal("TLS on by default")
	}
	if cfg, err := config.Parse([]byte(kafkaSecurity(`tls: {enabled: true}, sasl: {mechanism: PLAIN, username: u, password: p}`)), env(nil)); err != nil || !cfg.Kafka.TLS.On() {
		t.Fatalf("tls.enabled with the system's roots, PLAIN over it: %v", err)
	}

	for _, c := range []struct{ name, extra, want string }{
		{"unknown mechanism", `sasl: {mechanism: GSSAPI, username: u, password: p}`, `kafka.sasl.mechanism: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; got "GSSAPI"`},
		{"lower-case mechanism", `sasl: {mechanism: scram-sha-256, username: u, password: p}`, `kafka.sasl.mechanism: want PLAIN`},
		{"no username", `sasl: {mechanism: SCRAM-SHA-256, password: p}`, `kafka.sasl.username: required with a mechanism`},
		{"no password", `sasl: {mechanism: SCRAM-SHA-256, username: u}`, `kafka.sasl.password: required with a mechanism`},
		{"credentials without mechanism", `sasl: {username: u, password: p}`, `kafka.sasl.mechanism: credentials are set but no mechanism`},
		{"PLAIN without TLS", `sasl: {mechanism: PLAIN, username: u, password: p}`, `kafka.sasl.mechanism: PLAIN sends the password as it is`},
		{"cert without key", fmt.Sprintf(`tls: {cert: %q}`, certFile), `kafka.tls.key: a client certificate (kafka.tls.cert) needs its key`},
		{"key without cert", fmt.Sprintf(`tls: {key: %q}`, keyFile), `kafka.tls.cert: a client key (kafka.tls.key) needs its certificate`},
		{"unreadable CA file", `tls: {ca: /nonexistent/ca.pem}`, `kafka.tls.ca: cannot read the CA file: open /nonexistent/ca.pem`},
		{"CA file without PEM", fmt.Sprintf(`tls: {ca: %q}`, notPEM), `kafka.tls.ca: no PEM certificate in`},
		{"cert and key that do not match", fmt.Sprintf(`tls: {cert: %q, key: %q}`, certFile, caFile), `kafka.tls.cert: cannot load the client certificate and key`},
		{"unknown key", `tls: {ca_file: x}`, `unknown key`},
	} {
		_, err := config.Parse([]byte(kafkaSecurity(c.extra)), env(nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
}

// TestMessageBytes: the record limit is derived from the http limits when
// kafka.max_message_bytes is 0, follows them when they change and the file is validated
// again, and is taken as it is when set.
func TestMessageBytes(t *testing.T) {
	cfg, err := config.Parse([]byte(`
kafka: {brokers: ["127.0.0.1:9092"]}
sources: [{name: a, provider: codivupload, secrets: [x]}]`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Kafka.MessageBytes(), 4*(1<<20)+2*(32<<10)+16<<10; got != want || got != config.RecordBytes(cfg.HTTP) {
		t.Errorf("derived from the defaults: %d, want %d", got, want)
	}
	cfg.HTTP.MaxBodyBytes = 64 << 10
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Kafka.MessageBytes(), 4*(64<<10)+2*(32<<10)+16<<10; got != want {
		t.Errorf("after a smaller body limit: %d, want %d", got, want)
	}
	cfg.Kafka.MaxMessageBytes = 8 << 20
	if err := cfg.Validate(); err != nil || cfg.Kafka.MessageBytes() != 8<<20 {
		t.Errorf("set: %d, %v; want 8 MiB", cfg.Kafka.MessageBytes(), err)
	}
	if got := config.Default().Kafka.MessageBytes(); got != 0 {
		t.Errorf("not validated: %d, want 0 (franz-go's and the brokers' defaults)", got)
	}
}

// TestMinISR: min.insync.replicas is 2 from three replicas on, 1 below, never more than
// the replicas, and as configured otherwise.
func TestMinISR(t *testing.T) {
	for _, c := range []struct {
		configured  int
		replication int16
		want        int
	}{
		{0, 3, 2}, {0, 5, 2}, {0, 2, 1}, {0, 1, 1}, {0, -1, 0},
		{3, 5, 3}, {3, 2, 2}, {2, -1, 2}, {1, 3, 1},
	} {
		k := config.Kafka{MinInsyncReplicas: c.configured}
		if got := k.MinISR(c.replication); got != c.want {
			t.Errorf("min_insync_replicas %d, %d replicas: %d, want %d", c.configured, c.replication, got, c.want)
		}
	}
}

// TestCompression: every name kafka.compression accepts is produced with the codec it names,
// and a name it refuses is refused when the file is read.
func TestCompression(t *testing.T) {
	for name, want := range map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	} {
		cfg, err := config.Parse([]byte(kafkaSecurity("compression: "+name)), env(nil))
		if err != nil {
			t.Errorf("%s: refused: %v", name, err)
			continue
		}
		if got := cfg.Kafka.Codec(); got != want {
			t.Errorf("%s: codec %v, want %v", name, got, want)
		}
	}
	for _, name := range []string{"brotli", "LZ4", `""`} {
		_, err := config.Parse([]byte(kafkaSecurity("compression: "+name)), env(nil))
		if err == nil || !strings.Contains(err.Error(), "kafka.compression: want none, gzip, snappy, lz4 or zstd") {
			t.Errorf("%s: err %v, want kafka.compression refused", name, err)
		}
	}
}
