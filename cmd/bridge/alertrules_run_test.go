package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
)

// TestAlertRulesReadExportedMetrics runs `bridge serve` (with a spooling source and a
// polled one) and `bridge consume retries`, `alerts` and `analytics` on the test broker,
// sends them what makes each labelled series exist (a failed post the retry API keeps
// refusing until it is dead-lettered, two token expiries of which Slack refuses one, a
// stale delivery, a forged one, one to quarantine, and a polled result), and scrapes their
// /metrics until every metric and label each rule reads is served. It fails naming each
// rule and what it reads that no process serves: a metric renamed on either side, a
// histogram read without its _bucket/_sum/_count, a label that is not there.
func TestAlertRulesReadExportedMetrics(t *testing.T) {
	rules := loadAlertRules(t)
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	dir := t.TempDir()
	action := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer action.Close()
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, _ := io.ReadAll(r.Body); strings.Contains(string(b), refusedProfile) {
			http.Error(w, "invalid_blocks", http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer slack.Close()
	poll := &pollAPI{}
	polled := httptest.NewServer(poll)
	defer polled.Close()

	path := filepath.Join(dir, "bridge.yaml")
	cfg := fmt.Sprintf(`
http: {listen: "127.0.0.1:0", drain_period: 0s}
kafka: {brokers: [%q], topic_prefix: %q, partitions: 1}
spool: {dir: %q}
sources:
  - {name: codivupload, provider: codivupload, secrets: [%q], spool: true}
  - {name: postbridge, provider: post-bridge, secrets: ["pb_live_alertrules"], poll: {base_url: %q, interval: 1s}}
consumers:
  retries: {group: %q, listen: "127.0.0.1:0", delays: ["1s"], action: {url: %q}}
  alerts: {group: %q, listen: "127.0.0.1:0", slack_webhook_url: %q}
  analytics: {group: %q, listen: "127.0.0.1:0", database: %q}
`, brokers[0], prefix, filepath.Join(dir, "spool"), devSecret, polled.URL, prefix+"retries",
		action.URL+"/v1/posts/{post_id}/retry-failed", prefix+"alerts", slack.URL+"/services/T0/B0/x",
		prefix+"analytics", "sqlite:"+filepath.Join(dir, "analytics.db"))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var serveLog, retriesLog, alertsLog, analyticsLog testkit.LogBuffer
	runInBackground(t, []string{"serve", "--config", path}, io.Discard, &serveLog)
	runInBackground(t, []string{"consume", "retries", "--config", path}, io.Discard, &retriesLog)
	runInBackground(t, []string{"consume", "alerts", "--config", path}, io.Discard, &alertsLog)
	runInBackground(t, []string{"consume", "analytics", "--config", path}, io.Discard, &analyticsLog)
	base := listeningOn(t, &serveLog)
	group := regexp.MustCompile(`msg="group listening" .*addr=(http://\S+)`)
	dashboard := regexp.MustCompile(`msg="analytics consumer started" .*dashboard=(http://[^/\s]+)`)
	urls := []string{base + "/metrics",
		logged(t, &retriesLog, group) + "/metrics", logged(t, &alertsLog, group) + "/metrics",
		logged(t, &analyticsLog, dashboard) + "/metrics"}
	waitReadyz(t, base)

	deliver := func(typ, body, secret string, want int) {
		t.Helper()
		h := http.Header{}
		for k, v := range testkit.CodivHeaders(secret, typ, []byte(body)) {
			h.Set(k, v)
		}
		if code, answer := post(t, base+"/webhooks/codivupload", h, body); code != want {
			t.Fatalf("%s answered %d %s, want %d", body, code, answer, want)
		}
	}
	now := time.Now().UTC()
	codiv := func(typ, id string, at time.Time, data string) string {
		return fmt.Sprintf(`{"event":%q,"id":%q,"timestamp":%q,"data":%s}`, typ, id, at.Format(time.RFC3339), data)
	}
	deliver("post.failed", codiv("post.failed", "evt_rules_failed", now, failedData), devSecret, 200)
	deliver("post.token_expired", codiv("post.token_expired", "evt_rules_refused", now,
		`{"post_id":"p1","profile_name":"`+refusedProfile+`","platform":"x"}`), devSecret, 200)
	deliver("post.token_expired", codiv("post.token_expired", "evt_rules_expired", now, expiredData), devSecret, 200)
	deliver("post.published", codiv("post.published", "evt_rules_stale", now.Add(-48*time.Hour), `{"post_id":"p2"}`), devSecret, 401)
	deliver("post.published", codiv("post.published", "evt_rules_forged", now, `{"post_id":"p3"}`), "not-the-secret", 401)
	deliver("post.published", `{"event":"post.published","timestamp":"`+now.Format(time.RFC3339)+`","data":{}}`, devSecret, 202)

	var gaps []string
	testkit.Eventually(t, 2*time.Minute, "every metric the rules read is served", func() bool {
		e := exported{}
		for _, u := range urls {
			if err := e.scrape(u); err != nil {
				gaps = []string{err.Error()}
				return false
			}
		}
		gaps = missing(rules, e)
		return len(gaps) == 0
	}, func() string {
		return "deploy/prometheus/alerts.yml reads what is not served:\n" + strings.Join(gaps, "\n")
	})
}

// refusedProfile is the profile whose alerts the Slack stand-in refuses, with blocks and as
// text: the alerts group gives them up.
const refusedProfile = "refused_by_slack"

// logged waits for re in logs and returns its first group.
func logged(t *testing.T, logs *testkit.LogBuffer, re *regexp.Regexp) string {
	t.Helper()
	testkit.Eventually(t, time.Minute, "the log says "+re.String(), func() bool { return re.MatchString(logs.String()) }, logs.String)
	return re.FindStringSubmatch(logs.String())[1]
}

// pollAPI is Post-Bridge's results listing: one result at the first poll, which the bridge
// takes as its starting place, and a newer one from the second on, which it produces.
type pollAPI struct {
	mu    sync.Mutex
	polls int
}

func (a *pollAPI) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	a.polls++
	n := a.polls
	a.mu.Unlock()
	result := func(id string) string {
		return fmt.Sprintf(`{"id":%q,"post_id":"post_%s","success":true,"social_account_id":7,"platform":"tiktok","created_at":"2026-01-01T00:00:00Z"}`, id, id)
	}
	data := result("pr_first")
	if n > 1 {
		data = result("pr_second") + "," + data
	}
	fmt.Fprintf(w, `{"data":[%s],"meta":{"total":%d,"offset":0,"limit":100,"next":null}}`, data, strings.Count(data, `"id"`))
}
