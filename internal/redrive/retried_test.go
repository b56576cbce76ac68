package redrive

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers/analytics"
	"github.com/socialbridge/bridge/consumers/retries"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestRedrivenRecordIsRetried runs the retries group on a redriven record: it calls the
// action again, at once, with Idempotency-Key set to the event id. The analytics group
// does not read the topic the record went to, so it counts nothing new.
func TestRedrivenRecordIsRetried(t *testing.T) {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	seedDLQ(t, brokers, prefix, []string{"evt_again"}, []string{"rate_limited"})
	if res, _, err := newTestDLQ(t, brokers, prefix).Redrive(context.Background(), Filter{IDs: []string{"evt_again"}}, false); err != nil || res.Redriven != 1 {
		t.Fatalf("redrive: %+v, %v", res, err)
	}

	keys := make(chan string, 4)
	var once sync.Once
	action := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { keys <- r.Header.Get("Idempotency-Key") })
		w.WriteHeader(http.StatusOK)
	}))
	defer action.Close()
	cfg := testConfig(t, brokers, prefix)
	rc := &cfg.Consumers.Retries
	rc.Group, rc.Delays, rc.Member.Listen = prefix+"retries", []config.Duration{config.Duration(time.Hour)}, "127.0.0.1:0"
	rc.Action.URL = action.URL + "/v1/posts/{post_id}/retry"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- retries.Run(ctx, cfg, discardLog()) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("the retries group stopped with %v", err)
		}
	}()
	select {
	case key := <-keys:
		if key != "evt_again" {
			t.Errorf("the action was called with Idempotency-Key %q, want evt_again", key)
		}
	case err := <-done:
		t.Fatalf("the retries group stopped: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the retries group did not call the action for the redriven record within 2 minutes")
	}

	retry1 := event.RetryTopic(prefix, 1)
	for _, typ := range analytics.Types {
		if event.Topic(prefix, typ) == retry1 {
			t.Errorf("analytics reads %s, where redriven records go: it would count them again", retry1)
		}
	}
	if !slices.Contains(analytics.Types, event.PostFailed) {
		t.Error("analytics no longer reads post.failed: this test's check of its topics is out of date")
	}
}
