package ingress_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/internal/sender"
)

// handshakeQueries build each handshaking preset's GET around the value it echoes or signs
// (with fuzzSettings' verify token). A Handshaker without an entry fails FuzzHandshakeOracle.
var handshakeQueries = map[string]func(v string) url.Values{
	"meta": func(v string) url.Values {
		return url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"fuzz-verify-token"}, "hub.challenge": {v}}
	},
	"x": func(v string) url.Values { return url.Values{"crc_token": {v}} },
}

// FuzzHandshakeOracle asks every handshake of the ingress (a source per preset, as
// FuzzRequest's) to answer any value, and POSTs that value to the same source with each
// string of the answer in each header of a simulated delivery: every such POST must be
// refused (4xx). It is the end-to-end form of the providers' rule that no handshake answer
// signs a delivery.
//
//	go test -run '^$' -fuzz '^FuzzHandshakeOracle$' -fuzztime 1m ./bridge/ingress/   (or make fuzz)
func FuzzHandshakeOracle(f *testing.F) {
	addr, _ := fuzzServer(f)
	headers := map[string]http.Header{}
	for _, name := range providers.Names() {
		p, _ := providers.New(name, fuzzSettings[name])
		if _, ok := p.(providers.Handshaker); !ok {
			continue
		}
		if handshakeQueries[name] == nil {
			f.Fatalf("%s has a handshake but no entry in handshakeQueries", name)
		}
		d, err := p.(providers.Simulator).Deliver(sender.SampleEvent(p.(providers.Simulator).Types()[0], "evt_hs", fuzzNow, 0), fuzzSecrets[1], fuzzNow)
		if err != nil {
			f.Fatal(err)
		}
		headers[name] = d.Header
		f.Add(string(d.Body))
	}
	for _, v := range []string{"9b4507b3-9040-4669-9ca3-6b94edb50553", "1158201444", "true", "{}", " {}", "a+b/c=", `{"user_event":{"revoke":{}}}`} {
		f.Add(v)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	f.Fuzz(func(t *testing.T, v string) {
		for name, h := range headers {
			resp, err := client.Get("http://" + addr + "/webhooks/" + name + "?" + handshakeQueries[name](v).Encode())
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				continue
			}
			for _, sig := range answerCandidates(answer) {
				for header := range h {
					if header == "Content-Type" {
						continue
					}
					hh := h.Clone()
					hh.Set(header, sig)
					if code := postStatus(t, client, "http://"+addr+"/webhooks/"+name, hh, []byte(v)); code < 400 || code >= 500 {
						t.Fatalf("%s: the handshake's answer to %q, %q in %s, makes a POST of it answered %d", name, v, sig, header, code)
					}
				}
			}
		}
	})
}

func postStatus(t *testing.T, client *http.Client, url string, h http.Header, body []byte) int {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 400 // a value no request can carry
	}
	req.Header = h
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// answerCandidates are the strings an answer offers as a signature: itself, each string
// value of it, and each after its scheme's prefix.
func answerCandidates(answer []byte) []string {
	out := []string{string(answer)}
	var m map[string]any
	if json.Unmarshal(answer, &m) == nil {
		for _, v := range m {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
	}
	for _, s := range out {
		if _, rest, ok := strings.Cut(s, "="); ok {
			out = append(out, rest)
		}
	}
	return out
}
