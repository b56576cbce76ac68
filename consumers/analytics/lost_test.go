package analytics

import (
	"context"
	"log/slog"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/consumers/analytics/internal/dbtest"
)

// TestPartitionsLostWhileTheWriterIsBehind, on the real broker: the writer holds its first
// batch open while every other record waits in polls; then the member is removed from the
// group (as a session timeout or a fence does), loses all its partitions, joins again, is
// given them back and reads them again from the database's offsets, which the held batch
// has not moved yet. The polls of both assignments wait together when the writer goes on;
// every record must count once.
func TestPartitionsLostWhileTheWriterIsBehind(t *testing.T) {
	k := newTestKafka(t)
	events := knownEvents(600, 12, 8)
	k.produce(t, events, 3)
	ends := k.ends(t)
	total := 0
	for _, end := range ends {
		total += int(end)
	}
	database := dbtest.New(t, "sqlite")
	cfg := k.config(database)
	const instance = "analytics-lost-test"
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, cfg, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		Options{ClientOptions: []kgo.Opt{kgo.InstanceID(instance), kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond)}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s.pollMax = 10 // many small polls, all waiting behind the first batch
	held, release := make(chan struct{}), make(chan struct{})
	batches := 0
	s.beforeCommit = func() error {
		if batches++; batches == 1 {
			close(held)
			<-release
		}
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})

	<-held
	waitPending(t, s, total) // the first batch in hand, the rest of the first assignment's polls queued
	s.owned.mu.Lock()
	firstEpochs := s.owned.last
	s.owned.mu.Unlock()
	adm := kadm.NewClient(k.client)
	lctx, lcancel := context.WithTimeout(t.Context(), time.Minute)
	defer lcancel()
	if resp, err := adm.LeaveGroup(lctx, kadm.LeaveGroup(cfg.Consumers.Analytics.Group).InstanceIDs(instance)); err != nil || resp.Error() != nil {
		t.Fatalf("removing the member from the group: %v %v", err, resp.Error())
	}
	waitReassigned(t, s, len(ends), firstEpochs)
	waitPending(t, s, 2*total) // the second assignment's polls queued after the first's
	close(release)

	st := openStore(t, database)
	waitCounted(t, st, ends)
	checkStore(t, st, expect(events))
}

// waitPending waits until n records or more wait to be written.
func waitPending(t *testing.T, s *Service, n int) {
	t.Helper()
	var got float64
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var m dto.Metric
		if err := s.metrics.pending.Write(&m); err != nil {
			t.Fatal(err)
		}
		if got = m.GetGauge().GetValue(); int(got) >= n {
			return
		}
	}
	t.Fatalf("%v records pending after 2 minutes, want %d", got, n)
}

// waitReassigned waits until s holds partitions partitions, each under an assignment begun
// after epoch after.
func waitReassigned(t *testing.T, s *Service, partitions int, after uint64) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		s.owned.mu.Lock()
		n := 0
		for _, r := range s.owned.held {
			if r.epoch > after {
				n++
			}
		}
		s.owned.mu.Unlock()
		if n == partitions {
			return
		}
	}
	t.Fatalf("the partitions were not given back within 2 minutes")
}
