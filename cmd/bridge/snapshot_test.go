package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testkit"
)

// TestCrashRecoversFromThePeriodicSnapshot: with dedup.snapshot, the memory store is saved
// every snapshot_every while the bridge runs, not only at a graceful stop, so that a crash
// leaves only the records since the last save to read back from Kafka. `bridge serve` runs as
// a process of its own; once a periodic save holds an accepted id, it is killed with SIGKILL
// (no graceful save can run), and the next start rebuilds from that snapshot and still
// answers the id "duplicate".
func TestCrashRecoversFromThePeriodicSnapshot(t *testing.T) {
	dir := t.TempDir()
	snapshot, path := filepath.Join(dir, "dedup.snapshot"), filepath.Join(dir, "bridge.yaml")
	cfg := fmt.Sprintf(`
http: {listen: "127.0.0.1:0", drain_period: 0s}
kafka: {brokers: [%q], topic_prefix: %q, partitions: 1}
sources:
  - {name: codivupload, provider: codivupload, secrets: [%q]}
dedup: {snapshot: %q, snapshot_every: 200ms}
log: {level: debug}
`, strings.Join(kafkatest.Brokers(t), ","), kafkatest.Prefix(t), devSecret, snapshot)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"event":"post.failed","id":"evt_snap_%d","timestamp":%q,"data":%s}`,
		time.Now().UnixNano(), time.Now().UTC().Format(time.RFC3339), failedData)
	h := http.Header{}
	for k, v := range testkit.CodivHeaders(devSecret, "post.failed", []byte(body)) {
		h.Set(k, v)
	}

	first := startChild(t, nil, "serve", "--config", path)
	base := listeningOn(t, first.Out)
	waitReadyz(t, base)
	if code, answer := post(t, base+"/webhooks/codivupload", h, body); code != 200 || !strings.Contains(answer, `"accepted"`) {
		t.Fatalf("the delivery was answered %d %s", code, answer)
	}
	// The positive signal: a save while running that holds the accepted id.
	saved := regexp.MustCompile(`msg="dedup snapshot written" path=\S+ entries=1 `)
	testkit.Eventually(t, time.Minute, "a periodic snapshot holding the accepted id", func() bool {
		return saved.MatchString(first.Out.String())
	}, first.Out.String)
	first.Kill()

	second := startChild(t, nil, "serve", "--config", path)
	base = listeningOn(t, second.Out)
	waitReadyz(t, base)
	if !regexp.MustCompile(`msg="dedup rebuilt" ids=1 from_snapshot=1 `).MatchString(second.Out.String()) {
		t.Fatalf("after the SIGKILL, the rebuild did not start from the periodic snapshot:\n%s", second.Out.String())
	}
	if code, answer := post(t, base+"/webhooks/codivupload", h, body); code != 200 || !strings.Contains(answer, `"duplicate"`) {
		t.Fatalf("the delivery accepted before the crash, sent again: %d %s; want duplicate", code, answer)
	}
}
