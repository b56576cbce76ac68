package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/service"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// TestLoadAndVerify runs the benchmark's generator, both loops and the verifier against an
// in-process bridge on the test broker, then shows that the verifier catches an id answered
// 200 that Kafka lacks and an id Kafka holds twice.
func TestLoadAndVerify(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := config.Default()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix, cfg.Kafka.Partitions = brokers, kafkatest.Prefix(t), 2
	cfg.Sources = []config.Source{{Name: sourceName, Provider: sourceName, Secrets: []string{string(benchSecret)}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
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
	if err := svc.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			if err := svc.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		}
	}
	defer stop()

	l := ledger{}
	closed := generate(genSpec{runID: "test", phase: "c", count: 300, dupShare: 0.2, dupLag: 8, secret: benchSecret, seed: 1})
	run := drive(ctx, schedule{conns: 4, duration: time.Minute}, len(closed), webhooks(svc.Addr(), closed))
	wantAll200(t, closed, run)
	l.add(closed, run)

	open := generate(genSpec{runID: "test", phase: "o", count: 1000, dupShare: 0.1, dupLag: 8, secret: benchSecret, seed: 2})
	run = drive(ctx, schedule{conns: 8, duration: 400 * time.Millisecond, rate: 500, grace: 30 * time.Second}, len(open), webhooks(svc.Addr(), open))
	if sent := count(run, func(r result) bool { return r.outcome != notSent }); sent != 200 {
		t.Errorf("open loop at 500/s for 0.4s sent %d, want 200", sent)
	}
	if run.elapsed < 350*time.Millisecond {
		t.Errorf("open loop at 500/s sent 200 in %v: not paced", run.elapsed)
	}
	wantAll200(t, open[:200], &loadRun{results: run.results[:200]})
	l.add(open, run)
	stop() // flushes what the bridge produced

	st, err := readTopics(ctx, brokers, cfg.Kafka.TopicPrefix)
	if err != nil {
		t.Fatal(err)
	}
	v := verify(l, st, cfg.Kafka.TopicPrefix)
	if !v.Passed || v.IDsAnswered != len(l) || v.RecordsRead != len(l) {
		t.Fatalf("verification of a correct run: %+v (ids sent %d)", v, len(l))
	}

	// An id answered 200 that Kafka lacks, and an id Kafka holds twice.
	l["evt_never_produced"] = &answers{typ: event.PostPublished, accepted: 1}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	again := &kgo.Record{Topic: event.Topic(cfg.Kafka.TopicPrefix, closed[0].typ), Key: []byte(closed[0].id)}
	if err := cl.ProduceSync(ctx, again).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if st, err = readTopics(ctx, brokers, cfg.Kafka.TopicPrefix); err != nil {
		t.Fatal(err)
	}
	v = verify(l, st, cfg.Kafka.TopicPrefix)
	want := []string{
		"evt_never_produced: answered 200 (1 accepted, 0 duplicate) but not in Kafka",
		closed[0].id + ": in Kafka 2 times",
	}
	if v.Passed || v.Mismatches != 2 || v.Examples[0] != want[0] || !strings.HasPrefix(v.Examples[1], want[1]) {
		t.Fatalf("verification of a broken run: %+v, want the mismatches %q", v, want)
	}
}

func wantAll200(t *testing.T, ds []delivery, run *loadRun) {
	t.Helper()
	dups := 0
	for i, r := range run.results {
		if r.outcome != accepted && r.outcome != duplicate {
			t.Fatalf("delivery %d (%s): outcome %d, code %d", i, ds[i].id, r.outcome, r.code)
		}
		if ds[i].dup {
			dups++
		}
	}
	if got := count(run, func(r result) bool { return r.outcome == duplicate }); got != dups {
		t.Errorf("%d answered duplicate, %d redeliveries sent", got, dups)
	}
}

func count(run *loadRun, f func(result) bool) int {
	n := 0
	for _, r := range run.results {
		if f(r) {
			n++
		}
	}
	return n
}

// TestGenerate checks the load's shape: body sizes, valid signatures, the type mix, the
// share of redeliveries and how far back they reach.
func TestGenerate(t *testing.T) {
	p, err := newRequestPath(benchSecret)
	if err != nil {
		t.Fatal(err)
	}
	ds := generate(genSpec{runID: "g", phase: "p", count: 4000, dupShare: 0.1, dupLag: 64, secret: benchSecret, seed: 3})
	types, dups, first := map[string]int{}, 0, map[string]int{}
	for i, d := range ds {
		if n := len(d.body); n < 400 || n > 800 {
			t.Fatalf("%s: body of %d bytes, want 400-800: %s", d.id, n, d.body)
		}
		var ev event.Event
		if err := p.event(requestHeader(&d), d.body, time.Now(), &ev); err != nil || ev.ID != d.id || ev.Type != d.typ {
			t.Fatalf("%s: %v (%s %s): %s", d.id, err, ev.ID, ev.Type, d.body)
		}
		types[d.typ]++
		if at, seen := first[d.id]; seen {
			dups++
			if !d.dup || i-at < 64 {
				t.Fatalf("%s at %d redelivers the one at %d (dup %t)", d.id, i, at, d.dup)
			}
		} else {
			first[d.id] = i
		}
	}
	if dups < 300 || dups > 500 {
		t.Errorf("%d redeliveries in 4000, want about 400", dups)
	}
	if types[event.PostPublished] < 2500 || types[event.PostTokenExpired] < 100 || len(types) != 4 {
		t.Errorf("type mix %v", types)
	}
}

// TestHTTPConn checks the load generator's HTTP client on answers framed either way, and
// that it dials again after a server's Connection: close.
func TestHTTPConn(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch string(body) {
		case "chunked":
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"status":`)
			w.(http.Flusher).Flush()
			io.WriteString(w, `"unavailable"}`)
		case "close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, `{"status":"accepted","event_id":"x"}`)
		default:
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.Write(body)
		}
	}))
	defer srv.Close()
	c := newHTTPConn(strings.TrimPrefix(srv.URL, "http://"), 5*time.Second)
	defer c.close()
	for _, tc := range []struct{ send, want string }{
		{"chunked", `503 {"status":"unavailable"}`},
		{"plain", "200 plain"},
		{"close", `200 {"status":"accepted","event_id":"x"}`},
		{"after close", "200 after close"},
	} {
		code, body, err := c.do(wire("/", nil, []byte(tc.send)))
		if got := fmt.Sprintf("%d %s", code, body); err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.send, got, err, tc.want)
		}
	}
}

func TestParseMicro(t *testing.T) {
	out := `goos: linux
BenchmarkVerify-2           	 1000000	      1503 ns/op	 399.25 MB/s	       0 B/op	       0 allocs/op
BenchmarkDedup/new-2        	 3000000	       412.5 ns/op	     120 B/op	       2 allocs/op
PASS`
	ms, err := parseMicro(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []Micro{{Name: "Verify", NsPerOp: 1503, MBPerSec: 399.25}, {Name: "Dedup/new", NsPerOp: 412.5, BytesPerOp: 120, AllocsPerOp: 2}}
	if fmt.Sprint(ms) != fmt.Sprint(want) {
		t.Errorf("got %+v, want %+v", ms, want)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:39092": true, "localhost:9092": true, "[::1]:9092": true, "127.3.4.5:1": true,
		"10.0.0.1:9092": false, "192.168.1.2:9092": false, "kafka:9092": false, "8.8.8.8:9092": false,
	} {
		if err := loopbackOnly(addr); (err == nil) != ok {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

func TestParseVariants(t *testing.T) {
	vs, err := parseVariants("l0=linger:0s; l5ms=linger:5ms,partitions:6")
	if err != nil {
		t.Fatal(err)
	}
	k, err := vs[1].apply(config.Default().Kafka)
	if len(vs) != 2 || vs[0].name != "l0" || err != nil || k.Linger.D() != 5*time.Millisecond || k.Partitions != 6 {
		t.Fatalf("variants %+v, the second applied: linger %v, partitions %d, %v", vs, k.Linger, k.Partitions, err)
	}
	if vs, err := parseVariants(""); err != nil || len(vs) != 1 || vs[0].name != "defaults" {
		t.Errorf("no variants: %+v, %v; want the defaults alone", vs, err)
	}
	for _, bad := range []string{"a b=linger:1ms", "x=linger", "x=linger:soon", "x=acks:0", "x=partitions:0"} {
		if _, err := parseVariants(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
