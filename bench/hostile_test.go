package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/service"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestHostileBodiesAreQuarantined: the hostile phase's bodies are authentic and cannot be
// normalized, so the bridge quarantines them; none crashes the parser.
func TestHostileBodiesAreQuarantined(t *testing.T) {
	p, err := newRequestPath(benchSecret)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range hostileBodies() {
		d := request("hostile", event.PostPublished, body, sign(benchSecret, body))
		var ev event.Event
		if err := p.event(requestHeader(&d), body, time.Now(), &ev); failure.KindOf(err) != failure.Unnormalizable {
			t.Errorf("%.40s…: %v, want a reason to quarantine", body, err)
		}
	}
}

// TestAttack runs a small attack against an in-process bridge with a short read timeout:
// its connections are held and opened again once closed, its JSON is quarantined, and a
// valid stream beside it is answered 200 throughout.
func TestAttack(t *testing.T) {
	cfg := config.Default()
	cfg.HTTP.Listen, cfg.HTTP.ReadTimeout = "127.0.0.1:0", config.Duration(time.Second)
	cfg.HTTP.DrainPeriod = 0
	cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix, cfg.Kafka.Partitions = kafkatest.Brokers(t), kafkatest.Prefix(t), 1
	cfg.Sources = []config.Source{
		{Name: sourceName, Provider: sourceName, Secrets: []string{string(benchSecret)}},
		{Name: hostileSource, Provider: sourceName, Secrets: []string{string(benchSecret)}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc, err := service.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Listen(); err != nil {
		t.Fatal(err)
	}
	defer svc.Shutdown(context.Background())

	a := &attack{idle: 40, slow: 10, jsonRate: 10, secret: benchSecret}
	actx, stop := context.WithCancel(ctx)
	wait := a.start(actx, svc.Addr())
	if held := a.held.Load(); held != 50 {
		t.Fatalf("the attack holds %d connections, want 50", held)
	}
	ds := generate(genSpec{runID: "attack", phase: "v", count: 200, secret: benchSecret, seed: 4})
	run := drive(ctx, schedule{conns: 4, duration: 3 * time.Second, rate: 100, grace: 10 * time.Second}, len(ds), webhooks(svc.Addr(), ds))
	stop()
	wait()
	wantAll200(t, ds, run) // 200 at 100/s: all sent within the 3 s
	if a.dials.Load() <= 50 {
		t.Errorf("%d dials: the connections the bridge closed were not opened again", a.dials.Load())
	}
	if len(a.answers) != 1 || a.answers["202"] == 0 {
		t.Errorf("hostile JSON answered %v, want only 202 quarantined", a.answers)
	}
}
