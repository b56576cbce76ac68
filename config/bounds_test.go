package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/config"
)

// boundsFile is a valid file with kafka's keys and other sections added; rest may name
// its own sources.
func boundsFile(kafka, rest string) string {
	if !strings.Contains(rest, "sources:") {
		rest = "sources: [{name: a, provider: codivupload, secrets: [x]}]\n" + rest
	}
	return "kafka: {brokers: [\"127.0.0.1:9092\"]" + kafka + "}\n" + rest
}

// TestBoundsTakeTheirEdges: every bounded number or duration accepts the value at its
// documented edge (the least or most allowed) and refuses the one just past it, naming the
// key. An off-by-one in a check refuses a setting the reference allows, or lets through
// the one it exists to stop.
func TestBoundsTakeTheirEdges(t *testing.T) {
	// A record of the default http limits: 4 × 1 MiB + 2 × 32 KiB + 16 KiB.
	const record = 4*(1<<20) + 2*(32<<10) + 16<<10
	cases := []struct {
		name, yaml string
		refused    string // the key named, or "" for accepted
	}{
		{"one call at once", boundsFile("", "consumers: {retries: {concurrency: 1}}"), ""},
		{"1024 calls at once", boundsFile("", "consumers: {retries: {concurrency: 1024}}"), ""},
		{"1025 calls at once", boundsFile("", "consumers: {retries: {concurrency: 1025}}"), "consumers.retries.concurrency"},
		{"a delay of half the retention", boundsFile(", retention: 1h", "dedup: {window: 1h}\nsources: [{name: a, provider: codivupload, secrets: [x], dedup: {window: 1h}}]\nconsumers: {retries: {delays: [\"30m\"]}}"), ""},
		{"1000 Slack messages a second", boundsFile("", "consumers: {alerts: {slack_rate: 1000}}"), ""},
		{"an unknown placeholder right after a known one", boundsFile("", "consumers: {retries: {action: {url: \"https://x/{post_id}{nope}\"}}}"), "consumers.retries.action.url"},
		{"no dedup ids", boundsFile("", "dedup: {max_ids: 0}"), "dedup.max_ids"},
		{"one dedup id", boundsFile("", "dedup: {max_ids: 1}"), ""},
		{"a window as long as the retention", boundsFile(", retention: 24h", ""), ""},
		{"a source window as long as the retention", boundsFile(", retention: 48h", "sources: [{name: a, provider: codivupload, secrets: [x], dedup: {window: 48h}}]"), ""},
		{"the broker's retention", boundsFile(", retention: 0s", ""), ""},
		{"the broker's retention, a sender retrying past the window", boundsFile(", retention: 0s", "dedup: {window: 1h}"), ""},
		{"an empty body limit", boundsFile("", "http: {max_body_bytes: 0}"), "http.max_body_bytes"},
		{"room in flight for one body", boundsFile("", "http: {max_body_bytes: 65536, max_body_bytes_in_flight: 65536}"), ""},
		{"room in flight for less than one body", boundsFile("", "http: {max_body_bytes: 65536, max_body_bytes_in_flight: 65535}"), "http.max_body_bytes_in_flight"},
		{"one request in flight", boundsFile("", "http: {max_requests_in_flight: 1}"), ""},
		{"no request in flight", boundsFile("", "http: {max_requests_in_flight: 0}"), "http.max_requests_in_flight"},
		{"the least header buffer", boundsFile("", "http: {max_header_bytes: 4096}"), ""},
		{"a header buffer too small", boundsFile("", "http: {max_header_bytes: 4095}"), "http.max_header_bytes"},
		{"no drain period", boundsFile("", "http: {drain_period: 0s}"), ""},
		{"a negative drain period", boundsFile("", "http: {drain_period: -1s}"), "http.drain_period"},
		{"one partition", boundsFile(", partitions: 1", ""), ""},
		{"no partitions", boundsFile(", partitions: 0", ""), "kafka.partitions"},
		{"the broker's replication factor", boundsFile(", replication_factor: -1", ""), ""},
		{"replication factor -2", boundsFile(", replication_factor: -2", ""), "kafka.replication_factor"},
		{"the default min.insync.replicas", boundsFile(", min_insync_replicas: 0", ""), ""},
		{"min.insync.replicas as many as the replicas", boundsFile(", replication_factor: 2, min_insync_replicas: 2", ""), ""},
		{"durable with two in-sync replicas", boundsFile(", replication_factor: 3, min_insync_replicas: 2, require_durable: true", ""), ""},
		{"durable with one in-sync replica", boundsFile(", replication_factor: 3, min_insync_replicas: 1, require_durable: true", ""), "kafka.require_durable"},
		{"a batch limit of exactly one record", boundsFile(", max_message_bytes: 4276224", ""), ""},
		{"a batch limit a byte short of a record", boundsFile(", max_message_bytes: 4276223", ""), "kafka.max_message_bytes"},
		{"the largest batch limit", boundsFile(", max_message_bytes: 67108864, max_buffered_bytes: 134217728", ""), ""},
		{"a batch limit past Kafka's", boundsFile(", max_message_bytes: 67108865, max_buffered_bytes: 134217730", ""), "kafka.max_message_bytes"},
		// 4 × 16756736 + 2 × 32 KiB + 16 KiB is 64 MiB.
		{"the largest body", boundsFile(", max_buffered_bytes: 134217728", "http: {max_body_bytes: 16756736}"), ""},
		{"a body a byte too large", boundsFile(", max_buffered_bytes: 134217736", "http: {max_body_bytes: 16756737}"), "http.max_body_bytes"},
		{"room to buffer two records", boundsFile(", max_buffered_bytes: 8552448", ""), ""},
		{"a poll every second", boundsFile("", "sources: [{name: pb, provider: post-bridge, secrets: [k], poll: {interval: 1s}}]"), ""},
		{"the least spool", boundsFile("", "spool: {max_bytes: 65536}"), ""},
		{"a spool a byte short", boundsFile("", "spool: {max_bytes: 65535}"), "spool.max_bytes"},
		{"a spool of exactly one record", boundsFile("", "spool: {dir: /tmp/spool, max_bytes: 4276224}"), ""},
		{"a spool a byte short of a record", boundsFile("", "spool: {dir: /tmp/spool, max_bytes: 4276223}"), "spool.max_bytes"},
		{"room to buffer less than two records", boundsFile(", max_buffered_bytes: 8552447", ""), "kafka.max_buffered_bytes"},
	}
	if 2*record != 8552448 || record != 4276224 {
		t.Fatalf("the cases assume a record of %d bytes", record)
	}
	for _, c := range cases {
		_, err := config.Parse([]byte(c.yaml), env(nil))
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused+":")):
			t.Errorf("%s: got %v, want %s refused", c.name, err, c.refused)
		}
	}
}

// TestOneComplaintPerMistake: a value refused on its own is not blamed a second time, in
// another key's words, by a check that depends on it.
func TestOneComplaintPerMistake(t *testing.T) {
	cases := []struct{ name, yaml, want, not string }{
		{"no transaction timeout", boundsFile("", "consumers: {retries: {transaction_timeout: 0s}}"),
			"consumers.retries.transaction_timeout: must be positive", "too short"},
		{"no action timeout", boundsFile("", "consumers: {retries: {transaction_timeout: 12s, action: {timeout: 0s}}}"),
			"consumers.retries.action.timeout: must be positive", "too short"},
		{"no replicas", boundsFile(", replication_factor: 0, min_insync_replicas: 1", ""),
			"kafka.replication_factor: must be positive", "more than kafka.replication_factor"},
		{"a window longer than the retention", boundsFile(", retention: 1h", "dedup: {window: 2h}\nsources: [{name: a, provider: ayrshare, secrets: [x]}]"),
			"dedup.window: 2h0m0s is longer than kafka.retention 1h0m0s", "retry horizon"},
	}
	for _, c := range cases {
		_, err := config.Parse([]byte(c.yaml), env(nil))
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), c.not) {
			t.Errorf("%s: got %v, want %q and no %q", c.name, err, c.want, c.not)
		}
	}
}

// TestSourceNameAlphabetEdges: a source's name (a URL path segment) takes every letter and
// digit, the ends of each range included, and refuses the characters just outside them.
func TestSourceNameAlphabetEdges(t *testing.T) {
	for _, name := range []string{"az", "AZ", "09", "a-b_c.d"} {
		if _, err := config.Parse([]byte(boundsFile("", "sources: [{name: \""+name+"\", provider: codivupload, secrets: [x]}]")), env(nil)); err != nil {
			t.Errorf("%q: refused: %v", name, err)
		}
	}
	for _, c := range []rune{'`', '{', '@', '[', '/', ':', ' '} {
		name := "a" + string(c)
		_, err := config.Parse([]byte(boundsFile("", "sources: [{name: \""+name+"\", provider: codivupload, secrets: [x]}]")), env(nil))
		if err == nil || !strings.Contains(err.Error(), "sources[0].name:") {
			t.Errorf("%q: got %v, want sources[0].name refused", name, err)
		}
	}
}

// TestSpoolsOnlyBelowTheHorizon: a source spools by default when its sender's retry horizon
// is shorter than spool.horizon_below, not when it is as long.
func TestSpoolsOnlyBelowTheHorizon(t *testing.T) {
	cfg, err := config.Parse([]byte(boundsFile("", "spool: {dir: /tmp/spool, horizon_below: 1h}\nsources: [{name: ayrshare, provider: ayrshare, secrets: [s]}]")), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Spools(cfg.Sources[0]) { // ayrshare retries for an hour
		t.Error("a source whose sender retries for exactly horizon_below spools")
	}
	cfg.Spool.HorizonBelow = config.Duration(time.Hour + time.Second)
	if !cfg.Spools(cfg.Sources[0]) {
		t.Error("a source whose sender retries for less than horizon_below does not spool")
	}
}

// TestWrongTypeIsNotAnUnknownKey: a value of the wrong type is reported as such, not as an
// unknown key.
func TestWrongTypeIsNotAnUnknownKey(t *testing.T) {
	_, err := config.Parse([]byte(boundsFile(", partitions: many", "")), env(nil))
	if err == nil || !strings.Contains(err.Error(), "cannot unmarshal !!str `many` into int32") || strings.Contains(err.Error(), "unknown key") {
		t.Errorf("got %v, want the value's type refused", err)
	}
}

// TestLoad reads a file by its path (its ${VAR}s from the environment) and says which file
// it could not read.
func TestLoad(t *testing.T) {
	t.Setenv("CODIVUPLOAD_WEBHOOK_SECRET", "s")
	cfg, err := config.Load("testdata/reference.yaml")
	if err != nil || cfg.Sources[0].Secrets[0] != "s" {
		t.Fatalf("reference.yaml: %v, %+v", err, cfg.Sources)
	}
	if _, err := config.Load("testdata/missing.yaml"); err == nil || !strings.Contains(err.Error(), "testdata/missing.yaml") {
		t.Errorf("a missing file: %v, want its path named", err)
	}
}

// TestTLSEnabled: HTTPS is configured by a certificate or a key (both are required together,
// which validation checks).
func TestTLSEnabled(t *testing.T) {
	for _, c := range []struct {
		tls  config.TLS
		want bool
	}{{config.TLS{}, false}, {config.TLS{Cert: "c"}, true}, {config.TLS{Key: "k"}, true}, {config.TLS{Cert: "c", Key: "k"}, true}} {
		if got := c.tls.Enabled(); got != c.want {
			t.Errorf("%+v: Enabled %v, want %v", c.tls, got, c.want)
		}
	}
}
