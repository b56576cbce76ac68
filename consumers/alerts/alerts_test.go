package alerts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/consumers/alerts"
	"github.com/socialbridge/bridge/consumers/internal/grouptest"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/schemas"
)

func TestMain(m *testing.M) {
	grouptest.ChildMain(alerts.Run)
	os.Exit(m.Run())
}

// message is one POST Slack received.
type message struct {
	Text   string           `json:"text"`
	Blocks []map[string]any `json:"blocks"`
	at     time.Time
	status int
}

// slack plays a Slack incoming webhook; answer decides the status of each POST (200 when
// nil). Only the messages it answered 200 count as posted.
type slack struct {
	mu       sync.Mutex
	all      []message
	answered []answered // when each answer was written, in order
	answer   func(m message, n int) int
	srv      *httptest.Server
}

type answered struct {
	status int
	at     time.Time
}

func newSlack(t *testing.T, answer func(m message, n int) int) *slack {
	s := &slack{answer: answer}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived := time.Now()
		var m message
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil || m.Text == "" {
			t.Errorf("slack got a message without text (%v)", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		m.at, m.status = arrived, http.StatusOK
		s.mu.Lock()
		n := len(s.all) + 1
		s.mu.Unlock()
		if s.answer != nil {
			m.status = s.answer(m, n)
		}
		s.mu.Lock()
		s.all = append(s.all, m)
		s.mu.Unlock()
		if m.status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(m.status)
		s.mu.Lock()
		s.answered = append(s.answered, answered{status: m.status, at: time.Now()})
		s.mu.Unlock()
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// tried returns every message whose text holds every one of parts, whatever the answer.
func (s *slack) tried(parts ...string) []message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []message
	for _, m := range s.all {
		if containsAll(m.Text, parts) {
			out = append(out, m)
		}
	}
	return out
}

// posted returns the accepted messages whose text holds every one of parts.
func (s *slack) posted(parts ...string) []message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []message
	for _, m := range s.all {
		if m.status == http.StatusOK && containsAll(m.Text, parts) {
			out = append(out, m)
		}
	}
	return out
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func configYAML(brokers []string, prefix, url string) string {
	return grouptest.Kafka(brokers, prefix) + fmt.Sprintf(`consumers:
  alerts:
    group: %q
    cooldown: 1h
    slack_webhook_url: %q
    slack_timeout: 5s
    slack_rate: 50
    listen: "127.0.0.1:0"
    instance_id: "only"
    transaction_timeout: 20s
`, prefix+"alerts", url+"/services/T000/B000/XXXX")
}

func expired(id, profile string) *event.Event {
	return grouptest.Event(event.PostTokenExpired, id, func(ev *event.Event) {
		ev.ProfileName, ev.Platform, ev.PostID = grouptest.Str(profile), grouptest.Str("instagram"), grouptest.Str("post_"+id)
		ev.ReconnectURL = grouptest.Str("https://app.example.com/reconnect/" + profile)
	})
}

func published(id, profile string) *event.Event {
	return grouptest.Event(event.PostPublished, id, func(ev *event.Event) {
		ev.ProfileName, ev.Platform, ev.PostID = grouptest.Str(profile), grouptest.Str("instagram"), grouptest.Str("post_"+id)
	})
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// group runs the alerts group of yaml in-process, its metrics in the registry returned.
func group(t *testing.T, yaml string) (*prometheus.Registry, func() error) {
	reg := prometheus.NewRegistry()
	return reg, grouptest.Run(t, grouptest.Parse(t, yaml), alerts.RunWith(reg))
}

// metric is the sum of the samples of the metric name whose labels include labels.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m.GetLabel(), labels) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func hasLabels(got []*dto.LabelPair, want map[string]string) bool {
	n := 0
	for _, l := range got {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

// decisions waits until the group has committed n decisions on notices of the keyed topic
// (each batch counts its outcomes when it commits), and returns them by outcome. What the
// group will post follows from them: this is the positive signal before a check that
// something was not posted.
func decisions(t *testing.T, reg *prometheus.Registry, prefix string, n int) map[string]int {
	t.Helper()
	keyed := map[string]string{"topic": alerts.Keyed(prefix)}
	eventually(t, 60*time.Second, fmt.Sprintf("%d decisions committed", n), func() bool {
		return metric(t, reg, "bridge_consumer_processed_total", keyed) >= float64(n)
	})
	out := map[string]int{}
	for _, o := range []string{"alerted", "suppressed", "resolved", "ignored", "dead_lettered"} {
		if v := int(metric(t, reg, "bridge_consumer_processed_total", map[string]string{"topic": alerts.Keyed(prefix), "outcome": o})); v > 0 {
			out[o] = v
		}
	}
	return out
}

// sent waits until Slack accepted n messages of kind from the group.
func sent(t *testing.T, reg *prometheus.Registry, kind string, n int) {
	t.Helper()
	eventually(t, 60*time.Second, fmt.Sprintf("%d %s messages sent", n, kind), func() bool {
		return metric(t, reg, "bridge_alerts_sent_total", map[string]string{"kind": kind}) >= float64(n)
	})
}

// at is ev received at t.
func at(ev *event.Event, t time.Time) *event.Event {
	ev.ReceivedAt, ev.OccurredAt = t, t
	return ev
}

// committed is the sum of group's committed offsets on topic.
func committed(t *testing.T, brokers []string, group, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		return -1
	}
	var sum int64
	for _, o := range offs[topic] {
		sum += o.At
	}
	return sum
}

// waitDecided waits until the group has committed n notices of the keyed topic: their
// decisions are then in the state topic.
func waitDecided(t *testing.T, brokers []string, prefix string, n int64) {
	t.Helper()
	eventually(t, 60*time.Second, fmt.Sprintf("%d notices decided", n), func() bool {
		return committed(t, brokers, prefix+"alerts", alerts.Keyed(prefix)) >= n
	})
}

// state reads the group's state topic as a member reads it at an assignment.
func state(t *testing.T, cfg config.Config) map[alerts.Key]alerts.KeyState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, _, err := alerts.LoadState(ctx, cfg, grouptest.Partitions)
	if err != nil {
		t.Fatalf("load the state: %v", err)
	}
	return st
}

func key(profile string) alerts.Key {
	return alerts.Key{Source: "acme", Profile: profile, Platform: "instagram"}
}

func TestOneAlertPerProfilePerCooldownThenResolved(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	s := newSlack(t, nil)
	reg, _ := group(t, configYAML(brokers, prefix, s.srv.URL))

	grouptest.Produce(t, brokers, prefix, 0, expired("evt_b1", "brand"))
	grouptest.Produce(t, brokers, prefix, 1, expired("evt_b2", "brand"), expired("evt_o1", "other"))
	if got := decisions(t, reg, prefix, 3); got["alerted"] != 2 || got["suppressed"] != 1 {
		t.Fatalf("decisions %v: want 2 alerted (brand, other) and 1 suppressed (brand's second expiry)", got)
	}
	sent(t, reg, "alert", 2)
	if n := len(s.posted("Token expired", "brand")); n != 1 {
		t.Fatalf("%d alerts for brand after two expiries inside the cool-down, want 1", n)
	}
	if n := len(s.posted("Token expired", "other")); n != 1 {
		t.Fatalf("%d alerts for other, want 1", n)
	}
	checkButton(t, s.posted("Token expired", "brand")[0], "https://app.example.com/reconnect/brand")

	grouptest.Produce(t, brokers, prefix, 2, published("evt_p1", "brand"))
	grouptest.Produce(t, brokers, prefix, 0, published("evt_p2", "brand"))
	if got := decisions(t, reg, prefix, 5); got["resolved"] != 1 || got["ignored"] != 1 {
		t.Fatalf("decisions %v: want 1 resolved and 1 ignored (the second publish)", got)
	}
	grouptest.Produce(t, brokers, prefix, 1, at(expired("evt_b3", "brand"), time.Now().Add(time.Second))) // after the resolution: cool-down over
	if got := decisions(t, reg, prefix, 6); got["alerted"] != 3 {
		t.Fatalf("decisions %v: want brand alerted again after its resolution", got)
	}
	sent(t, reg, "alert", 3)
	sent(t, reg, "resolution", 1)
	if n := len(s.posted("Resolved", "brand")); n != 1 {
		t.Errorf("%d resolutions for brand, want 1", n)
	}
	if n := len(s.posted("Resolved", "other")); n != 0 {
		t.Errorf("%d resolutions for other, which never published, want 0", n)
	}
	if n := len(s.posted("Token expired", "brand")); n != 2 {
		t.Errorf("%d alerts for brand, want 2 (one before, one after the resolution)", n)
	}
}

func checkButton(t *testing.T, m message, url string) {
	t.Helper()
	b, _ := json.Marshal(m.Blocks)
	if !strings.Contains(string(b), `"type":"button"`) || !strings.Contains(string(b), url) {
		t.Errorf("blocks %s: want a button to %s", b, url)
	}
}

func TestCooldownSurvivesRestart(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	s := newSlack(t, nil)
	yaml := configYAML(brokers, prefix, s.srv.URL)
	reg, stop := group(t, yaml)
	grouptest.Produce(t, brokers, prefix, 0, expired("evt_r1", "restart"))
	sent(t, reg, "alert", 1)
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	reg, _ = group(t, yaml)
	grouptest.Produce(t, brokers, prefix, 2, expired("evt_r2", "restart"), expired("evt_x1", "fresh"))
	if got := decisions(t, reg, prefix, 2); got["alerted"] != 1 || got["suppressed"] != 1 {
		t.Fatalf("decisions after the restart %v: want fresh alerted, restart suppressed", got)
	}
	sent(t, reg, "alert", 1)
	if n := len(s.posted("restart")); n != 1 {
		t.Errorf("%d alerts for the profile across the restart, want 1", n)
	}
	if n := len(s.posted("fresh")); n != 1 {
		t.Errorf("%d alerts for the other profile, want 1", n)
	}
}

// TestSlackFailuresAreRetriedWithoutBlockingOthers: Slack answers one key's alert 429
// once, then 503 three times. The alert is retried until it goes, the other key's is not
// held behind it, and the 429's Retry-After holds back every message to the webhook.
func TestSlackFailuresAreRetriedWithoutBlockingOthers(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	var mu sync.Mutex
	downFails := 0
	s := newSlack(t, func(m message, _ int) int {
		mu.Lock()
		defer mu.Unlock()
		if strings.Contains(m.Text, "down") && downFails < 4 {
			downFails++
			if downFails == 1 {
				return http.StatusTooManyRequests
			}
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	reg, _ := group(t, configYAML(brokers, prefix, s.srv.URL))
	grouptest.Produce(t, brokers, prefix, 0, expired("evt_d1", "down"), expired("evt_u1", "up"))

	sent(t, reg, "alert", 2)
	up, down := s.posted("up"), s.posted("down")
	if len(up) != 1 || len(down) != 1 {
		t.Fatalf("alerts: up %d, down %d; want one each, none dropped or doubled", len(up), len(down))
	}
	if !up[0].at.Before(down[0].at) {
		t.Errorf("up's alert came at %s, after down's at %s: it waited behind the failing one", up[0].at, down[0].at)
	}
	mu.Lock()
	defer mu.Unlock()
	if downFails != 4 {
		t.Errorf("slack refused down's alert %d times, want 4", downFails)
	}
	// The next try of the refused message is sent only once the 429 has arrived and its
	// Retry-After has passed. (That every key waits with it is shown on fake time, without
	// the network's races, by TestSlackRateIsPerWebhook.)
	s.mu.Lock()
	defer s.mu.Unlock()
	var limited time.Time
	for _, a := range s.answered {
		if a.status == http.StatusTooManyRequests {
			limited = a.at
		}
	}
	for _, m := range s.all {
		if strings.Contains(m.Text, "down") && m.at.After(limited) && m.at.Before(limited.Add(time.Second)) {
			t.Errorf("down's alert tried again %s after the 429 that asked for 1 s", m.at.Sub(limited))
		}
	}
}

// TestRefusedBlocksDoNotBlockTheKey: Slack refuses a message with blocks (invalid_blocks,
// as for a reconnect link it will not take in a button). The key's alert goes as text
// only, and its resolution after it: nothing waits forever behind the refusal.
func TestRefusedBlocksDoNotBlockTheKey(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	s := newSlack(t, func(m message, _ int) int {
		if strings.Contains(m.Text, "badlink") && m.Blocks != nil {
			return http.StatusBadRequest
		}
		return http.StatusOK
	})
	grouptest.Run(t, grouptest.Parse(t, configYAML(brokers, prefix, s.srv.URL)), alerts.Run)
	bad := expired("evt_bad", "badlink")
	bad.ReconnectURL = grouptest.Str("https://app.example.com/reconnect?next=|<x>")
	grouptest.Produce(t, brokers, prefix, 0, bad)
	eventually(t, 60*time.Second, "badlink's alert, as text only", func() bool { return len(s.posted("Token expired", "badlink")) == 1 })
	if m := s.posted("Token expired", "badlink")[0]; m.Blocks != nil || !strings.Contains(m.Text, "https://app.example.com/reconnect?next=|&lt;x&gt;") {
		t.Errorf("text-only alert %q (blocks %v): want the reconnect link in the text, escaped", m.Text, m.Blocks)
	}
	grouptest.Produce(t, brokers, prefix, 1, at(published("evt_badp", "badlink"), time.Now().Add(time.Second)))
	eventually(t, 60*time.Second, "badlink's resolution", func() bool { return len(s.posted("Resolved", "badlink")) == 1 })
}

// TestGroupGivesUpWhatSlackRefusesForGood: Slack refuses every form of one key's messages
// (410, a channel archived). Each is tried with blocks and as text, then given up
// (counted), and the key's next message goes: none is retried forever.
func TestGroupGivesUpWhatSlackRefusesForGood(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	s := newSlack(t, func(m message, _ int) int {
		if strings.Contains(m.Text, "archived") {
			return http.StatusGone
		}
		return http.StatusOK
	})
	reg, _ := group(t, configYAML(brokers, prefix, s.srv.URL))
	grouptest.Produce(t, brokers, prefix, 0, expired("evt_g1", "archived"))
	eventually(t, 60*time.Second, "the alert given up", func() bool {
		return metric(t, reg, "bridge_alerts_given_up_total", map[string]string{"kind": "alert"}) == 1
	})
	grouptest.Produce(t, brokers, prefix, 1, at(published("evt_g2", "archived"), time.Now().Add(time.Second)))
	eventually(t, 60*time.Second, "the resolution given up", func() bool {
		return metric(t, reg, "bridge_alerts_given_up_total", nil) == 2
	})
	if a, r := len(s.tried("Token expired", "archived")), len(s.tried("Resolved", "archived")); a != 2 || r != 2 {
		t.Errorf("slack got %d tries of the alert and %d of the resolution, want 2 each (blocks, then text only)", a, r)
	}
}

func TestUndecodableValuesAreDeadLettered(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	s := newSlack(t, nil)
	grouptest.Run(t, grouptest.Parse(t, configYAML(brokers, prefix, s.srv.URL)), alerts.Run)
	topic := event.Topic(prefix, event.PostTokenExpired)
	grouptest.ProduceRecords(t, brokers,
		&kgo.Record{Topic: topic, Key: []byte("garbage"), Value: []byte("{not avro}")},
		&kgo.Record{Topic: topic, Key: []byte("fingerprint"), Value: []byte{0xC3, 0x01, 9, 9, 9, 9, 9, 9, 9, 9, 0}},
		&kgo.Record{Topic: topic, Key: []byte("schema-id"), Value: []byte{0, 0, 0, 0, 7, 2}})
	grouptest.Produce(t, brokers, prefix, 0, expired("evt_after", "survivor"))

	eventually(t, 60*time.Second, "the alert behind the bad records", func() bool { return len(s.posted("survivor")) == 1 })
	dlq := kafkatest.ReadCommitted(t, brokers, alerts.DLQ(prefix), 3, time.Second, 30*time.Second)
	if len(dlq) != 3 {
		t.Fatalf("DLQ: %d records, want 3", len(dlq))
	}
	for _, r := range dlq {
		if e := kafkatest.Header(r, consumers.HeaderDLQError); !strings.Contains(e, "undecodable") || kafkatest.Header(r, consumers.HeaderDLQOriginTopic) != topic {
			t.Errorf("DLQ record %s: error %q, origin %q", r.Key, e, kafkatest.Header(r, consumers.HeaderDLQOriginTopic))
		}
	}
}

// TestWholeValuesInTheKeyedTopicAreDecided: the keyed topic held whole event values before
// it held notices; such a record left there by an earlier version is still decided.
func TestWholeValuesInTheKeyedTopicAreDecided(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	s := newSlack(t, nil)
	enc, _ := schemas.NewSingleObject()
	value, err := enc.Encode(nil, expired("evt_old", "legacy"))
	if err != nil {
		t.Fatal(err)
	}
	r := &kgo.Record{Topic: alerts.Keyed(prefix), Key: []byte(`["acme","legacy","instagram"]`), Value: value}
	r.Partition = int32(kgo.StickyKeyPartitioner(nil).ForTopic(r.Topic).Partition(r, grouptest.Partitions))
	grouptest.ProduceRecords(t, brokers, r)
	grouptest.Run(t, grouptest.Parse(t, configYAML(brokers, prefix, s.srv.URL)), alerts.Run)
	eventually(t, 60*time.Second, "the alert of the whole value", func() bool { return len(s.posted("Token expired", "legacy")) == 1 })
}

// TestPublishDecidedBeforeItsExpiryIsNotAlerted: an expiry and the publish that follows it
// travel in two topics, so the publish may be decided first (here it is produced first,
// and decided before the expiry is produced). The expiry must not raise an alert the
// publish already answered: nothing would ever resolve it.
func TestPublishDecidedBeforeItsExpiryIsNotAlerted(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	s := newSlack(t, nil)
	cfg := grouptest.Parse(t, configYAML(brokers, prefix, s.srv.URL))
	grouptest.Run(t, cfg, alerts.Run)
	t0 := time.Now().UTC().Truncate(time.Millisecond)

	grouptest.Produce(t, brokers, prefix, 0, at(published("evt_p1", "caught_up"), t0.Add(time.Minute)))
	waitDecided(t, brokers, prefix, 1)
	grouptest.Produce(t, brokers, prefix, 1, at(expired("evt_e1", "caught_up"), t0))
	waitDecided(t, brokers, prefix, 2)
	if a := state(t, cfg)[key("caught_up")].Alert; a != nil {
		t.Fatalf("alert %s raised for an expiry received before a publish already decided: it is never resolved", a.ID)
	}
	if n := len(s.posted("caught_up")); n != 0 {
		t.Errorf("%d messages for caught_up, want none", n)
	}
}

// TestStateTopicIsCreatedToCompactWithinAnHour: what a load reads is the live keys plus
// what compaction has not cleaned: the segment being written and young tombstones, an hour
// of each as the group creates the topic (Kafka's defaults are a week and a day).
func TestStateTopicIsCreatedToCompactWithinAnHour(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	s := newSlack(t, nil)
	grouptest.Run(t, grouptest.Parse(t, configYAML(brokers, prefix, s.srv.URL)), alerts.Run)
	grouptest.Produce(t, brokers, prefix, 0, expired("evt_c1", "compact"))
	eventually(t, 60*time.Second, "the alert: the group made its topics", func() bool { return len(s.posted("compact")) == 1 })
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rcs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, alerts.State(prefix))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(alerts.State(prefix), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cleanup.policy": "compact", "segment.ms": "3600000", "delete.retention.ms": "3600000"}
	for _, c := range rc.Configs {
		if w, ok := want[c.Key]; ok {
			if c.MaybeValue() != w {
				t.Errorf("%s = %s, want %s", c.Key, c.MaybeValue(), w)
			}
			delete(want, c.Key)
		}
	}
	if len(want) > 0 {
		t.Errorf("configs not described: %v", want)
	}
}
