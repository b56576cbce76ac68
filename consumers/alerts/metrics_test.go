package alerts_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers/alerts"
	"github.com/socialbridge/bridge/consumers/internal/grouptest"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
)

// TestMetricsOnTheGroupsEndpoint scrapes the alerts group's /metrics, as Prometheus does,
// after two keys' messages: brand alerted, suppressed once, then resolved; gone's alert
// refused for good by Slack (410). Each series docs/consumers.md names is there with its
// group label and the count of what happened.
func TestMetricsOnTheGroupsEndpoint(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	s := newSlack(t, func(m message, _ int) int {
		if strings.Contains(m.Text, "gone") {
			return http.StatusGone
		}
		return http.StatusOK
	})
	urls := make(chan (<-chan string), 1)
	grouptest.Run(t, grouptest.Parse(t, configYAML(brokers, prefix, s.srv.URL)), func(ctx context.Context, cfg config.Config, log *slog.Logger) error {
		log, url := grouptest.CatchAttr(log, "metrics")
		urls <- url
		return alerts.Run(ctx, cfg, log)
	})
	var url string
	select {
	case url = <-<-urls:
	case <-time.After(60 * time.Second):
		t.Fatal("the group did not log its /metrics address within 60s")
	}
	before := grouptest.Scrape(t, url)
	grouptest.AtZero(t, before, "bridge_alerts_sent_total", "kind", "alert", "resolution")
	grouptest.AtZero(t, before, "bridge_alerts_given_up_total", "kind", "alert", "resolution")
	grouptest.AtZero(t, before, "bridge_consumer_dead_lettered_total", "reason", "undecodable")

	grouptest.Produce(t, brokers, prefix, 0, expired("evt_m1", "brand"), expired("evt_m2", "brand"), expired("evt_m3", "gone"))
	testkit.Eventually(t, 60*time.Second, "brand's alert sent", func() bool { return len(s.posted("Token expired", "brand")) == 1 })
	grouptest.Produce(t, brokers, prefix, 1, at(published("evt_m4", "brand"), time.Now().Add(time.Second)))

	group, input, keyed := prefix+"alerts", event.Topic(prefix, event.PostTokenExpired), alerts.Keyed(prefix)
	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"bridge_alerts_sent_total", []string{"kind", "alert"}, 1},
		{"bridge_alerts_sent_total", []string{"kind", "resolution"}, 1},
		{"bridge_alerts_given_up_total", []string{"kind", "alert"}, 1},
		{"bridge_alerts_state_keys", nil, 2},
		{"bridge_consumer_processed_total", []string{"topic", input, "outcome", "forwarded"}, 3},
		{"bridge_consumer_processed_total", []string{"topic", event.Topic(prefix, event.PostPublished), "outcome", "forwarded"}, 1},
		{"bridge_consumer_processed_total", []string{"topic", keyed, "outcome", "alerted"}, 2},
		{"bridge_consumer_processed_total", []string{"topic", keyed, "outcome", "suppressed"}, 1},
		{"bridge_consumer_processed_total", []string{"topic", keyed, "outcome", "resolved"}, 1},
	}
	var body string
	testkit.Eventually(t, 60*time.Second, "the series of what happened, with their group", func() bool {
		body = grouptest.Scrape(t, url)
		for _, w := range want {
			if got, ok := grouptest.Metric(body, w.name, append([]string{"group", group}, w.labels...)...); !ok || got != w.value {
				return false
			}
		}
		return true
	}, func() string {
		var out []string
		for _, w := range want {
			got, ok := grouptest.Metric(body, w.name, append([]string{"group", group}, w.labels...)...)
			out = append(out, fmt.Sprintf("%s%v = %g (present %v), want %g", w.name, w.labels, got, ok, w.value))
		}
		return strings.Join(out, "\n")
	})
	if n, ok := grouptest.Metric(body, "bridge_alerts_state_load_seconds_count", "group", group); !ok || n < 1 {
		t.Errorf("bridge_alerts_state_load_seconds_count = %g (present %v), want a load at the assignment", n, ok)
	}
}
