package ingress_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/bridge/providers"
)

// TestVerifyByProof holds the verify step to the proof each kind of preset has: a signature
// (codivupload), the token that ends the URL (postiz, which signs nothing), or none at all (the
// polled post-bridge, to which nothing is POSTed). Each request is answered by what its
// source's kind says, with a reason that names the way to send it right.
func TestVerifyByProof(t *testing.T) {
	const token = "9f2c4e7a1b3d5f608a2c4e6b8d0f1a3c"
	srv := serve(t, func(o *ingress.Options) {
		o.Sources = append(o.Sources, source(t, "postiz", token), source(t, "post-bridge", "pb_live_key"))
	})
	post := `[{"id":"p1","publishDate":"2026-01-01T00:00:00.000Z","releaseURL":"https://x.com/p/1","state":"PUBLISHED","integration":{"name":"main","providerIdentifier":"x"}}]`
	for _, c := range []struct {
		name, path string
		code       int
		reason     string
	}{
		{"signed, unsigned request", "/webhooks/codivupload", 401, "missing X-CodivUpload-Signature header"},
		{"signed, a token", "/webhooks/codivupload/" + token, 404, `no such webhook endpoint: source "codivupload" signs its deliveries, POST them to /webhooks/codivupload`},
		{"URL token, none", "/webhooks/postiz", 401, "missing URL token: postiz signs nothing, so it must POST to /webhooks/{source}/{token}"},
		{"URL token, another", "/webhooks/postiz/0e1d2c3b4a5968778695a4b3c2d1e0f9", 401, "URL token does not match"},
		{"URL token, the source's", "/webhooks/postiz/" + token, 200, ""},
		{"polled", "/webhooks/post-bridge", 401, "post-bridge sends no webhooks: this source is polled"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, err := http.Post("http://"+srv.addr+c.path, "application/json", strings.NewReader(post))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var a struct{ Error string }
			if resp.StatusCode != c.code || json.Unmarshal(body, &a) != nil || a.Error != c.reason {
				t.Fatalf("answered %d %s, want %d with error %q", resp.StatusCode, body, c.code, c.reason)
			}
		})
	}
}

func source(t *testing.T, provider, secret string) ingress.Source {
	t.Helper()
	p, _ := providers.Lookup(provider)
	key, err := p.Key(secret)
	if err != nil {
		t.Fatal(err)
	}
	return ingress.Source{Name: provider, Provider: provider, Preset: p, Keys: []*providers.Key{key}}
}
