package service_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/service"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
	"github.com/socialbridge/bridge/internal/topics"
)

// TestTopicsCreatedAsConfigured: kafka.partitions and kafka.retention become the created
// topics' partition count and retention.ms.
func TestTopicsCreatedAsConfigured(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := testConfig(t, brokers)
	cfg.Kafka.Partitions, cfg.Kafka.Retention = 3, config.Duration(50*time.Hour)
	start(t, cfg)
	adm := admin(t, brokers)
	topics := event.Topics(cfg.Kafka.TopicPrefix)
	details, err := adm.ListTopics(t.Context(), topics...)
	if err != nil {
		t.Fatal(err)
	}
	configs, err := adm.DescribeTopicConfigs(t.Context(), topics...)
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range topics {
		if d, ok := details[topic]; !ok || d.Err != nil || len(d.Partitions) != 3 {
			t.Errorf("%s: %+v; want 3 partitions", topic, d)
		}
		rc, err := configs.On(topic, nil)
		if err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
		var retention string
		for _, c := range rc.Configs {
			if c.Key == "retention.ms" && c.Value != nil {
				retention = *c.Value
			}
		}
		if want := strconv.FormatInt((50 * time.Hour).Milliseconds(), 10); retention != want {
			t.Errorf("%s: retention.ms %q, want %s", topic, retention, want)
		}
	}
}

// TestCreateTopicsFalse: with kafka.create_topics false the bridge creates nothing and is
// not ready until someone else creates the topics.
func TestCreateTopicsFalse(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := testConfig(t, brokers)
	cfg.Kafka.CreateTopics = false
	cfg.HTTP.AdminListen = "127.0.0.1:0"
	b := start(t, cfg)
	adm := admin(t, brokers)
	listed, err := adm.ListTopics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for name := range listed {
		if strings.HasPrefix(name, cfg.Kafka.TopicPrefix) {
			t.Errorf("the bridge created %s", name)
		}
	}
	if a := waitReadyz(t, "http://"+b.AdminAddr(), 503); a.Reason != "topics missing" {
		t.Errorf("readiness %+v, want topics missing", a)
	}
	cfg.Kafka.CreateTopics = true
	if err := topics.Ensure(t.Context(), client(t, brokers), cfg.Kafka, nil, topics.Events(cfg.Kafka.TopicPrefix)...); err != nil {
		t.Fatal(err)
	}
	waitReadyz(t, "http://"+b.AdminAddr(), 200)
	h, body := codiv("post.published", "evt_precreated")
	if a := send(t, httpClient, "POST", b.url+"/webhooks/codivupload", h, body); a.Status != "accepted" {
		t.Fatalf("%+v", a)
	}
}

// TestDedupRebuildFalse: without the rebuild a restarted bridge has forgotten the ids it
// accepted, so a redelivery is accepted again (what dedup.rebuild: true prevents, see
// TestRestartKeepsDedup).
func TestDedupRebuildFalse(t *testing.T) {
	cfg := testConfig(t, kafkatest.Brokers(t))
	cfg.Dedup.Rebuild = false
	h, body := codiv("post.published", "evt_no_rebuild")
	first := start(t, cfg)
	if a := send(t, httpClient, "POST", first.url+"/webhooks/codivupload", h, body); a.Status != "accepted" {
		t.Fatalf("first: %+v", a)
	}
	first.stop(t)
	second := start(t, cfg)
	if a := send(t, httpClient, "POST", second.url+"/webhooks/codivupload", h, body); a.Status != "accepted" {
		t.Fatalf("after a restart without rebuild: %+v; want accepted again", a)
	}
}

// TestShutdownTimeout: a delivery stuck on a frozen broker (its own wait, produce_timeout,
// is ten minutes) does not hold the shutdown: Run returns once http.shutdown_timeout has
// passed, saying the deadline cut it short. That the bound is the configured one, not a
// larger one, is TestShutdownContextIsTheTimeout's.
func TestShutdownTimeout(t *testing.T) {
	broker := kafkatest.StartBroker(t)
	cfg := testConfig(t, []string{broker.Addr()})
	cfg.HTTP.ShutdownTimeout = config.Duration(2 * time.Second)
	cfg.Kafka.ProduceTimeout = config.Duration(10 * time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs testkit.LogBuffer
	ran := make(chan error, 1)
	go func() { ran <- service.Run(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), service.Options{}) }()
	base := listening(t, &logs)
	waitReadyz(t, base, 200)

	broker.Pause()
	defer broker.Resume()
	h, body := codiv("post.published", "evt_stuck")
	type reply struct {
		a   answer
		err error
	}
	replies := make(chan reply, 1)
	// No client timeout: the client waits as long as the bridge keeps the connection.
	go func() {
		a, err := exchange(&http.Client{}, "POST", base+"/webhooks/codivupload", h, body)
		replies <- reply{a, err}
	}()
	waitMetric(t, base, "bridge_requests_in_flight 1")
	cancel()
	select {
	case err := <-ran:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("shutdown with a delivery cut off returned %v; want the shutdown deadline's error", err)
		}
	case <-time.After(time.Minute): // the delivery alone would hold it for ten
		t.Fatal("shutdown still running a minute after it began, with shutdown_timeout 2s")
	}
	// The delivery was cut: its connection closed, or, once the shutdown closed the Kafka
	// client, answered 503 for the provider to send again (which may reach the client a
	// moment before or after Run returns). Never accepted, never left waiting.
	select {
	case r := <-replies:
		if r.err == nil && r.a.Code != http.StatusServiceUnavailable {
			t.Errorf("the stuck delivery was answered %d %s; want 503 or a cut connection", r.a.Code, r.a.Status)
		}
	case <-time.After(time.Minute):
		t.Error("the stuck delivery's client was still waiting a minute after the shutdown returned")
	}
}

// listening waits for Run's "bridge listening" line in logs and returns its base URL.
func listening(t *testing.T, logs *testkit.LogBuffer) string {
	t.Helper()
	re := regexp.MustCompile(`msg="bridge listening" addr=(http://\S+)`)
	testkit.Eventually(t, time.Minute, "the bridge listens", func() bool { return re.MatchString(logs.String()) }, logs.String)
	return re.FindStringSubmatch(logs.String())[1]
}

// waitMetric polls base/metrics until it has line.
func waitMetric(t *testing.T, base, line string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, text := get(t, base+"/metrics"); strings.Contains(text, "\n"+line+"\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed %q", line)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCreateTopicsFalseChecksSettings: without kafka.create_topics, the topics that exist
// are still checked, once Kafka answers after the start: one with a max.message.bytes below
// the record limit is warned of.
func TestCreateTopicsFalseChecksSettings(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := testConfig(t, brokers)
	cfg.Kafka.CreateTopics = false
	small := "1024"
	topic := event.Topic(cfg.Kafka.TopicPrefix, event.PostFailed)
	// Visible with its leader before the start, whose one check of the settings must see it.
	kafkatest.CreateTopicWith(t, admin(t, brokers), topic, 1, map[string]*string{"max.message.bytes": &small})
	b := launch(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want := "topic=" + topic + ` problems="max.message.bytes 1024, want at least`
	for !strings.Contains(b.logs.String(), want) {
		select {
		case <-ctx.Done():
			t.Fatalf("no warning of %s's max.message.bytes:\n%s", topic, b.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	b.stop(t) // waits for the check
	if strings.Contains(b.logs.String(), "could not be checked") {
		t.Errorf("a check that was made is said not to be:\n%s", b.logs)
	}
}
