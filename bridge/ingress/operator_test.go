package ingress_test

import (
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/bridge/providers"
)

// get asks url and returns the answer's status, body and content type.
func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Content-Type")
}

// TestReadyz: /readyz answers 200 {"status":"ready"} when ready, with the reason when ready
// with one (the spool takes what Kafka cannot), 503 not_ready with the reason otherwise;
// the detail only on the admin listener, and only when there is one.
func TestReadyz(t *testing.T) {
	var state atomic.Pointer[ingress.Readiness]
	ready := func() ingress.Readiness { return *state.Load() }
	public := serve(t, func(o *ingress.Options) { o.Ready = ready })
	admin := serve(t, func(o *ingress.Options) { o.Ready, o.Admin = ready, true })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go admin.srv.ServeAdmin(ln)
	const reason, detail = "kafka is unreachable", "broker 127.0.0.1:9 refused the connection"
	for _, c := range []struct {
		state        ingress.Readiness
		code         int
		pub, private map[string]string
	}{
		{ingress.Readiness{Ready: true}, 200, map[string]string{"status": "ready"}, map[string]string{"status": "ready"}},
		{ingress.Readiness{Ready: true, Reason: reason, Detail: detail}, 200,
			map[string]string{"status": "ready", "reason": reason},
			map[string]string{"status": "ready", "reason": reason, "detail": detail}},
		{ingress.Readiness{Reason: reason, Detail: detail}, 503,
			map[string]string{"status": "not_ready", "reason": reason},
			map[string]string{"status": "not_ready", "reason": reason, "detail": detail}},
		{ingress.Readiness{Reason: reason}, 503,
			map[string]string{"status": "not_ready", "reason": reason},
			map[string]string{"status": "not_ready", "reason": reason}},
	} {
		state.Store(&c.state)
		for _, at := range []struct {
			addr string
			want map[string]string
		}{{public.addr, c.pub}, {ln.Addr().String(), c.private}} {
			code, body, _ := get(t, "http://"+at.addr+"/readyz")
			var got map[string]string
			if err := json.Unmarshal([]byte(body), &got); err != nil || code != c.code || !maps.Equal(got, at.want) {
				t.Errorf("%+v on %s: answered %d %s, want %d %v", c.state, at.addr, code, body, c.code, at.want)
			}
		}
	}
}

// TestHandshake: a GET of a source whose preset has a handshake (Meta's) is answered with
// its challenge when the check passes, and refused 401, counted as a verification failure,
// when it does not.
func TestHandshake(t *testing.T) {
	preset, err := providers.New("meta", fuzzSettings["meta"])
	if err != nil {
		t.Fatal(err)
	}
	key, err := preset.Key("meta_app_secret")
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, func(o *ingress.Options) {
		o.Sources = append(o.Sources, ingress.Source{Name: "meta", Provider: "meta", Preset: preset, Keys: []*providers.Key{key}})
	})
	url := "http://" + srv.addr + "/webhooks/meta?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token="
	if code, body, ct := get(t, url+"fuzz-verify-token"); code != 200 || body != "1158201444" || !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("the right token: answered %d %q (%s), want 200 with the challenge", code, body, ct)
	}
	if m := srv.metricsText(t); strings.Contains(m, `bridge_verification_failures_total{source="meta"}`) {
		t.Errorf("a handshake that passed counted as a failure:\n%s", grepLines(m, "bridge_verification_failures_total"))
	}
	if code, body, _ := get(t, url+"wrong"); code != 401 || !strings.Contains(body, "hub.verify_token does not match") {
		t.Errorf("a wrong token: answered %d %s, want 401", code, body)
	}
	if m := srv.metricsText(t); !strings.Contains(m, `bridge_verification_failures_total{source="meta"} 1`) {
		t.Errorf("a refused handshake not counted:\n%s", grepLines(m, "bridge_verification_failures_total"))
	}
}

// TestNoSources: an ingress with no source (the configuration refuses it, the API does
// not) answers every webhook 404 and serves its operator endpoints.
func TestNoSources(t *testing.T) {
	srv := serve(t, func(o *ingress.Options) { o.Sources = nil })
	if code, got := postTo(t, srv.addr, "/webhooks/codivupload", nil, delivery("evt_nowhere")); code != 404 {
		t.Errorf("a webhook answered %d %s, want 404", code, got)
	}
	if code, body, _ := get(t, "http://"+srv.addr+"/healthz"); code != 200 {
		t.Errorf("/healthz answered %d %s", code, body)
	}
}
