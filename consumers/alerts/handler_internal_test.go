package alerts

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/event"
)

// TestDecisionsThatOweAMessageAreLoggedAtDebug: at debug level, each decision that owes
// Slack a message (an alert, a resolution) is logged with its event id and origin; the
// suppressed and ignored ones, the bulk of a busy key, are not.
func TestDecisionsThatOweAMessageAreLoggedAtDebug(t *testing.T) {
	var log bytes.Buffer
	reg := prometheus.NewRegistry()
	h := newHandler(config.Default(), 1, nil, consumers.NewMetrics(reg, "g"), newAlertsMetrics(reg, "g", &parts{}), &parts{},
		slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	h.parts.add(map[int32]*partition{0: newPartition(0)})
	t0 := time.Date(2026, 5, 8, 12, 0, 0, 0, time.UTC)
	var rs []*kgo.Record
	for i, n := range []notice{
		{Type: event.PostTokenExpired, ID: "evt_alerted", ReceivedAt: t0},
		{Type: event.PostTokenExpired, ID: "evt_suppressed", ReceivedAt: t0.Add(time.Minute)},
		{Type: event.PostPublished, ID: "evt_resolved", ReceivedAt: t0.Add(2 * time.Minute)},
		{Type: event.PostPublished, ID: "evt_ignored", ReceivedAt: t0.Add(3 * time.Minute)},
	} {
		n.Key = Key{Source: "acme", Profile: "brand", Platform: "x"}
		n.Origin = origin{Topic: "t.in", Partition: 1, Offset: int64(40 + i)}
		rs = append(rs, &kgo.Record{Topic: h.keyed, Key: n.Key.bytes(), Value: n.appendTo(nil), Offset: int64(i)})
	}
	fs := kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: h.keyed, Partitions: []kgo.FetchPartition{{Partition: 0, Records: rs}}}}}}
	if err := h.handle(context.Background(), &recordingBatch{}, fs); err != nil {
		t.Fatal(err)
	}
	var decided []string
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, "msg=decided") {
			decided = append(decided, line)
		}
	}
	if len(decided) != 2 || !strings.Contains(decided[0], "outcome=alerted event_id=evt_alerted") || !strings.Contains(decided[0], "origin_offset=40") ||
		!strings.Contains(decided[1], "outcome=resolved event_id=evt_resolved") || !strings.Contains(decided[1], "origin_offset=42") {
		t.Errorf("decisions logged:\n%s\nwant the alert's and the resolution's, with their origin", strings.Join(decided, "\n"))
	}
}
