package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/socialbridge/bridge/config"
)

// welcome is what dev tells the user once every part runs.
type welcome struct {
	ingress, broker, registry, dashboard string
	cfg                                  config.Config
	stand                                *standIns
	took                                 time.Duration
}

// printWelcome prints every URL of dev, a signed curl that works, and the commands to try
// next, each of them runnable as printed.
func printWelcome(w io.Writer, v welcome) {
	c := v.cfg.Consumers
	fmt.Fprintf(w, `
bridge dev is ready (started in %s): everything below runs in this process.

  ingress     http://%s/webhooks/codivupload   metrics http://%s/metrics
              source "codivupload", secret %q (dev only)
  kafka       %s (in-process), schema registry %s
  dashboard   http://%s/analytics   (group %s, SQLite %s, removed at exit)
  traces      http://%s/traces   (the last %d spans of every part, in memory: no collector needed)
  retries     metrics http://%s/metrics   (group %s, delays %s)
  alerts      metrics http://%s/metrics   (group %s, cool-down %s)
  stand-ins   retry API %s/…   Slack %s
              (they log each request they receive, below)

%s
Try next, in another terminal:

  # a failed post: the retries consumer calls the retry API stand-in, which answers the
  # first call 503; the next comes %s later, from the delay topic, with the same key
  %s
  # an expired token: the alerts consumer posts to the Slack stand-in, which logs the alert
  %s
  # every event type, with redeliveries and forged signatures
  %s
  # every record the bridge wrote, decoded
  %s

then open the dashboard: http://%s/analytics
and follow each delivery from the webhook to its effect: http://%s/traces

Stop with Ctrl-C.
`, v.took.Round(time.Millisecond), v.ingress, v.ingress, devSecret,
		v.broker, v.registry,
		v.dashboard, c.Analytics.Group, strings.TrimPrefix(c.Analytics.Database, "sqlite:"), v.dashboard, devSpans,
		c.Retries.Member.Listen, c.Retries.Group, durations(c.Retries.Delays),
		c.Alerts.Member.Listen, c.Alerts.Group, c.Alerts.Cooldown.D(),
		v.stand.RetryAPIURL(), v.stand.SlackURL(),
		curlHint(v.ingress),
		c.Retries.Delays[0].D(), simulateHint(v.ingress, "post.failed"), simulateHint(v.ingress, "post.token_expired"),
		simulateHint(v.ingress, "all --count 20 --duplicates 0.2 --bad-signatures 0.1"),
		tailHint(v.broker, v.registry), v.dashboard, v.dashboard)
}

// curlHint is a signed delivery of a fresh post.published event, ready to paste.
func curlHint(addr string) string {
	body := fmt.Sprintf(`{"event":"post.published","id":"evt_dev_%s","timestamp":"%s","data":{"post_id":"post_k8m2v9x1","profile_name":"main","platform":"instagram","platform_post_id":"17891234567890","platform_post_url":"https://instagram.com/p/Cabc123/","scheduled_at":"2026-05-08T14:00:00Z","published_at":"2026-05-08T14:00:42Z"}}`,
		randomHex(4), time.Now().UTC().Format(time.RFC3339))
	mac := hmac.New(sha256.New, []byte(devSecret))
	mac.Write([]byte(body))
	return fmt.Sprintf(`Send a signed webhook (again to see "duplicate"):

curl -sS -X POST http://%s/webhooks/codivupload \
  -H 'Content-Type: application/json' \
  -H 'X-CodivUpload-Event: post.published' \
  -H 'X-CodivUpload-Signature: %s' \
  --data-raw '%s'
`, addr, hex.EncodeToString(mac.Sum(nil)), body)
}

// simulateHint is a simulate command that works against this dev bridge as printed.
func simulateHint(addr, args string) string {
	cmd := self() + " simulate " + args
	if addr != devIngress {
		cmd += " --url http://" + addr
	}
	return cmd
}

// tailHint is a tail command that reads this dev bridge's in-process Kafka.
func tailHint(broker, registryURL string) string {
	return self() + " tail --from-beginning --brokers " + broker + " --registry " + registryURL
}

func durations(ds []config.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.D().String()
	}
	return strings.Join(s, ", ")
}

// self is how the user ran this binary: `go run ./cmd/bridge` leaves it in a go-build
// folder, where it cannot be run again.
func self() string {
	if strings.Contains(os.Args[0], "go-build") {
		return "go run ./cmd/bridge"
	}
	return os.Args[0]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
