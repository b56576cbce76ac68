package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/spool"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
	"github.com/socialbridge/bridge/internal/testenv"
	"github.com/socialbridge/bridge/internal/testkit"
)

// TestSourceWindows: the store is given the window of each source whose window is not
// dedup.window (its own, or its sender's retry horizon when longer), and the start log warns
// of a window shorter than the sender's horizon, tells of one the horizon lengthened, and
// warns of a max_age that reaches past the window less the clock skew.
func TestSourceWindows(t *testing.T) {
	cfg := config.Default()
	cfg.Dedup.Window = config.Duration(time.Hour)
	hours := func(n int) config.SourceDedup {
		return config.SourceDedup{Window: config.Duration(time.Duration(n) * time.Hour)}
	}
	maxAge := config.Duration(2 * time.Hour)
	cfg.Sources = []config.Source{
		{Name: "plain", Provider: "hmac"},                                  // no horizon: dedup.window
		{Name: "own", Provider: "hmac", Dedup: hours(2)},                   // its own
		{Name: "meta", Provider: "meta"},                                   // 36 h horizon
		{Name: "short", Provider: "codivupload", Dedup: hours(2)},          // under its 24 h horizon
		{Name: "edge", Provider: "ayrshare", Dedup: hours(1)},              // exactly its 1 h horizon
		{Name: "even", Provider: "ayrshare"},                               // its 1 h horizon is dedup.window
		{Name: "late", Provider: "hmac", Dedup: hours(2), MaxAge: &maxAge}, // max_age past window less skew
	}
	var logs testkit.LogBuffer
	got := sourceWindows(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	want := map[string]time.Duration{"own": 2 * time.Hour, "meta": 36 * time.Hour, "short": 2 * time.Hour, "late": 2 * time.Hour}
	if !maps.Equal(got, want) {
		t.Errorf("windows = %v, want %v", got, want)
	}
	var warned, told, late []string
	for line := range strings.Lines(logs.String()) {
		_, name, _ := strings.Cut(line, "source=")
		name, _, _ = strings.Cut(name, " ")
		switch {
		case strings.Contains(line, "shorter than its sender's retry horizon"):
			warned = append(warned, name)
		case strings.Contains(line, "is its sender's retry horizon"):
			told = append(told, name)
		case strings.Contains(line, "leaves less than the clock skew"):
			late = append(late, name)
		}
	}
	// meta's max_age is its default, exactly its window less the clock skew: no warning.
	if strings.Join(warned, ",") != "short" || strings.Join(told, ",") != "meta" || strings.Join(late, ",") != "late" {
		t.Errorf("warned of %q, told of %q, warned of max_age for %q; want [short], [meta], [late]:\n%s", warned, told, late, &logs)
	}
}

// TestMemoryBoundIsLogged: the start log of a memory store gives the memory its max_ids
// take, in MiB, as docs/configuration.md sizes it (dedup.BytesPerID each).
func TestMemoryBoundIsLogged(t *testing.T) {
	cfg := config.Default()
	cfg.Dedup.MaxIDs = 3 << 20
	var logs testkit.LogBuffer
	newDedup(cfg, slog.New(slog.NewTextHandler(&logs, nil)), false)
	want := "memory_bound_mib=" + strconv.Itoa(3*dedup.BytesPerID)
	if !strings.Contains(logs.String(), want) {
		t.Errorf("the start log does not say %s:\n%s", want, &logs)
	}
}

// TestSpoolDirWithoutASpoolingSource: spool.dir set while no source spools opens no spool and
// says why in the start log; with neither, nothing is said.
func TestSpoolDirWithoutASpoolingSource(t *testing.T) {
	for _, dir := range []string{t.TempDir(), ""} {
		cfg := config.Default()
		cfg.Sources = []config.Source{{Name: "plain", Provider: "hmac"}}
		cfg.Spool.Dir = dir
		var logs testkit.LogBuffer
		s := &Service{cfg: cfg, log: slog.New(slog.NewTextHandler(&logs, nil))}
		if err := s.openSpool(); err != nil || s.spool != nil {
			t.Fatalf("dir %q: openSpool = %v, spool %v; want none opened", dir, err, s.spool)
		}
		if said := strings.Contains(logs.String(), "no source spools"); said != (dir != "") {
			t.Errorf("dir %q: said %v: %s", dir, said, &logs)
		}
	}
}

// TestRemarkOfAnIDRedisKnows: an id read back from the spool that Redis already holds as seen
// (another replica, or this one before its restart, marked it) needs nothing more: remarkOne
// returns at once, without retrying as if Redis could not be told.
func TestRemarkOfAnIDRedisKnows(t *testing.T) {
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	r := dedup.NewRedis(dedup.RedisOptions{Addr: testenv.Require(t, testenv.Redis),
		KeyPrefix: "test:remark:" + hex.EncodeToString(raw[:]) + ":", Window: time.Hour, Lease: 10 * time.Second})
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	at := time.Now()
	_, done, err := r.Reserve(t.Context(), "acme", "e1", at)
	if err != nil {
		t.Fatal(err)
	}
	done(true)
	var logs testkit.LogBuffer
	s := &Service{cfg: config.Default(), log: slog.New(slog.NewTextHandler(&logs, nil)), dedup: &dedupState{redis: r}}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s.remarkOne(ctx, spool.Mark{Source: "acme", Key: "e1", At: at}, 10*time.Second)
	if ctx.Err() != nil || strings.Contains(logs.String(), "cannot be told") {
		t.Fatalf("remarkOne of an id Redis holds as seen retried until its deadline: %s", &logs)
	}
}

// TestSnapshotsWhileServing: with dedup.snapshot, the memory store is saved every
// snapshot_every while the bridge serves, not only at a graceful stop (a crash loses at most
// that much of the window to a rebuild from Kafka); a save that fails is warned of, and one
// that succeeds is not.
func TestSnapshotsWhileServing(t *testing.T) {
	for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), "missing")} {
		cfg := config.Default()
		cfg.Dedup.Snapshot = filepath.Join(dir, "dedup.snapshot")
		cfg.Dedup.SnapshotEvery = config.Duration(10 * time.Millisecond)
		var logs testkit.LogBuffer
		d := newDedup(cfg, slog.New(slog.NewTextHandler(&logs, nil)), true)
		d.rebuilding.Store(false) // as start does once the rebuild is done
		d.mem.Open()
		d.mem.MarkSeen("acme", "e1", time.Now())
		ctx, cancel := context.WithCancel(t.Context())
		ended := make(chan struct{})
		go func() { d.snapshots(ctx); close(ended) }()
		if !strings.HasSuffix(dir, "missing") {
			testkit.Eventually(t, 30*time.Second, "a snapshot written while serving", func() bool {
				st, err := os.Stat(cfg.Dedup.Snapshot)
				return err == nil && st.Size() > 0
			})
			if strings.Contains(logs.String(), "dedup snapshot failed") {
				t.Errorf("a snapshot that was written was warned of:\n%s", &logs)
			}
		} else {
			testkit.Eventually(t, 30*time.Second, "a failed snapshot warned of", func() bool {
				return strings.Contains(logs.String(), "dedup snapshot failed")
			}, logs.String)
		}
		cancel()
		<-ended
	}
}

// TestTopicsEnsuredAfterAFailure: a spooling bridge that started without its topics tries
// again after each failure, and opens the drainer's gate once the topics are there as
// configured. The first attempt fails on a topic below the settings that
// kafka.require_durable refuses; the test then raises the setting.
func TestTopicsEnsuredAfterAFailure(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	cfg := config.Default()
	cfg.Kafka.Brokers, cfg.Kafka.TopicPrefix, cfg.Kafka.Partitions = brokers, kafkatest.Prefix(t), 1
	cfg.Kafka.ReplicationFactor, cfg.Kafka.RequireDurable, cfg.Kafka.MaxMessageBytes = 1, true, 1<<20
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	small, topic := "1024", event.Topic(cfg.Kafka.TopicPrefix, event.PostFailed)
	kafkatest.CreateTopicWith(t, adm, topic, 1, map[string]*string{"max.message.bytes": &small})
	var logs testkit.LogBuffer
	s := &Service{cfg: cfg, log: slog.New(slog.NewTextHandler(&logs, nil)), cl: cl, ensureLater: true, topicsReady: make(chan struct{})}
	ctx, cancel := context.WithCancel(t.Context())
	defer func() { cancel(); s.watcher.Wait() }()
	s.ensureTopics(ctx)
	testkit.Eventually(t, time.Minute, "a first attempt failed", func() bool {
		return strings.Contains(logs.String(), "the topics cannot be created yet; retrying")
	}, logs.String)
	big := strconv.Itoa(int(cfg.Kafka.MessageBytes()))
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: &big}}, topic)
	if err == nil {
		err = rs[0].Err
	}
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.topicsReady:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the topics were not ensured once they could be:\n%s", &logs)
	}
}
