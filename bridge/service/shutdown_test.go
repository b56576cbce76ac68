package service_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestGracefulShutdown shuts the bridge down while deliveries are in flight. A delivery whose
// record reached Kafka must have been answered 200 (the shutdown let its handler finish and
// answer), and one answered 200 must be in Kafka exactly once. Deliveries the bridge had not
// begun to read may fail at the connection: the provider retries those, and nothing of them
// was stored.
func TestGracefulShutdown(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := testConfig(t, brokers)
	b := start(t, cfg)
	hook := b.url + "/webhooks/codivupload"

	const n = 60
	type outcome struct {
		id   string
		code int
		err  error
	}
	outcomes := make(chan outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(2*i) * time.Millisecond)
			id := fmt.Sprintf("evt_shutdown_%d", i)
			h, body := codiv("post.published", id)
			req, _ := http.NewRequest("POST", hook, bytes.NewReader(body))
			for k, v := range h {
				req.Header.Set(k, v)
			}
			resp, err := (&http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
			if err == nil {
				resp.Body.Close()
				outcomes <- outcome{id, resp.StatusCode, nil}
				return
			}
			outcomes <- outcome{id, 0, err}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	b.stop(t)
	wg.Wait()
	close(outcomes)

	recs := readTopic(t, brokers, cfg.Kafka.TopicPrefix+"post.published")
	answered := 0
	for o := range outcomes {
		switch {
		case o.err != nil && countKey(recs, o.id) > 0:
			t.Errorf("%s reached kafka but its request was cut off by the shutdown: %v", o.id, o.err)
		case o.err != nil:
		case o.code != 200:
			t.Errorf("%s answered %d during shutdown", o.id, o.code)
		default:
			answered++
			if countKey(recs, o.id) != 1 {
				t.Errorf("%s was answered 200 but is in kafka %d times", o.id, countKey(recs, o.id))
			}
		}
	}
	if answered == 0 {
		t.Fatal("no delivery was in flight when the shutdown began; the test proves nothing")
	}
	t.Logf("%d of %d deliveries answered 200 before the listener closed", answered, n)
}
