package service_test

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestAdminListener: with http.admin_listen the operator endpoints, and the profiler with
// http.admin_pprof, are served there and not beside the webhooks.
func TestAdminListener(t *testing.T) {
	cfg := testConfig(t, kafkatest.Brokers(t))
	cfg.HTTP.AdminListen, cfg.HTTP.AdminPprof = "127.0.0.1:0", true
	b := start(t, cfg)
	admin := "http://" + b.AdminAddr()
	if admin == b.url {
		t.Fatal("the admin listener is the ingress's")
	}
	h, body := codiv("post.published", "evt_admin")
	if a := send(t, httpClient, "POST", b.url+"/webhooks/codivupload", h, body); a.Status != "accepted" {
		t.Fatalf("delivery: %+v", a)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/debug/pprof/"} {
		if code, _ := get(t, b.url+path); code != 404 {
			t.Errorf("%s on the webhooks' listener: %d, want 404", path, code)
		}
		code, text := get(t, admin+path)
		if code != 200 {
			t.Errorf("%s on the admin listener: %d %s", path, code, text)
		}
		if path == "/metrics" && !strings.Contains(text, `bridge_requests_total{code="200",source="codivupload"} 1`) {
			t.Errorf("admin metrics lack the delivery")
		}
	}
	if a := send(t, httpClient, "POST", admin+"/webhooks/codivupload", h, body); a.Code != 404 {
		t.Errorf("a webhook on the admin listener: %+v", a)
	}
}

// TestReadyzHidesBrokers stops the broker under two bridges: /readyz on the webhooks'
// listener says why without naming the broker; the admin listener's says it in detail.
func TestReadyzHidesBrokers(t *testing.T) {
	broker := kafkatest.StartBroker(t)
	public := start(t, testConfig(t, []string{broker.Addr()}))
	cfg := testConfig(t, []string{broker.Addr()})
	cfg.HTTP.AdminListen = "127.0.0.1:0"
	operated := start(t, cfg)

	broker.Stop()
	started := time.Now()
	a := waitReadyz(t, public.url, 503)
	t.Logf("/readyz answered 503 %v after the broker exited", time.Since(started))
	_, port, _ := net.SplitHostPort(broker.Addr())
	if a.Reason != "kafka unreachable" || strings.Contains(a.Reason+a.Error, port) {
		t.Errorf("public readiness %+v: want the reason without the broker", a)
	}
	waitReadyz(t, "http://"+operated.AdminAddr(), 503)
	_, text := get(t, "http://"+operated.AdminAddr()+"/readyz")
	if !strings.Contains(text, `"detail"`) || !strings.Contains(text, "kafka") {
		t.Errorf("admin readiness %s: want the detail", text)
	}
}

// TestReadyzTopicMissing deletes one of the bridge's topics: /readyz says so.
func TestReadyzTopicMissing(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := testConfig(t, brokers)
	cfg.HTTP.AdminListen = "127.0.0.1:0"
	b := start(t, cfg)
	waitReadyz(t, "http://"+b.AdminAddr(), 200)
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	gone := cfg.Kafka.TopicPrefix + "post.retry"
	if _, err := kadm.NewClient(cl).DeleteTopics(t.Context(), gone); err != nil {
		t.Fatal(err)
	}
	a := waitReadyz(t, "http://"+b.AdminAddr(), 503)
	if a.Reason != "topics missing" {
		t.Errorf("readiness %+v, want topics missing", a)
	}
	if _, text := get(t, "http://"+b.AdminAddr()+"/readyz"); !strings.Contains(text, gone) {
		t.Errorf("admin readiness %s does not name %s", text, gone)
	}
}

// TestDrainBeforeShutdown: on shutdown /readyz answers 503 for http.drain_period while
// deliveries are still accepted (each answer closing its connection); then the listener
// closes.
func TestDrainBeforeShutdown(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := testConfig(t, brokers)
	cfg.HTTP.DrainPeriod = config.Duration(5 * time.Second)
	b := start(t, cfg)
	done := make(chan error, 1)
	go func() { done <- b.stop(t) }()

	if a := waitReadyz(t, b.url, 503); a.Reason != "shutting down" {
		t.Errorf("readiness while draining: %+v", a)
	}
	h, body := codiv("post.published", "evt_drain")
	a := send(t, httpClient, "POST", b.url+"/webhooks/codivupload", h, body)
	if a.Status != "accepted" || !a.Close {
		t.Fatalf("a delivery while draining: %+v; want accepted, closing its connection", a)
	}
	select {
	case err := <-done:
		t.Fatalf("shutdown ended (%v) with the delivery answered within the drain period", err)
	default:
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("the listener is still open after shutdown")
	}
	if n := countKey(readTopic(t, brokers, cfg.Kafka.TopicPrefix+"post.published"), "evt_drain"); n != 1 {
		t.Errorf("evt_drain is in kafka %d times", n)
	}
}

// waitReadyz polls base/readyz until it answers code, for at most a minute; a refused
// connection counts as not yet.
func waitReadyz(t *testing.T, base string, code int) answer {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		a, err := exchange(httpClient, "GET", base+"/readyz", nil, nil)
		if err == nil && a.Code == code {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still answers %+v (%v) after a minute; want %d", a, err, code)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
