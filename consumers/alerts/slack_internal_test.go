package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/socialbridge/bridge/consumers"
)

func TestMrkdwnEscapesSlacksControlCharacters(t *testing.T) {
	cases := map[string]string{
		"plain":                      "plain",
		"<!channel> & <@U1|bob>":     "&lt;!channel&gt; &amp; &lt;@U1|bob&gt;",
		"a > b":                      "a &gt; b",
		"already &amp; escaped <br>": "already &amp;amp; escaped &lt;br&gt;",
	}
	for in, want := range cases {
		if got := mrkdwn(in); got != want {
			t.Errorf("mrkdwn(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLinkCannotBeBrokenOrInjected(t *testing.T) {
	cases := []struct{ url, label, want string }{
		{"https://x.example/p?a=1&b=2", "See it", "<https://x.example/p?a=1&amp;b=2|See it>"},
		{"https://x.example/a|b>c<d", "See it", "<https://x.example/a%7Cb%3Ec%3Cd|See it>"},
		{"https://x.example/", "a|b <c> & d", "<https://x.example/|a|b &lt;c&gt; &amp; d>"},
		{"javascript:alert(1)", "See it", "javascript:alert(1)"},
		{"https://x.example/<!channel>", "x", "<https://x.example/%3C!channel%3E|x>"},
		{"not a url <!here>", "x", "not a url &lt;!here&gt;"},
		{"https://x.example/a b", "x", "https://x.example/a b"},
		{"https://" + strings.Repeat("a", maxLinkLen), "x", "https://" + strings.Repeat("a", maxLinkLen)},
		{"https://" + strings.Repeat("a", maxLinkLen-len("https://")), "x", "<https://" + strings.Repeat("a", maxLinkLen-len("https://")) + "|x>"},
		{"http://x.example/p", "x", "<http://x.example/p|x>"},
		{"ftp://x.example/p", "x", "ftp://x.example/p"},
	}
	for _, c := range cases {
		got := link(c.url, c.label)
		if got != c.want {
			t.Errorf("link(%q, %q) = %q, want %q", c.url, c.label, got, c.want)
		}
		inner := strings.TrimSuffix(strings.TrimPrefix(got, "<"), ">")
		if strings.HasPrefix(got, "<") && (strings.ContainsAny(inner, "<>") || !strings.Contains(inner, "|")) {
			t.Errorf("link(%q): %q has a control character inside, or no label", c.url, got)
		}
	}
}

// TestMessagesEscapeWhatProvidersSend: every field a provider sets is escaped, and a
// reconnect link Slack would refuse in a button is given as text.
func TestMessagesEscapeWhatProvidersSend(t *testing.T) {
	a := &Alert{ID: "evt_<1>", Source: "acme", Profile: "<!channel>", Platform: "x&y", PostID: "p>1",
		ReconnectURL: "javascript:alert(1)", OccurredAt: time.Unix(0, 0),
		Resolution: &Resolution{ID: "evt_2", PostID: "p2", PostURL: "https://x.example/p|<!here>"}}
	for name, msg := range map[string]message{"alert": alertMessage(a, false), "resolution": resolutionMessage(a, true)} {
		for form, body := range map[string][]byte{"blocks": msg.withBlocks(), "text": msg.textOnly()} {
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("%s %s: %v", name, form, err)
			}
			text := strings.Join(mrkdwnTexts(m), "\n")
			for _, bad := range []string{"<!channel>", "<!here>", "<1>", "x&y", "p>1"} {
				if strings.Contains(text, bad) {
					t.Errorf("%s as %s: %q left unescaped in %s", name, form, bad, text)
				}
			}
			if strings.Contains(string(body), `"button"`) {
				t.Errorf("%s as %s: a button for a link Slack refuses: %s", name, form, body)
			}
			if (form == "text") != (m["blocks"] == nil) {
				t.Errorf("%s as %s: blocks %v", name, form, m["blocks"])
			}
		}
	}
	a.ReconnectURL = "https://app.example.com/reconnect?p=a&b=|"
	if body := alertMessage(a, false).withBlocks(); !strings.Contains(string(body), `"url":"https://app.example.com/reconnect?p=a\u0026b=|"`) {
		t.Errorf("a reconnect link Slack takes is not the button's URL as is: %s", body)
	}
	if text := string(alertMessage(a, false).textOnly()); !strings.Contains(text, "reconnect?p=a\\u0026amp;b=|") || strings.Contains(text, "blocks") {
		t.Errorf("the text-only form does not give the reconnect link as text: %s", text)
	}
}

// TestResolutionLinksThePostWhenItHasAURL: the resolution links the published post when
// the event gave its URL, and says nothing of a link when it did not.
func TestResolutionLinksThePostWhenItHasAURL(t *testing.T) {
	a := &Alert{ID: "evt_1", Source: "acme", Profile: "brand", Platform: "x", Resolution: &Resolution{ID: "evt_2", PostID: "p2"}}
	if m := resolutionMessage(a, false); strings.Contains(m.details, "See it") || strings.HasSuffix(m.details, " ") {
		t.Errorf("a resolution without a post URL: %q", m.details)
	}
	a.Resolution.PostURL = "https://x.example/p/2"
	if m := resolutionMessage(a, false); !strings.HasSuffix(m.details, " <https://x.example/p/2|See it>") {
		t.Errorf("a resolution with a post URL: %q, want the link to it", m.details)
	}
}

// mrkdwnTexts are the texts of a Slack message that Slack reads as mrkdwn.
func mrkdwnTexts(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && k == "text" {
				out = append(out, s)
			}
			out = append(out, mrkdwnTexts(e)...)
		}
	case []any:
		for _, e := range v {
			out = append(out, mrkdwnTexts(e)...)
		}
	}
	return out
}

// fakeWebhook is an httptest Slack whose answer to each POST is chosen by answer.
type fakeWebhook struct {
	mu     sync.Mutex
	bodies []map[string]any
	srv    *httptest.Server
}

func newFakeWebhook(t *testing.T, answer func(body map[string]any) (int, string)) *fakeWebhook {
	f := &fakeWebhook{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("webhook: %v", err)
		}
		f.mu.Lock()
		f.bodies = append(f.bodies, body)
		f.mu.Unlock()
		status, text := answer(body)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, text)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeWebhook) got() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.bodies...)
}

// testDeliverer is a deliverer posting to url, with its metrics and log.
func testDeliverer(url string, log *bytes.Buffer) (*deliverer, alertsMetrics) {
	reg := prometheus.NewRegistry()
	am := newAlertsMetrics(reg, "g", &parts{})
	return &deliverer{slack: newSlack(url, 5*time.Second, 1000), metrics: consumers.NewMetrics(reg, "g"), sent: am.sent, gaveUp: am.gaveUp,
		log: slog.New(slog.NewTextHandler(log, nil)), backoff: func() backoff.BackOff { return backoff.NewConstantBackOff(time.Millisecond) }}, am
}

// TestRefusedBlocksAreSentAsText: Slack refuses the blocks (invalid_blocks, as it does for a
// link it will not take); the message goes as text only, once, and counts as sent.
func TestRefusedBlocksAreSentAsText(t *testing.T) {
	hook := newFakeWebhook(t, func(body map[string]any) (int, string) {
		if body["blocks"] != nil {
			return http.StatusBadRequest, "invalid_blocks"
		}
		return http.StatusOK, "ok"
	})
	var log bytes.Buffer
	d, am := testDeliverer(hook.srv.URL, &log)
	a := &Alert{ID: "evt_1", Source: "acme", Profile: "brand", Platform: "x", ReconnectURL: "https://app.example.com/r?weird=|"}
	if !d.post(context.Background(), Key{"acme", "brand", "x"}, msgAlert, a.ID, func(r bool) message { return alertMessage(a, r) }, false) {
		t.Fatal("post: not done")
	}
	got := hook.got()
	if len(got) != 2 || got[0]["blocks"] == nil || got[1]["blocks"] != nil {
		t.Fatalf("slack got %v: want the blocks, then text only", got)
	}
	if text, _ := got[1]["text"].(string); !strings.Contains(text, "https://app.example.com/r?weird=|") {
		t.Errorf("the text-only form lost the reconnect link: %q", text)
	}
	if n := testutil.ToFloat64(am.sent.WithLabelValues(msgAlert)); n != 1 {
		t.Errorf("sent %v, want 1", n)
	}
	if !strings.Contains(log.String(), "invalid_blocks") || !strings.Contains(log.String(), "text only") {
		t.Errorf("no log line of the refusal: %s", log.String())
	}
}

// TestRefusedForGoodIsGivenUp: Slack refuses both forms (a 4xx other than 429); the message
// is given up, counted and logged, after one try of each: never retried forever.
func TestRefusedForGoodIsGivenUp(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusGone} {
		hook := newFakeWebhook(t, func(map[string]any) (int, string) { return status, "channel_is_archived" })
		var log bytes.Buffer
		d, am := testDeliverer(hook.srv.URL, &log)
		a := &Alert{ID: "evt_1", Source: "acme", Profile: "brand", Platform: "x", Resolution: &Resolution{ID: "evt_2"}}
		if !d.post(context.Background(), Key{"acme", "brand", "x"}, msgResolution, "evt_2", func(r bool) message { return resolutionMessage(a, r) }, false) {
			t.Fatalf("%d: post not done", status)
		}
		if n := len(hook.got()); n != 2 {
			t.Errorf("%d: slack got %d tries, want 2 (blocks, then text only)", status, n)
		}
		if n := testutil.ToFloat64(am.gaveUp.WithLabelValues(msgResolution)); n != 1 {
			t.Errorf("%d: given up %v, want 1", status, n)
		}
		if n := testutil.ToFloat64(am.sent.WithLabelValues(msgResolution)); n != 0 {
			t.Errorf("%d: sent %v, want 0", status, n)
		}
		if !strings.Contains(log.String(), "given up") || !strings.Contains(log.String(), "channel_is_archived") || strings.Contains(log.String(), hook.srv.URL) {
			t.Errorf("%d: log line %q: want the answer, never the webhook URL", status, log.String())
		}
	}
}

// roundTrip is an http.RoundTripper in memory, for Slack on fake time.
type roundTrip func(*http.Request) *http.Response

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r), nil }

func answer(status int, header http.Header) *http.Response {
	if header == nil {
		header = http.Header{}
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: header, Body: io.NopCloser(strings.NewReader("")), ContentLength: 0}
}

// TestSlackRateIsPerWebhook: messages for many keys at once go out one per 1/rate, and a
// 429's Retry-After holds every one of them back, not only the refused one's.
func TestSlackRateIsPerWebhook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		var at []time.Duration
		s := newSlack("https://hooks.slack.example/services/T/B/X", 5*time.Second, 1)
		s.client.Transport = roundTrip(func(*http.Request) *http.Response {
			mu.Lock()
			defer mu.Unlock()
			at = append(at, time.Since(start))
			if len(at) == 2 {
				return answer(http.StatusTooManyRequests, http.Header{"Retry-After": {"30"}})
			}
			return answer(http.StatusOK, nil)
		})
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { errs[i] = s.Post(context.Background(), []byte(`{}`)) })
		}
		wg.Wait()
		limited := 0
		for _, err := range errs {
			var ra *backoff.RetryAfterError
			if errors.As(err, &ra) {
				limited++
				if ra.Duration != 30*time.Second {
					t.Errorf("Retry-After read as %s, want 30s", ra.Duration)
				}
			} else if err != nil {
				t.Errorf("post: %v", err)
			}
		}
		want := []time.Duration{0, time.Second, 31 * time.Second, 32 * time.Second}
		if limited != 1 || len(at) != len(want) {
			t.Fatalf("%d rate-limited, POSTs at %v", limited, at)
		}
		for i := range want {
			if at[i] != want[i] {
				t.Errorf("POSTs at %v, want %v: one a second, none for 30 s after the 429", at, want)
				break
			}
		}
	})
}

// TestRetryAfterHoldsBackToTheInstant: a message waiting for its turn while a 429 comes
// goes out when the Retry-After ends, not at the rate limit's next tick after it (Slack's
// answer takes half a second here, so the two differ).
func TestRetryAfterHoldsBackToTheInstant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		var at []time.Duration
		s := newSlack("https://hooks.slack.example/services/T/B/X", 5*time.Second, 1)
		s.client.Transport = roundTrip(func(*http.Request) *http.Response {
			mu.Lock()
			at = append(at, time.Since(start))
			first := len(at) == 1
			mu.Unlock()
			if first {
				time.Sleep(500 * time.Millisecond) // on the bubble's clock: Slack takes its time to answer
				return answer(http.StatusTooManyRequests, http.Header{"Retry-After": {"30"}})
			}
			return answer(http.StatusOK, nil)
		})
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { _ = s.Post(context.Background(), []byte(`{}`)) })
		}
		wg.Wait()
		if want := []time.Duration{0, 30500 * time.Millisecond}; !slices.Equal(at, want) {
			t.Errorf("POSTs at %v, want %v: the second as the 429's Retry-After ends", at, want)
		}
	})
}

func TestRetryAfterIsReadAndCapped(t *testing.T) {
	cases := map[string]time.Duration{"": time.Second, "x": time.Second, "0": time.Second, "-3": time.Second, "7": 7 * time.Second,
		" 12 ": 12 * time.Second, "86400": maxRetryAfter} //nolint:gocritic // the spaces are the case under test
	for h, want := range cases {
		if got := retryAfter(h); got != want {
			t.Errorf("Retry-After %q: %s, want %s", h, got, want)
		}
	}
}

// TestPostClassifiesSlacksAnswers: which answers are refusals for good, which may pass,
// and which leave the outcome unknown.
func TestPostClassifiesSlacksAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for status, want := range map[int]error{http.StatusOK: nil, http.StatusBadRequest: errRefused, http.StatusNotFound: errRefused,
			http.StatusGone: errRefused, http.StatusInternalServerError: nil, http.StatusServiceUnavailable: nil} {
			s := newSlack("https://hooks.slack.example/x", time.Second, 1000)
			s.client.Transport = roundTrip(func(*http.Request) *http.Response { return answer(status, nil) })
			err := s.Post(context.Background(), []byte(`{}`))
			switch {
			case want != nil && !errors.Is(err, want):
				t.Errorf("%d: %v, want %v", status, err, want)
			case want == nil && status != http.StatusOK && (err == nil || errors.Is(err, errRefused) || errors.Is(err, errNoAnswer)):
				t.Errorf("%d: %v, want an error that may pass", status, err)
			case status == http.StatusOK && err != nil:
				t.Errorf("200: %v", err)
			}
		}
		s := newSlack("https://hooks.slack.example/services/T/B/SECRET", time.Second, 1000)
		s.client.Transport = roundTripErr{}
		err := s.Post(context.Background(), []byte(`{}`))
		if !errors.Is(err, errNoAnswer) || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("a lost answer: %v, want errNoAnswer without the URL", err)
		}
	})
}

type roundTripErr struct{}

func (roundTripErr) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("connection reset by peer")
}
