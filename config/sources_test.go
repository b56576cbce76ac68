package config_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/config"
)

// providersEnv fills the variables of testdata/providers.yaml.
var providersEnv = env(map[string]string{
	"AYRSHARE_WEBHOOK_SECRET": "ayr-secret",
	"META_APP_SECRET":         "0123456789abcdef0123456789abcdef",
	"META_VERIFY_TOKEN":       "my-verify-token",
	"X_CONSUMER_SECRET":       "z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu",
	"UPLOAD_POST_URL_TOKEN":   "9f2c4e7a1b3d5f608a2c4e6b8d0f1a3c",
	"POSTIZ_URL_TOKEN":        "0e1d2c3b4a5968778695a4b3c2d1e0f9",
	"GITHUB_WEBHOOK_SECRET":   "It's a Secret to Everybody",
	"POST_BRIDGE_API_KEY":     "pb_live_xxxxx",
})

// TestProviderPresetsConfig reads docs/configuration.md's provider presets block as written: every
// source must become its preset, with its settings.
func TestProviderPresetsConfig(t *testing.T) {
	b, err := os.ReadFile("testdata/providers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(b, providersEnv)
	if err != nil {
		t.Fatalf("the provider presets block must be accepted as written: %v", err)
	}
	byName := map[string]config.Source{}
	for _, s := range cfg.Sources {
		byName[s.Name] = s
		if _, err := providers.New(s.Provider, s.Settings()); err != nil {
			t.Errorf("source %s: %v", s.Name, err)
		}
	}
	if len(byName) != 7 {
		t.Fatalf("%d sources, want 7", len(byName))
	}
	if got := byName["meta"].Settings().VerifyToken; got != "my-verify-token" {
		t.Errorf("meta's verify token = %q", got)
	}
	h := byName["github"].Settings().HMAC
	if h == nil || h.Header != "X-Hub-Signature-256" || h.Prefix != "sha256=" || h.Encoding != "hex" || h.Signed != "{body}" ||
		h.ID != "header:X-GitHub-Delivery" || h.Type != "header:X-GitHub-Event" {
		t.Errorf("github's hmac scheme = %+v", h)
	}
	if p := byName["postbridge"].Poll; p == nil || p.BaseURL != "https://api.post-bridge.com" || p.Interval.D() != time.Minute {
		t.Errorf("postbridge's poll = %+v", p)
	}
	if byName["meta"].Poll != nil {
		t.Error("a webhook source got a poll section")
	}
}

func TestPollDefaults(t *testing.T) {
	cfg, err := config.Parse([]byte(`
kafka: {brokers: ["127.0.0.1:9092"]}
sources: [{name: pb, provider: post-bridge, secrets: [k]}, {name: pb2, provider: post-bridge, secrets: [k], poll: {interval: 30s}}]`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []time.Duration{time.Minute, 30 * time.Second} {
		p := cfg.Sources[i].Poll
		if p == nil || p.BaseURL != "https://api.post-bridge.com" || p.Interval.D() != want {
			t.Errorf("sources[%d].poll = %+v, want the defaults with interval %s", i, p, want)
		}
	}
}

func TestRefusesBadSources(t *testing.T) {
	const kafka = "kafka: {brokers: [\"127.0.0.1:9092\"]}\n"
	for _, c := range []struct{ name, yaml, want string }{
		{"hmac encoding", `sources: [{name: a, provider: codivupload, secrets: [x]}, {name: b, provider: codivupload, secrets: [x]}, {name: c, provider: codivupload, secrets: [x]},
  {name: gh, provider: hmac, secrets: [s], hmac: {header: X-Sig, encoding: base32, id: "json:id", type: "json:type"}}]`,
			`sources[3].hmac.encoding: want hex or base64, got "base32"`},
		{"no name", `sources: [{provider: codivupload, secrets: [x]}]`, `sources[0].name: missing`},
		{"hmac missing", `sources: [{name: gh, provider: hmac, secrets: [s]}]`, `sources[0].hmac: missing`},
		{"hmac id", `sources: [{name: gh, provider: hmac, secrets: [s], hmac: {header: X-Sig, id: "id", type: "json:type"}}]`, `sources[0].hmac.id: want header:NAME or json:PATH`},
		{"hmac signed", `sources: [{name: gh, provider: hmac, secrets: [s], hmac: {header: X-Sig, signed: "{timestamp}.{body}", id: "json:id", type: "json:type"}}]`, `sources[0].hmac.timestamp_header: missing: hmac.signed uses {timestamp}`},
		{"hmac types", `sources: [{name: gh, provider: hmac, secrets: [s], hmac: {header: X-Sig, id: "json:id", type: "json:type", types: {push: post.pushed}}}]`, `sources[0].hmac.types.push: unknown event type "post.pushed"`},
		{"hmac unknown key", `sources: [{name: gh, provider: hmac, secrets: [s], hmac: {header: X-Sig, algorithm: sha1}}]`, `unknown key: line 2: field algorithm not found`},
		{"hmac on another preset", `sources: [{name: a, provider: codivupload, secrets: [x], hmac: {header: X-Sig}}]`, `sources[0].hmac: only the hmac preset takes it`},
		{"meta without verify token", `sources: [{name: m, provider: meta, secrets: [s]}]`, `sources[0].verify_token: missing`},
		{"verify token on another preset", `sources: [{name: a, provider: x, secrets: [s], verify_token: t}]`, `sources[0].verify_token: only the meta preset takes it`},
		{"poll on a webhook preset", `sources: [{name: m, provider: codivupload, secrets: [s], poll: {interval: 1m}}]`, `sources[0].poll: provider codivupload sends webhooks`},
		{"poll base_url", `sources: [{name: pb, provider: post-bridge, secrets: [k], poll: {base_url: "ftp://api.post-bridge.com"}}]`, `sources[0].poll.base_url: want an http(s) URL, got "ftp://api.post-bridge.com"`},
		{"poll interval", `sources: [{name: pb, provider: post-bridge, secrets: [k], poll: {interval: 10ms}}]`, `sources[0].poll.interval: want at least 1s, got 10ms`},
		{"short URL token", `sources: [{name: up, provider: upload-post, secrets: [short]}]`, `sources[0].secrets[0]: upload-post: a URL token needs at least 16 characters`},
		{"secret of another preset's source", `sources: [{name: x, provider: x, secrets: [shared-secret-1]}, {name: gh, provider: hmac, secrets: [old, shared-secret-1],
  hmac: {header: X-Sig, prefix: "sha256=", encoding: base64, id: "json:id", type: "json:type"}}]`,
			`sources[1].secrets[1]: also a secret of sources[0], of provider x: what one signs (a delivery, a handshake's answer) could pass at the other; give each its own`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Parse([]byte(kafka+c.yaml), env(nil))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), "shared-secret-1") {
				t.Fatalf("the error shows a secret: %v", err)
			}
		})
	}
}

func TestVerifyTokenRedacted(t *testing.T) {
	cfg, err := config.Parse([]byte(`
kafka: {brokers: ["127.0.0.1:9092"]}
sources: [{name: m, provider: meta, secrets: [s], verify_token: very-secret-token}]`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Redacted(); r.Sources[0].VerifyToken != "[redacted]" || cfg.Sources[0].VerifyToken != "very-secret-token" {
		t.Fatalf("verify token: redacted copy %q, original %q", r.Sources[0].VerifyToken, cfg.Sources[0].VerifyToken)
	}
}

// TestMaxAge reads sources[].max_age: by default the source's window less the clock skew
// allowed, for the presets whose deliveries carry a signed time; as set otherwise, 0s off.
func TestMaxAge(t *testing.T) {
	cfg, err := config.Parse([]byte(`
kafka: {brokers: ["127.0.0.1:9092"]}
dedup: {window: 24h}
sources:
  - {name: codiv, provider: codivupload, secrets: [s1]}
  - {name: meta, provider: meta, secrets: [s2], verify_token: t}
  - {name: x, provider: x, secrets: [s3], max_age: 1h}
  - {name: off, provider: codivupload, secrets: [s1], max_age: 0s}
  - {name: short, provider: codivupload, secrets: [s1], dedup: {window: 4m}}
  - {name: acme, provider: standard-webhooks, secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{24*time.Hour - 5*time.Minute, 36*time.Hour - 5*time.Minute, time.Hour, 0, 2 * time.Minute, 0}
	for i, s := range cfg.Sources {
		if got := cfg.MaxAgeOf(s); got != want[i] {
			t.Errorf("%s: max age %v, want %v", s.Name, got, want[i])
		}
	}
	for _, c := range []struct{ yaml, want string }{
		{`{name: a, provider: codivupload, secrets: [s], max_age: -1h}`, `sources[0].max_age: must not be negative, got -1h0m0s`},
		{`{name: a, provider: standard-webhooks, secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], max_age: 1h}`,
			`sources[0].max_age: provider standard-webhooks signs no time to check; only codivupload, meta, x do`},
	} {
		_, err := config.Parse([]byte("kafka: {brokers: [\"127.0.0.1:9092\"]}\nsources: ["+c.yaml+"]"), env(nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want one containing %q", err, c.want)
		}
	}
}
