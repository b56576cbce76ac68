package config_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/config"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestReferenceConfig(t *testing.T) {
	b, err := os.ReadFile("testdata/reference.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b, env(map[string]string{"CODIVUPLOAD_WEBHOOK_SECRET": "s3cr3t: with 'yaml' $syntax"}))
	if err != nil {
		t.Fatalf("the reference configuration must be accepted as written: %v", err)
	}
	if got := cfg.Sources[0].Secrets[0]; got != "s3cr3t: with 'yaml' $syntax" {
		t.Errorf("expanded secret = %q", got)
	}
	if cfg.Kafka.ProduceTimeout.D() != 5*time.Second || cfg.Dedup.Window.D() != 24*time.Hour {
		t.Errorf("durations: produce_timeout %s, window %s", cfg.Kafka.ProduceTimeout, cfg.Dedup.Window)
	}
	if cfg.Kafka.TopicPrefix != "social." || cfg.Kafka.Brokers[0] != "127.0.0.1:9092" || cfg.HTTP.MaxBodyBytes != 1048576 {
		t.Errorf("values not read: %+v", cfg.Kafka)
	}
	if cfg.SchemaRegistry.URL != "" || !cfg.Kafka.CreateTopics || cfg.Dedup.MaxIDs <= 0 {
		t.Errorf("defaults not kept: %+v %+v", cfg.SchemaRegistry, cfg.Dedup)
	}
}

const valid = `
kafka: {brokers: ["127.0.0.1:9092"]}
sources: [{name: a, provider: codivupload, secrets: [x]}]
`

func TestRefusesBadFiles(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown provider", `
kafka: {brokers: ["127.0.0.1:9092"]}
sources: [{name: a, provider: zapier, secrets: [x]}]`, `sources[0].provider: unknown provider "zapier"`},
		{"source without a secret", `
kafka: {brokers: ["127.0.0.1:9092"]}
sources: [{name: a, provider: codivupload}]`, `sources[0].secrets: source "a" has no secret`},
		{"bad duration", valid + `
dedup: {window: 24}`, `bad duration "24"`},
		{"bad duration unit", `
kafka: {brokers: ["127.0.0.1:9092"], produce_timeout: 5 seconds}
sources: [{name: a, provider: codivupload, secrets: [x]}]`, `bad duration "5 seconds"`},
		{"no brokers", `
sources: [{name: a, provider: codivupload, secrets: [x]}]`, `kafka.brokers: no brokers`},
		{"broker without port", `
kafka: {brokers: ["localhost"]}
sources: [{name: a, provider: codivupload, secrets: [x]}]`, `kafka.brokers[0]: want host:port`},
		{"duplicate source names", `
kafka: {brokers: ["127.0.0.1:9092"]}
sources: [{name: a, provider: codivupload, secrets: [x]}, {name: a, provider: codivupload, secrets: [y]}]`, `sources[1].name: duplicate source name "a"`},
		{"no sources", `
kafka: {brokers: ["127.0.0.1:9092"]}`, `sources: no sources`},
		{"unknown key", valid + `
http: {listn: ":8080"}`, `unknown key: line 5: field listn not found`},
		{"unset variable", `
kafka: {brokers: ["127.0.0.1:9092"]}
sources: [{name: a, provider: codivupload, secrets: ["${NOPE}"]}]`, `line 3: environment variable NOPE is not set`},
		{"bad standard-webhooks secret", `
kafka: {brokers: ["127.0.0.1:9092"]}
sources: [{name: a, provider: standard-webhooks, secrets: ["whsec_!!notbase64!!"]}]`, `sources[0].secrets[0]`},
		{"tls half set", valid + `
http: {tls: {cert: a.pem}}`, `http.tls: cert and key must be set together`},
		{"window longer than retention", `
kafka: {brokers: ["127.0.0.1:9092"], retention: 1h}
sources: [{name: a, provider: codivupload, secrets: [x]}]`, `dedup.window: 24h0m0s is longer than kafka.retention`},
		{"bad source name", `
kafka: {brokers: ["127.0.0.1:9092"]}
sources: [{name: "a/b", provider: codivupload, secrets: [x]}]`, `sources[0].name: "a/b"`},
		{"not yaml", "kafka: [", "config: "},
		{"unknown dedup store", valid + `
dedup: {store: memcached}`, `dedup.store: want memory or redis, got "memcached"`},
		{"redis without addr", valid + `
dedup: {store: redis}`, `dedup.redis.addr: want host:port, got ""`},
		{"redis addr without the redis store", valid + `
dedup: {redis: {addr: "127.0.0.1:6379"}}`, `dedup.redis.addr: set, but dedup.store is "memory"`},
		{"redis lease zero", valid + `
dedup: {store: redis, redis: {addr: "127.0.0.1:6379", lease: 0s}}`, `dedup.redis.lease: must be positive`},
		{"redis negative db", valid + `
dedup: {store: redis, redis: {addr: "127.0.0.1:6379", db: -1}}`, `dedup.redis.db: must not be negative`},
		{"snapshot with redis", valid + `
dedup: {store: redis, snapshot: /var/lib/bridge/dedup, redis: {addr: "127.0.0.1:6379"}}`, `dedup.snapshot: only the memory store`},
		{"snapshot without rebuild", valid + `
dedup: {snapshot: /var/lib/bridge/dedup, rebuild: false}`, `dedup.snapshot: is read only by the rebuild at start, and dedup.rebuild is false`},
		{"snapshot every zero", valid + `
dedup: {snapshot: /var/lib/bridge/dedup, snapshot_every: 0s}`, `dedup.snapshot_every: must be positive`},
		{"negative source window", `
kafka: {brokers: ["127.0.0.1:9092"]}
sources: [{name: a, provider: codivupload, secrets: [x], dedup: {window: -1h}}]`, `sources[0].dedup.window: must be positive`},
		{"source window longer than retention", `
kafka: {brokers: ["127.0.0.1:9092"], retention: 48h}
sources: [{name: a, provider: codivupload, secrets: [x], dedup: {window: 72h}}]`, `sources[0].dedup.window: 72h0m0s is longer than kafka.retention 48h0m0s`},
		{"retry horizon longer than retention", `
kafka: {brokers: ["127.0.0.1:9092"], retention: 48h}
sources: [{name: acme, provider: standard-webhooks, secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}]`,
			`kafka.retention: 48h0m0s is shorter than the dedup window of source "acme", 76h0m0s: the retry horizon of its standard-webhooks sender`},
		{"bad compression", `
kafka: {brokers: ["127.0.0.1:9092"], compression: brotli}
sources: [{name: a, provider: codivupload, secrets: [x]}]`, `kafka.compression: want none, gzip, snappy, lz4 or zstd; got "brotli"`},
		{"body budget below one body", valid + `
http: {max_body_bytes_in_flight: 1024}`, `http.max_body_bytes_in_flight: must be at least http.max_body_bytes (1048576), got 1024`},
		{"no requests in flight", valid + `
http: {max_requests_in_flight: 0}`, `http.max_requests_in_flight: must be positive, got 0`},
		{"header buffer too small", valid + `
http: {max_header_bytes: 1024}`, `http.max_header_bytes: must be at least 4096, got 1024`},
		{"drain as long as the shutdown", valid + `
http: {drain_period: 30s, shutdown_timeout: 30s}`, `http.drain_period: must be at least 0 and shorter than http.shutdown_timeout (30s)`},
		{"pprof without an admin listener", valid + `
http: {admin_pprof: true}`, `http.admin_pprof: needs http.admin_listen`},
		{"admin listener on the webhooks' address", valid + `
http: {listen: "127.0.0.1:8080", admin_listen: "127.0.0.1:8080"}`, `http.admin_listen: must differ from http.listen`},
		{"admin listener without port", valid + `
http: {admin_listen: "localhost"}`, `http.admin_listen: want host:port`},
		{"buffer smaller than two records", `
http: {max_body_bytes: 1048576}
kafka: {brokers: ["127.0.0.1:9092"], max_buffered_bytes: 4194304}
sources: [{name: a, provider: codivupload, secrets: [x]}]`, `kafka.max_buffered_bytes: must be at least twice the largest record (kafka.max_message_bytes, derived from http.max_body_bytes: 4276224), got 4194304`},
		{"record limit below a body's record", `
kafka: {brokers: ["127.0.0.1:9092"], max_message_bytes: 1048588}
sources: [{name: a, provider: codivupload, secrets: [x]}]`, `kafka.max_message_bytes: 1048588 is less than a record of a body of http.max_body_bytes may take (4276224)`},
		{"record limit over a request's", `
kafka: {brokers: ["127.0.0.1:9092"], max_message_bytes: 104857600, max_buffered_bytes: 536870912}
sources: [{name: a, provider: codivupload, secrets: [x]}]`, `kafka.max_message_bytes: must be at most 67108864`},
		{"body whose record is over a request's limit", `
http: {max_body_bytes: 20971520}
kafka: {brokers: ["127.0.0.1:9092"], max_buffered_bytes: 536870912}
sources: [{name: a, provider: codivupload, secrets: [x]}]`, `http.max_body_bytes: 20971520 is too large: a record of such a body may take 83968000 bytes`},
		{"negative min insync replicas", `
kafka: {brokers: ["127.0.0.1:9092"], min_insync_replicas: -1}
sources: [{name: a, provider: codivupload, secrets: [x]}]`, `kafka.min_insync_replicas: must be positive, or 0 for the default; got -1`},
		{"min insync replicas over the replication", `
kafka: {brokers: ["127.0.0.1:9092"], replication_factor: 2, min_insync_replicas: 3}
sources: [{name: a, provider: codivupload, secrets: [x]}]`, `kafka.min_insync_replicas: 3 is more than kafka.replication_factor (2): every write would be refused`},
		{"durable on one replica", `
kafka: {brokers: ["127.0.0.1:9092"], replication_factor: 1, require_durable: true}
sources: [{name: a, provider: codivupload, secrets: [x]}]`, `kafka.require_durable: needs kafka.replication_factor of 2 or more, got 1`},
		{"durable on the broker's default replication", `
kafka: {brokers: ["127.0.0.1:9092"], replication_factor: -1, require_durable: true}
sources: [{name: a, provider: codivupload, secrets: [x]}]`, `kafka.require_durable: needs kafka.replication_factor of 2 or more, got -1`},
		{"durable on one in-sync replica", `
kafka: {brokers: ["127.0.0.1:9092"], min_insync_replicas: 1, require_durable: true}
sources: [{name: a, provider: codivupload, secrets: [x]}]`, `kafka.require_durable: needs kafka.min_insync_replicas of 2 or more (a record acknowledged by two brokers), got 1`},
		{"durable on two replicas' derived min insync replicas", `
kafka: {brokers: ["127.0.0.1:9092"], replication_factor: 2, require_durable: true}
sources: [{name: a, provider: codivupload, secrets: [x]}]`, `kafka.require_durable: needs kafka.min_insync_replicas of 2 or more`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Parse([]byte(c.yaml), env(nil))
			if err == nil {
				t.Fatalf("accepted; want an error containing %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestErrorsNeverShowSecrets(t *testing.T) {
	const secret = "whsec_!!very-secret-value!!"
	_, err := config.Parse([]byte(`
kafka: {brokers: ["127.0.0.1:9092"]}
sources: [{name: a, provider: standard-webhooks, secrets: ["`+secret+`"]}]`), env(nil))
	if err == nil || strings.Contains(err.Error(), "very-secret-value") {
		t.Fatalf("want an error without the secret, got %v", err)
	}
}

func TestRedacted(t *testing.T) {
	cfg, err := config.Parse([]byte(valid+`
schema_registry: {url: 'http://127.0.0.1:1', password: pw}
dedup: {store: redis, redis: {addr: "127.0.0.1:6379", password: redispw}}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Redacted()
	if r.Sources[0].Secrets[0] != "[redacted]" || r.SchemaRegistry.Password != "[redacted]" || r.Dedup.Redis.Password != "[redacted]" {
		t.Fatalf("not redacted: %+v", r)
	}
	if cfg.Dedup.Redis.Password != "redispw" {
		t.Fatal("Redacted changed the original redis password")
	}
	if cfg.Sources[0].Secrets[0] != "x" {
		t.Fatal("Redacted changed the original")
	}
}

// TestSourceWindow: a source's window is its own when set, else the longer of dedup.window
// and its sender's retry horizon.
func TestSourceWindow(t *testing.T) {
	cfg, err := config.Parse([]byte(`
kafka: {brokers: ["127.0.0.1:9092"]}
dedup: {window: 48h}
sources:
  - {name: codiv, provider: codivupload, secrets: [x]}
  - {name: acme, provider: standard-webhooks, secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}
  - {name: short, provider: standard-webhooks, secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], dedup: {window: 12h}}
  - {name: long, provider: codivupload, secrets: [x], dedup: {window: 100h}}
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{"codiv": 48 * time.Hour, "acme": 76 * time.Hour, "short": 12 * time.Hour, "long": 100 * time.Hour}
	for _, s := range cfg.Sources {
		if got := cfg.SourceWindow(s); got != want[s.Name] {
			t.Errorf("%s: window %v, want %v", s.Name, got, want[s.Name])
		}
	}
	if cfg.Dedup.Store != "memory" || cfg.Dedup.Redis.KeyPrefix != "bridge:dedup:" || cfg.Dedup.Redis.Lease.D() != 10*time.Second ||
		cfg.Dedup.Snapshot != "" || cfg.Dedup.SnapshotEvery.D() != 5*time.Minute {
		t.Errorf("dedup defaults: %+v", cfg.Dedup)
	}
}

func TestRegistryCredentialsInURL(t *testing.T) {
	cfg, err := config.Parse([]byte(valid+"\nschema_registry: {url: 'https://svc-user:pw-in-url@registry.example:8081/base'}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%+v", cfg.Redacted()); strings.Contains(got, "pw-in-url") || !strings.Contains(got, "registry.example:8081") {
		t.Errorf("redacted configuration %s", got)
	}
	base, user, password := cfg.SchemaRegistry.Endpoint()
	if base != "https://registry.example:8081/base" || user != "svc-user" || password != "pw-in-url" {
		t.Errorf("endpoint %q, user %q, password %q", base, user, password)
	}
	if !cfg.SchemaRegistry.Register {
		t.Error("schema_registry.register defaults to false")
	}
	for name, yaml := range map[string]string{
		"two sets of credentials": "{url: 'https://u:pw-in-url@r.example', username: u, password: p}",
		"not http":                "{url: 'ftp://u:pw-in-url@r.example'}",
	} {
		_, err := config.Parse([]byte(valid+"\nschema_registry: "+yaml+"\n"), env(nil))
		if err == nil || !strings.Contains(err.Error(), "schema_registry.url") || strings.Contains(err.Error(), "pw-in-url") {
			t.Errorf("%s: %v; want an error naming schema_registry.url without the password", name, err)
		}
	}
}
