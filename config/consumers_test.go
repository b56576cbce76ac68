package config_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/config"
)

// TestReferenceConsumers reads the bridge's reference file followed by the reference
// consumers section (the consumers keys of docs/configuration.md), as written: one file for
// `serve` and `consume`.
func TestReferenceConsumers(t *testing.T) {
	bridge, err := os.ReadFile("testdata/reference.yaml")
	if err != nil {
		t.Fatal(err)
	}
	consumers, err := os.ReadFile("testdata/reference-consumers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"CODIVUPLOAD_WEBHOOK_SECRET": "s", "CODIVUPLOAD_API_KEY": "key-123", "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/XYZ"}
	cfg, err := config.Parse(append(bridge, consumers...), env(vars))
	if err != nil {
		t.Fatalf("the reference consumers section must be accepted as written: %v", err)
	}
	r := cfg.Consumers.Retries
	if r.Group != "social.retries" || len(r.Delays) != 3 || r.Delays[1].D() != 5*time.Minute ||
		r.Action.Headers["Authorization"] != "Bearer key-123" || r.Action.Timeout.D() != 10*time.Second || r.Concurrency != 32 {
		t.Errorf("retries not read: %+v", r)
	}
	if a := cfg.Consumers.Alerts; a.Cooldown.D() != 6*time.Hour || a.SlackWebhookURL != vars["SLACK_WEBHOOK_URL"] {
		t.Errorf("alerts not read: %+v", a)
	}
	if a := cfg.Consumers.Analytics; a.Database != "sqlite:analytics.db" || a.Listen != "127.0.0.1:8081" {
		t.Errorf("analytics not read: %+v", a)
	}
	if r, a := cfg.Consumers.Retries.Member, cfg.Consumers.Alerts.Member; r.Listen != "127.0.0.1:8082" || a.Listen != "127.0.0.1:8083" ||
		r.InstanceID != "" || r.TransactionTimeout.D() != time.Minute || a.TransactionTimeout.D() != 30*time.Second {
		t.Errorf("retries/alerts member defaults: %+v, %+v", r, a)
	}
	if err := cfg.RequireRetries(); err != nil {
		t.Error(err)
	}
	if err := cfg.RequireAlerts(); err != nil {
		t.Error(err)
	}
	logged := fmt.Sprintf("%+v", cfg.Redacted())
	for _, secret := range []string{"key-123", "XYZ"} {
		if strings.Contains(logged, secret) {
			t.Errorf("Redacted shows %q: %s", secret, logged)
		}
	}
}

func TestConsumersRefusedNamingTheKey(t *testing.T) {
	const base = "kafka: {brokers: [\"127.0.0.1:9092\"]}\nsources: [{name: a, provider: codivupload, secrets: [x]}]\n"
	cases := []struct{ yaml, want string }{
		{"consumers: {retries: {delays: []}}", "consumers.retries.delays: name at least one delay"},
		{"consumers: {retries: {delays: [\"-1s\"]}}", "consumers.retries.delays[0]: must be positive"},
		{"consumers: {retries: {action: {url: \"ftp://x/{post_id}\"}}}", "consumers.retries.action.url: want an absolute http"},
		{"consumers: {retries: {action: {url: \"https://x/{postid}\"}}}", "consumers.retries.action.url: unknown placeholder {postid}"},
		{"consumers: {retries: {action: {method: FETCH}}}", "consumers.retries.action.method"},
		{"consumers: {retries: {group: \"\"}}", "consumers.retries.group: must not be empty"},
		{"consumers: {alerts: {group: \"\"}}", "consumers.alerts.group: must not be empty"},
		{"consumers: {analytics: {group: \"\"}}", "consumers.analytics.group: must not be empty"},
		{"consumers: {retries: {action: {headers: {\"X Key\": v}}}}", "consumers.retries.action.headers: bad header name \"X Key\""},
		{"consumers: {retries: {concurrency: 0}}", "consumers.retries.concurrency: want 1 to 1024 calls at once, got 0"},
		{"consumers: {retries: {concurrency: 5000}}", "consumers.retries.concurrency: want 1 to 1024"},
		{"consumers: {alerts: {cooldown: 0s}}", "consumers.alerts.cooldown: must be positive"},
		{"consumers: {alerts: {slack_webhook_url: \"hooks.slack.com/secret-path\"}}", "consumers.alerts.slack_webhook_url: want an absolute"},
		{"consumers: {analytics: {database: \"mysql://u:hunter2@x/db\"}}", "consumers.analytics.database: want sqlite:PATH or a postgres:// DSN"},
		{"consumers: {analytics: {database: \"sqlite:\"}}", "consumers.analytics.database: sqlite: needs a path"},
		{"consumers: {analytics: {listen: \"8081\"}}", "consumers.analytics.listen: want host:port"},
		{"consumers: {retries: {retry: 1}}", "unknown key"},
		{"consumers: {retries: {listen: \"8082\"}}", "consumers.retries.listen: want host:port"},
		{"consumers: {alerts: {listen: \"\"}}", "consumers.alerts.listen: want host:port"},
		{"consumers: {retries: {instance_id: \"a b\"}}", "consumers.retries.instance_id: must not contain spaces"},
		{"consumers: {retries: {transaction_timeout: 5s}}", "consumers.retries.transaction_timeout: 5s is too short for action.timeout 10s: want at least 25s"},
		{"consumers: {retries: {transaction_timeout: 15s}}", "consumers.retries.transaction_timeout: 15s is too short for action.timeout 10s"},
		{"consumers: {retries: {transaction_timeout: 24s}}", "consumers.retries.transaction_timeout: 24s is too short"},
		{"consumers: {retries: {transaction_timeout: 30s, action: {timeout: 20s}}}", "want at least 35s (action.timeout + 10s to commit a batch + 5s in which calls may start)"},
		{"consumers: {retries: {delays: [\"25h\"]}}", "consumers.retries.delays[0]: 25h0m0s is longer than 24h0m0s"},
		{"consumers: {alerts: {transaction_timeout: 0s}}", "consumers.alerts.transaction_timeout: must be positive"},
		{"consumers: {alerts: {slack_timeout: -1s}}", "consumers.alerts.slack_timeout: must be positive"},
		{"consumers: {alerts: {slack_rate: 0}}", "consumers.alerts.slack_rate: want more than 0 and at most 1000 messages a second, got 0"},
		{"consumers: {alerts: {slack_rate: 1001}}", "consumers.alerts.slack_rate: want more than 0"},
		{"consumers: {alerts: {slack_rate: .nan}}", "consumers.alerts.slack_rate: want more than 0"},
		{"consumers: {alerts: {forget_after: 0s}}", "consumers.alerts.forget_after: must be positive"},
	}
	for _, c := range cases {
		_, err := config.Parse([]byte(base+c.yaml), env(nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.yaml, err, c.want)
			continue
		}
		for _, secret := range []string{"hunter2", "secret-path"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error shows %q: %v", c.yaml, secret, err)
			}
		}
	}
}

// TestRetriesBudgetAndWaitBounds: the least transaction_timeout is accepted, and the
// delays are bounded by half of kafka.retention.
func TestRetriesBudgetAndWaitBounds(t *testing.T) {
	const sources = "sources: [{name: a, provider: codivupload, secrets: [x]}]\n"
	cfg, err := config.Parse([]byte("kafka: {brokers: [\"127.0.0.1:9092\"]}\n"+sources+"consumers: {retries: {transaction_timeout: 25s}}"), env(nil))
	if err != nil {
		t.Fatalf("transaction_timeout 25s with action.timeout 10s: %v", err)
	}
	if got := cfg.Consumers.Retries.CallBudget(); got != 5*time.Second {
		t.Errorf("CallBudget = %s, want 5s", got)
	}
	_, err = config.Parse([]byte("kafka: {brokers: [\"127.0.0.1:9092\"], retention: 1h}\n"+sources+"consumers: {retries: {delays: [\"30s\", \"31m\"]}}"), env(nil))
	if want := "consumers.retries.delays[1]: 31m0s is longer than 30m0s, half of kafka.retention"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a delay past half the retention: %v, want %q", err, want)
	}
	for _, c := range []struct{ retention, want time.Duration }{
		{0, 24 * time.Hour}, {time.Hour, 30 * time.Minute}, {7 * 24 * time.Hour, 24 * time.Hour}, {40 * time.Hour, 20 * time.Hour},
	} {
		if got := config.MaxRetryWait(c.retention); got != c.want {
			t.Errorf("MaxRetryWait(%s) = %s, want %s", c.retention, got, c.want)
		}
	}
}

func TestConsumersNeedTheirSectionOnlyWhenRun(t *testing.T) {
	cfg, err := config.Parse([]byte(valid), env(nil))
	if err != nil {
		t.Fatalf("a file without consumers must serve: %v", err)
	}
	if err := cfg.RequireRetries(); err == nil || !strings.Contains(err.Error(), "consumers.retries.action.url") {
		t.Errorf("RequireRetries: %v", err)
	}
	if err := cfg.RequireAlerts(); err == nil || !strings.Contains(err.Error(), "consumers.alerts.slack_webhook_url") {
		t.Errorf("RequireAlerts: %v", err)
	}
}

// TestScopes: each command expands and validates only the sections it uses, and the whole
// file is still checked for unknown keys, with their lines.
func TestScopes(t *testing.T) {
	file := `
kafka: {brokers: ["127.0.0.1:9092"], retention: 12h}
dedup: {window: 1h, redis: {password: "${REDIS_PASSWORD}"}}
sources: [{name: a, provider: codivupload, secrets: ["${WEBHOOK_SECRET}"], dedup: {window: 2h}}]
consumers:
  retries: {action: {url: "https://api.example/{post_id}", headers: {Authorization: "Bearer ${RETRY_API_KEY}"}}}
  alerts: {slack_webhook_url: "${SLACK_WEBHOOK_URL}", cooldown: 0s}
  analytics: {database: "postgres://u:${DB_PASSWORD}@db/x"}
`
	all := map[string]string{"REDIS_PASSWORD": "r", "WEBHOOK_SECRET": "w", "RETRY_API_KEY": "k",
		"SLACK_WEBHOOK_URL": "https://hooks.slack.example/x", "DB_PASSWORD": "p"}
	cases := []struct {
		name  string
		scope config.Scope
		needs []string // the variables it must have
		err   string   // with all of them set; "" for none
	}{
		{"serve", config.Ingress, []string{"REDIS_PASSWORD", "WEBHOOK_SECRET"}, ""},
		{"retries", config.RetriesGroup, []string{"RETRY_API_KEY"}, ""},
		{"alerts", config.AlertsGroup, []string{"SLACK_WEBHOOK_URL"}, "consumers.alerts.cooldown: must be positive"},
		{"analytics", config.AnalyticsGroup, []string{"DB_PASSWORD"}, ""},
		{"tail", config.Reader, nil, ""},
		{"simulate", config.Sender, []string{"WEBHOOK_SECRET"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			only := map[string]string{}
			for _, name := range c.needs {
				only[name] = all[name]
			}
			_, err := config.ParseFor([]byte(file), env(only), c.scope)
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("with %v only: %v; want %q", c.needs, err, c.err)
			}
			for _, name := range c.needs {
				delete(only, name)
				if _, err := config.ParseFor([]byte(file), env(only), c.scope); err == nil || !strings.Contains(err.Error(), name+" is not set") {
					t.Errorf("without %s: %v", name, err)
				}
				only[name] = all[name]
			}
			typo := strings.Replace(file, "cooldown", "cooldwn", 1)
			if _, err := config.ParseFor([]byte(typo), env(all), c.scope); err == nil || !strings.Contains(err.Error(), "line 7: field cooldwn not found") {
				t.Errorf("a typo in the alerts section: %v", err)
			}
		})
	}
	cfg, err := config.ParseFor([]byte(file), env(all), config.RetriesGroup)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sources) != 0 || cfg.Dedup.Redis.Password != "" || cfg.Consumers.Alerts.SlackWebhookURL != "" {
		t.Errorf("retries got the sections it does not use: %+v", cfg.Redacted())
	}
	if cfg.Consumers.Retries.Action.Headers["Authorization"] != "Bearer k" {
		t.Errorf("retries' own section: %+v", cfg.Consumers.Retries.Action)
	}
}
