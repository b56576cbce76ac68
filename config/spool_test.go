package config_test

import (
	"os"
	"strings"
	"testing"

	"github.com/socialbridge/bridge/config"
)

// TestSpoolBlock reads PRODUCT.md's spool block as written.
func TestSpoolBlock(t *testing.T) {
	b, err := os.ReadFile("testdata/spool.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b, env(map[string]string{"POSTIZ_URL_TOKEN": "tok_0123456789abcdef"}))
	if err != nil {
		t.Fatalf("the spool block must be accepted as written: %v", err)
	}
	if cfg.Spool.Dir != "/var/lib/bridge/spool" || cfg.Spool.MaxBytes != 1<<30 || !cfg.Spools(cfg.Sources[0]) {
		t.Fatalf("spool %+v, postiz spools %v", cfg.Spool, cfg.Spools(cfg.Sources[0]))
	}
	if got := cfg.SpoolingSources(); len(got) != 1 || got[0] != "postiz" {
		t.Errorf("spooling sources %v", got)
	}
}

// TestSpoolDefaultByHorizon: with spool.horizon_below, a source spools when its sender's retry
// horizon is known and shorter, unless its own spool key says otherwise; without spool.dir
// nothing spools.
func TestSpoolDefaultByHorizon(t *testing.T) {
	cfg, err := config.Parse([]byte(`
kafka: {brokers: ["127.0.0.1:9092"]}
spool: {dir: /tmp/spool, horizon_below: 10m}
sources:
  - {name: postiz, provider: postiz, secrets: [tok_0123456789abcdef]}
  - {name: x, provider: x, secrets: [s1]}
  - {name: xoff, provider: x, secrets: [s1], spool: false}
  - {name: ayrshare, provider: ayrshare, secrets: [s2]}
  - {name: codiv, provider: codivupload, secrets: [s3]}
  - {name: codivon, provider: codivupload, secrets: [s3], spool: true}
  - {name: uploadpost, provider: upload-post, secrets: [tok_abcdef0123456789]}`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := "postiz x codivon"
	if got := strings.Join(cfg.SpoolingSources(), " "); got != want {
		t.Errorf("spooling sources %q, want %q (x and postiz retry for less than 10m, ayrshare for 1h, upload-post's horizon is unknown)", got, want)
	}
	cfg.Spool.Dir = ""
	if got := cfg.SpoolingSources(); len(got) != 0 {
		t.Errorf("without spool.dir, spooling sources %v", got)
	}
}

func TestSpoolRefusals(t *testing.T) {
	const kafka = "kafka: {brokers: [\"127.0.0.1:9092\"]}\n"
	for _, c := range []struct{ yaml, want string }{
		{`sources: [{name: p, provider: postiz, secrets: [tok_0123456789abcdef], spool: true}]`,
			`sources[0].spool: true, but spool.dir is empty`},
		{"spool: {horizon_below: 1h}\nsources: [{name: a, provider: codivupload, secrets: [s]}]",
			`spool.horizon_below: set, but spool.dir is empty`},
		{"spool: {dir: /tmp/s, horizon_below: -1h}\nsources: [{name: a, provider: codivupload, secrets: [s]}]",
			`spool.horizon_below: must not be negative`},
		{"spool: {dir: /tmp/s, max_bytes: 1000}\nsources: [{name: a, provider: codivupload, secrets: [s]}]",
			`spool.max_bytes: want at least 65536, got 1000`},
		{"spool: {dir: /tmp/s, max_bytes: 1000000}\nsources: [{name: a, provider: codivupload, secrets: [s]}]",
			`spool.max_bytes: 1000000 cannot hold the largest record a delivery makes, 4276224 bytes`},
		{"spool: {dir: /tmp/s}\nsources: [{name: pb, provider: post-bridge, secrets: [k], spool: true}]",
			`sources[0].spool: provider post-bridge is polled`},
	} {
		_, err := config.Parse([]byte(kafka+c.yaml), env(nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want one containing %q", err, c.want)
		}
	}
}
