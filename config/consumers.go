package config

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Consumers configures the reference consumer groups run by `bridge consume GROUP`. Each
// group expands and validates only its own section (see Scope), which must then be complete
// (see RequireRetries and the like).
type Consumers struct {
	Retries   Retries   `yaml:"retries"`
	Alerts    Alerts    `yaml:"alerts"`
	Analytics Analytics `yaml:"analytics"`
}

// Retries configures the group that retries failed posts through delay topics.
type Retries struct {
	Group  string     `yaml:"group"`
	Delays []Duration `yaml:"delays"`
	Action Action     `yaml:"action"`
	// Concurrency is how many calls of the action run at once (and connections to its host
	// are kept open for); a batch holds 64 records per call in flight.
	Concurrency int    `yaml:"concurrency"`
	Member      Member `yaml:",inline"`
}

// MaxRetriesConcurrency bounds consumers.retries.concurrency: more calls in flight than
// this are a load test of the provider, not a retry.
const MaxRetriesConcurrency = 1024

// The time of a retries batch (one transaction): calls of the action start during its call
// budget, the last one may take action.timeout, and RetriesCommitMargin is left to
// produce the batch's moves and commit them. transaction_timeout must hold all three with a
// budget of at least MinRetriesCallBudget.
const (
	RetriesCommitMargin  = 10 * time.Second
	MinRetriesCallBudget = 5 * time.Second
)

// CallBudget is how long into a batch a call of the action may still start:
// transaction_timeout less action.timeout and RetriesCommitMargin. Records whose call has
// not started by then wait for the next batch.
func (r Retries) CallBudget() time.Duration {
	return r.Member.TransactionTimeout.D() - r.Action.Timeout.D() - RetriesCommitMargin
}

// MaxRetryWait is the longest a record waits in a retry topic, whatever the action's
// Retry-After asks: half the topics' retention (7 days when kafka.retention is 0, Kafka's
// default), at most MaxRetryAfter. A record held past its topic's retention would be
// deleted before it is due, and the partition reset to the start of its log.
func MaxRetryWait(retention time.Duration) time.Duration {
	if retention <= 0 {
		retention = 7 * 24 * time.Hour
	}
	return min(retention/2, MaxRetryAfter)
}

// MaxRetryAfter bounds how long the retries group honours an action's Retry-After: a held
// record holds the records behind it on its retry topic's partition.
const MaxRetryAfter = 24 * time.Hour

// MaxSlackRate bounds consumers.alerts.slack_rate: Slack's own limit is about one message a
// second per webhook.
const MaxSlackRate = 1000

// Member holds what every group-commit consumer process has: where it serves /metrics and
// /healthz, and the id that makes its Kafka transactions survive its own restart.
type Member struct {
	// Listen is the host:port of /metrics and /healthz.
	Listen string `yaml:"listen"`
	// InstanceID, when set, is the stable name of this process among the group's members
	// (e.g. the pod name): its transactional id is {group}-{instance_id}, so a restarted
	// process fences its predecessor and aborts its open transaction at once. Empty: a
	// random id per start, and a crashed process's open transaction holds its partitions
	// until transaction_timeout passes. Two live processes must never share one.
	InstanceID string `yaml:"instance_id"`
	// TransactionTimeout bounds a transaction of this process; the broker aborts one left
	// open longer (a crashed process's). It must exceed the longest batch.
	TransactionTimeout Duration `yaml:"transaction_timeout"`
}

// Action is the HTTP request that retries one failed post. URL may hold {post_id},
// {event_id}, {platform} and {profile_name}.
type Action struct {
	URL     string            `yaml:"url"`
	Method  string            `yaml:"method"`
	Headers map[string]string `yaml:"headers"`
	Timeout Duration          `yaml:"timeout"`
}

// Alerts configures the group that turns token expiries into Slack messages.
type Alerts struct {
	Group           string   `yaml:"group"`
	Cooldown        Duration `yaml:"cooldown"`
	SlackWebhookURL string   `yaml:"slack_webhook_url"`
	// SlackTimeout bounds one POST to Slack; a slower answer counts as a failure, retried.
	SlackTimeout Duration `yaml:"slack_timeout"`
	// SlackRate is how many messages a second go to the webhook at most, whatever their
	// key: Slack takes about one a second per incoming webhook.
	SlackRate float64 `yaml:"slack_rate"`
	// ForgetAfter is how long the state of a settled key (its alert resolved and both
	// messages sent, or no alert) is kept after the last event it holds, measured in the
	// received_at of the events decided since: an event received that much earlier than
	// the newest of its partition may be decided without that history.
	ForgetAfter Duration `yaml:"forget_after"`
	Member      Member   `yaml:",inline"`
}

// Analytics configures the group that keeps hourly aggregates and serves the dashboard.
type Analytics struct {
	Group    string `yaml:"group"`
	Database string `yaml:"database"`
	Listen   string `yaml:"listen"`
}

// ActionPlaceholders are the names Action.URL may hold in braces.
var ActionPlaceholders = []string{"post_id", "event_id", "platform", "profile_name"}

func defaultConsumers() Consumers {
	return Consumers{
		Retries: Retries{
			Group:       "social.retries",
			Delays:      []Duration{Duration(30 * time.Second), Duration(5 * time.Minute), Duration(30 * time.Minute)},
			Action:      Action{Method: http.MethodPost, Timeout: Duration(10 * time.Second)},
			Concurrency: 32,
			Member:      Member{Listen: "127.0.0.1:8082", TransactionTimeout: Duration(time.Minute)},
		},
		Alerts: Alerts{
			Group: "social.alerts", Cooldown: Duration(6 * time.Hour), SlackTimeout: Duration(10 * time.Second),
			SlackRate: 1, ForgetAfter: Duration(7 * 24 * time.Hour),
			Member: Member{Listen: "127.0.0.1:8083", TransactionTimeout: Duration(30 * time.Second)},
		},
		Analytics: Analytics{Group: "social.analytics", Database: "sqlite:analytics.db", Listen: "127.0.0.1:8081"},
	}
}

func (r *Retries) validate(bad complaint) {
	const key = "consumers.retries"
	if r.Group == "" {
		bad(key+".group", "must not be empty")
	}
	if len(r.Delays) == 0 {
		bad(key+".delays", "name at least one delay, like [\"30s\", \"5m\"]")
	}
	for i, d := range r.Delays {
		positive(bad, fmt.Sprintf("%s.delays[%d]", key, i), d)
	}
	a := r.Action
	if a.URL != "" {
		checkURL(bad, key+".action.url", a.URL)
		if err := checkPlaceholders(a.URL); err != nil {
			bad(key+".action.url", "%v", err)
		}
	}
	if !validMethod(a.Method) {
		bad(key+".action.method", "want an HTTP method such as POST or PUT, got %q", a.Method)
	}
	for name := range a.Headers {
		if name == "" || strings.ContainsAny(name, " :\r\n") {
			bad(key+".action.headers", "bad header name %q", name)
		}
	}
	positive(bad, key+".action.timeout", a.Timeout)
	if r.Concurrency < 1 || r.Concurrency > MaxRetriesConcurrency {
		bad(key+".concurrency", "want 1 to %d calls at once, got %d", MaxRetriesConcurrency, r.Concurrency)
	}
	r.Member.validate(bad, key)
	if r.Member.TransactionTimeout > 0 && a.Timeout > 0 && r.CallBudget() < MinRetriesCallBudget {
		least := a.Timeout.D() + RetriesCommitMargin + MinRetriesCallBudget
		bad(key+".transaction_timeout", "%s is too short for action.timeout %s: want at least %s (action.timeout + %s to commit a batch + %s in which calls may start)",
			r.Member.TransactionTimeout, a.Timeout, least, RetriesCommitMargin, MinRetriesCallBudget)
	}
}

// validateRetryDelays checks each retry delay against the retry topics' retention: a record
// held past it would be deleted before it is due.
func (c *Config) validateRetryDelays(bad complaint) {
	limit := MaxRetryWait(c.Kafka.Retention.D())
	for i, d := range c.Consumers.Retries.Delays {
		if d.D() > limit {
			bad(fmt.Sprintf("consumers.retries.delays[%d]", i), "%s is longer than %s, half of kafka.retention (at most %s): a record would be deleted before it is due", d, limit, MaxRetryAfter)
		}
	}
}

func (m *Member) validate(bad complaint, key string) {
	if _, _, err := net.SplitHostPort(m.Listen); err != nil {
		bad(key+".listen", "want host:port, got %q", m.Listen)
	}
	if strings.ContainsAny(m.InstanceID, " \t\r\n") {
		bad(key+".instance_id", "must not contain spaces")
	}
	positive(bad, key+".transaction_timeout", m.TransactionTimeout)
}

func (a *Alerts) validate(bad complaint) {
	const key = "consumers.alerts"
	if a.Group == "" {
		bad(key+".group", "must not be empty")
	}
	positive(bad, key+".cooldown", a.Cooldown)
	if a.SlackWebhookURL != "" {
		checkURL(bad, key+".slack_webhook_url", a.SlackWebhookURL)
	}
	positive(bad, key+".slack_timeout", a.SlackTimeout)
	if !(a.SlackRate > 0) || a.SlackRate > MaxSlackRate {
		bad(key+".slack_rate", "want more than 0 and at most %d messages a second, got %v", MaxSlackRate, a.SlackRate)
	}
	positive(bad, key+".forget_after", a.ForgetAfter)
	a.Member.validate(bad, key)
}

func (a *Analytics) validate(bad complaint) {
	const key = "consumers.analytics"
	if a.Group == "" {
		bad(key+".group", "must not be empty")
	}
	if !strings.HasPrefix(a.Database, "sqlite:") && !strings.HasPrefix(a.Database, "postgres://") && !strings.HasPrefix(a.Database, "postgresql://") {
		bad(key+".database", "want sqlite:PATH or a postgres:// DSN, got %q", redactDSN(a.Database))
	}
	if a.Database == "sqlite:" {
		bad(key+".database", "sqlite: needs a path, like sqlite:analytics.db")
	}
	if _, _, err := net.SplitHostPort(a.Listen); err != nil {
		bad(key+".listen", "want host:port, got %q", a.Listen)
	}
}

// RequireRetries reports what `bridge consume retries` needs that the file leaves out.
func (c *Config) RequireRetries() error {
	if c.Consumers.Retries.Action.URL == "" {
		return fmt.Errorf("config: consumers.retries.action.url: missing: the retries group calls it for every retryable failure")
	}
	return nil
}

// RequireAlerts reports what `bridge consume alerts` needs that the file leaves out.
func (c *Config) RequireAlerts() error {
	if c.Consumers.Alerts.SlackWebhookURL == "" {
		return fmt.Errorf("config: consumers.alerts.slack_webhook_url: missing: the alerts group posts every alert there")
	}
	return nil
}

func checkURL(bad complaint, key, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL may carry a token (Slack's webhook URLs do): never echo it.
		bad(key, "want an absolute http:// or https:// URL")
	}
}

// checkPlaceholders refuses a {name} that is not one of ActionPlaceholders.
func checkPlaceholders(raw string) error {
	rest := raw
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return nil
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return fmt.Errorf("unclosed '{' in the URL")
		}
		name := rest[i+1 : i+j]
		known := false
		for _, p := range ActionPlaceholders {
			known = known || p == name
		}
		if !known {
			return fmt.Errorf("unknown placeholder {%s} (known: {%s})", name, strings.Join(ActionPlaceholders, "}, {"))
		}
		rest = rest[i+j+1:]
	}
}

func validMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

func (c Consumers) redacted() Consumers {
	out := c
	if len(c.Retries.Action.Headers) > 0 {
		out.Retries.Action.Headers = make(map[string]string, len(c.Retries.Action.Headers))
		for name := range c.Retries.Action.Headers {
			out.Retries.Action.Headers[name] = "[redacted]"
		}
	}
	if c.Alerts.SlackWebhookURL != "" {
		out.Alerts.SlackWebhookURL = "[redacted]"
	}
	out.Analytics.Database = redactDSN(c.Analytics.Database)
	return out
}

// redactDSN hides a password in a database DSN, for error messages and logs.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "[redacted]")
	}
	return u.String()
}
