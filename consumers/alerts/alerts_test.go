package alerts_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/consumers/alerts"
	"github.com/socialbridge/bridge/consumers/internal/testkit"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/schemas"
)

func TestMain(m *testing.M) {
	testkit.ChildMain(alerts.Run)
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
	mu     sync.Mutex
	all    []message
	answer func(m message, n int) int
	srv    *httptest.Server
}

func newSlack(t *testing.T, answer func(m message, n int) int) *slack {
	s := &slack{answer: answer}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m message
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil || m.Text == "" || len(m.Blocks) == 0 {
			t.Errorf("slack got a message without text or blocks (%v)", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		m.at, m.status = time.Now(), http.StatusOK
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
	}))
	t.Cleanup(s.srv.Close)
	return s
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

func config(brokers []string, prefix, url string) string {
	return testkit.Kafka(brokers, prefix) + fmt.Sprintf(`consumers:
  alerts:
    group: %q
    cooldown: 1h
    slack_webhook_url: %q
    slack_timeout: 5s
    listen: "127.0.0.1:0"
    instance_id: "only"
    transaction_timeout: 20s
`, prefix+"alerts", url+"/services/T000/B000/XXXX")
}

func expired(id, profile string) *event.Event {
	return testkit.Event(event.PostTokenExpired, id, func(ev *event.Event) {
		ev.ProfileName, ev.Platform, ev.PostID = testkit.Str(profile), testkit.Str("instagram"), testkit.Str("post_"+id)
		ev.ReconnectURL = testkit.Str("https://app.example.com/reconnect/" + profile)
	})
}

func published(id, profile string) *event.Event {
	return testkit.Event(event.PostPublished, id, func(ev *event.Event) {
		ev.ProfileName, ev.Platform, ev.PostID = testkit.Str(profile), testkit.Str("instagram"), testkit.Str("post_"+id)
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

// settle waits long enough for a message that should not come to have come.
func settle() { time.Sleep(3 * time.Second) }

func TestOneAlertPerProfilePerCooldownThenResolved(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	s := newSlack(t, nil)
	testkit.Run(t, testkit.Parse(t, config(brokers, prefix, s.srv.URL)), alerts.Run)

	testkit.Produce(t, brokers, prefix, 0, expired("evt_b1", "brand"))
	testkit.Produce(t, brokers, prefix, 1, expired("evt_b2", "brand"), expired("evt_o1", "other"))
	eventually(t, 60*time.Second, "an alert for each profile", func() bool {
		return len(s.posted("Token expired", "brand")) >= 1 && len(s.posted("Token expired", "other")) >= 1
	})
	settle()
	if n := len(s.posted("Token expired", "brand")); n != 1 {
		t.Fatalf("%d alerts for brand after two expiries inside the cool-down, want 1", n)
	}
	if n := len(s.posted("Token expired", "other")); n != 1 {
		t.Fatalf("%d alerts for other, want 1", n)
	}
	checkButton(t, s.posted("Token expired", "brand")[0], "https://app.example.com/reconnect/brand")

	testkit.Produce(t, brokers, prefix, 2, published("evt_p1", "brand"))
	testkit.Produce(t, brokers, prefix, 0, published("evt_p2", "brand"))
	eventually(t, 60*time.Second, "brand resolved", func() bool { return len(s.posted("Resolved", "brand")) >= 1 })
	testkit.Produce(t, brokers, prefix, 1, expired("evt_b3", "brand")) // after the resolution: cool-down over
	eventually(t, 60*time.Second, "a new alert for brand", func() bool { return len(s.posted("Token expired", "brand")) == 2 })
	settle()
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
	cfg := testkit.Parse(t, config(brokers, prefix, s.srv.URL))
	stop := testkit.Run(t, cfg, alerts.Run)
	testkit.Produce(t, brokers, prefix, 0, expired("evt_r1", "restart"))
	eventually(t, 60*time.Second, "the alert", func() bool { return len(s.posted("restart")) == 1 })
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	testkit.Run(t, cfg, alerts.Run)
	testkit.Produce(t, brokers, prefix, 2, expired("evt_r2", "restart"), expired("evt_x1", "fresh"))
	eventually(t, 60*time.Second, "the other profile's alert", func() bool { return len(s.posted("fresh")) == 1 })
	settle()
	if n := len(s.posted("restart")); n != 1 {
		t.Errorf("%d alerts for the profile across the restart, want 1", n)
	}
}

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
	testkit.Run(t, testkit.Parse(t, config(brokers, prefix, s.srv.URL)), alerts.Run)
	testkit.Produce(t, brokers, prefix, 0, expired("evt_d1", "down"), expired("evt_u1", "up"))

	eventually(t, 60*time.Second, "the failing profile's alert after Slack recovers", func() bool { return len(s.posted("down")) == 1 })
	settle()
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
}

func TestUndecodableValuesAreDeadLettered(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	s := newSlack(t, nil)
	testkit.Run(t, testkit.Parse(t, config(brokers, prefix, s.srv.URL)), alerts.Run)
	topic := event.Topic(prefix, event.PostTokenExpired)
	testkit.ProduceRecords(t, brokers,
		&kgo.Record{Topic: topic, Key: []byte("garbage"), Value: []byte("{not avro}")},
		&kgo.Record{Topic: topic, Key: []byte("fingerprint"), Value: []byte{0xC3, 0x01, 9, 9, 9, 9, 9, 9, 9, 9, 0}},
		&kgo.Record{Topic: topic, Key: []byte("schema-id"), Value: []byte{0, 0, 0, 0, 7, 2}})
	testkit.Produce(t, brokers, prefix, 0, expired("evt_after", "survivor"))

	eventually(t, 60*time.Second, "the alert behind the bad records", func() bool { return len(s.posted("survivor")) == 1 })
	dlq := testkit.Read(t, brokers, alerts.DLQ(prefix), 3, time.Second, 30*time.Second)
	if len(dlq) != 3 {
		t.Fatalf("DLQ: %d records, want 3", len(dlq))
	}
	for _, r := range dlq {
		if e := testkit.Header(r, consumers.HeaderDLQError); !strings.Contains(e, "undecodable") || testkit.Header(r, consumers.HeaderDLQOriginTopic) != topic {
			t.Errorf("DLQ record %s: error %q, origin %q", r.Key, e, testkit.Header(r, consumers.HeaderDLQOriginTopic))
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
	r.Partition = int32(kgo.StickyKeyPartitioner(nil).ForTopic(r.Topic).Partition(r, testkit.Partitions))
	testkit.ProduceRecords(t, brokers, r)
	testkit.Run(t, testkit.Parse(t, config(brokers, prefix, s.srv.URL)), alerts.Run)
	eventually(t, 60*time.Second, "the alert of the whole value", func() bool { return len(s.posted("Token expired", "legacy")) == 1 })
}
