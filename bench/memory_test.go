package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
)

// Bounds of TestMemoryWhileBrokerPaused: bodies that fit Kafka's default 1 MB record with
// their envelope, sent from pausedConns connections until the bridge has refused
// refusalsWanted of them past kafka.max_buffered_bytes (or pausedAtMost has passed), and the
// bridge's peak RSS they must stay under (see docs/performance.md).
const (
	bigBody        = 960 << 10
	pausedConns    = 48
	refusalsWanted = 500
	pausedAtMost   = 3 * time.Minute
	memoryBoundB   = 400 << 20
)

// refusal is the answer past kafka.max_buffered_bytes.
const refusal = "503 too many records waiting for kafka"

// TestMemoryWhileBrokerPaused freezes the broker (SIGSTOP) under a bridge process with
// the default configuration and sends it large deliveries without pause. Kafka acknowledges
// nothing, so records pile up until kafka.max_buffered_bytes; past it the bridge answers 503
// at once, and its peak RSS stays under memoryBoundB. The load goes on until the bound has
// refused refusalsWanted deliveries, however long that takes on a busy machine, and stops
// early once the RSS is over the bound.
func TestMemoryWhileBrokerPaused(t *testing.T) {
	broker := kafkatest.StartBroker(t)
	k := config.Default().Kafka
	k.Brokers, k.TopicPrefix, k.Partitions = []string{broker.Addr()}, kafkatest.Prefix(t), 1
	k.ProduceTimeout = config.Duration(time.Second) // a round of waiting requests a second
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b, err := startBridge(ctx, testkit.BuildBridge(t), t.TempDir(), "paused", k, benchSecret, false, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.stop()
	big := newBigDeliveries(t)
	if code, body, err := newHTTPConn(b.addr, time.Minute).do(big.next()); err != nil || code != 200 {
		t.Fatalf("a %d-byte delivery before the pause: %d %s %v", bigBody, code, body, err)
	}

	broker.Pause()
	answers := flood(b, big)
	broker.Resume()
	rss, err := peakRSS(b.pid())
	if err != nil {
		t.Fatal(err)
	}
	answers.Range(func(k, v any) bool {
		t.Logf("answered %s: %d", k, v.(*atomic.Int64).Load())
		return true
	})
	t.Logf("bridge peak RSS %.0f MiB (bound %d MiB), kafka.max_buffered_bytes %d MiB", float64(rss)/(1<<20), memoryBoundB>>20, k.MaxBufferedBytes>>20)
	if n, _ := answers.Load(refusal); n == nil || n.(*atomic.Int64).Load() < refusalsWanted {
		t.Errorf("fewer than %d deliveries refused for kafka.max_buffered_bytes: the bound did not hold", refusalsWanted)
	}
	if rss > memoryBoundB {
		t.Errorf("peak RSS %d MiB over the bound of %d MiB", rss>>20, memoryBoundB>>20)
	}
}

// flood sends big deliveries to b from pausedConns connections until refusalsWanted are
// refused past the buffer bound, b's RSS is over memoryBoundB, or pausedAtMost has passed,
// and returns the count of each answer ("code reason" → *atomic.Int64).
func flood(b *bridgeProc, big *bigDeliveries) *sync.Map {
	var answers sync.Map
	refused := new(atomic.Int64)
	answers.Store(refusal, refused)
	var over atomic.Bool
	end := time.Now().Add(pausedAtMost)
	more := func() bool {
		if rss, err := peakRSS(b.pid()); err == nil && rss > memoryBoundB {
			over.Store(true)
		}
		return refused.Load() < refusalsWanted && !over.Load() && time.Now().Before(end)
	}
	var wg sync.WaitGroup
	for range pausedConns {
		wg.Go(func() {
			c := newHTTPConn(b.addr, time.Minute)
			defer c.close()
			for more() {
				code, body, err := c.do(big.next())
				key := strconv.Itoa(code) + " " + string(reason(body))
				if err != nil {
					key = "error " + err.Error()
				}
				n, _ := answers.LoadOrStore(key, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
			}
		})
	}
	wg.Wait()
	return &answers
}

// bigDeliveries makes signed deliveries of bigBody bytes with fresh ids, from one body.
type bigDeliveries struct {
	body []byte // the body, whose id is idAt..idAt+idLen
	n    atomic.Int64
}

const idAt, idLen = len(`{"event":"post.published","id":"`), 24

// newBigDeliveries pads a post.published body with a member the preset ignores, so that the
// record is about the body's size (a typed field would be in it twice: typed and raw).
func newBigDeliveries(t *testing.T) *bigDeliveries {
	head := `{"event":"post.published","id":"evt_` + strings.Repeat("0", idLen-4) +
		`","data":{"post_id":"post_1","platform":"x","profile_name":"main"},"padding":"`
	body := append([]byte(head), filler(rand.New(rand.NewPCG(1, 2)), "padding", bigBody-len(head)-2)...)
	body = append(body, `"}`...)
	if string(body[idAt:idAt+4]) != "evt_" || len(body) != bigBody {
		t.Fatalf("unexpected big body: %d bytes, %q", len(body), body[:64])
	}
	return &bigDeliveries{body: body}
}

// next returns the wire bytes of a delivery with a new id.
func (d *bigDeliveries) next() []byte {
	body := bytes.Clone(d.body)
	id := strconv.FormatInt(d.n.Add(1), 10)
	copy(body[idAt+idLen-len(id):idAt+idLen], id)
	return request(string(body[idAt:idAt+idLen]), event.PostPublished, body, sign(benchSecret, body)).wire
}

// reason returns the value of an answer's "error" member.
func reason(body []byte) []byte {
	const member = `"error":"`
	i := bytes.Index(body, []byte(member))
	if i < 0 {
		return nil
	}
	v := body[i+len(member):]
	if j := bytes.IndexByte(v, '"'); j >= 0 {
		return v[:j]
	}
	return nil
}
