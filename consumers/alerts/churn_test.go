package alerts_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers/alerts"
	"github.com/socialbridge/bridge/consumers/internal/grouptest"
	"github.com/socialbridge/bridge/event"
	"github.com/socialbridge/bridge/internal/kafkatest"
)

// Churn: profiles come in waves, ten minutes of received_at apart; each profile's token
// expires (an alert), it publishes two minutes later (a resolution), and it is never seen
// again. With forget_after one hour, a key is forgettable 70 minutes after its expiry
// (its cool-down ends 10 minutes after it), so after wave w the members hold at most the
// profiles of waves w-7..w.
const (
	churnWaveGap     = 10 * time.Minute
	churnForgetAfter = time.Hour
	churnHeldWaves   = 8
)

// TestStateStaysBoundedUnderChurn runs churning profiles through the group on the real
// broker and checks that its state stays bounded: the keys the member holds, and the keys
// live in the state topic (what a load keeps), never exceed the last 8 waves' profiles,
// however many came before. It reports, every tenth of the run, those figures and what an
// assignment's load reads and takes.
//
// The short form (make test) runs 1,200 profiles. The long one runs 100,000 and, in the
// same run, the baseline of the same churn with forgetting off (the behaviour before
// tombstones): make churn-alerts (BRIDGE_ALERTS_CHURN=100000).
//
// The test creates the state topic compacting within seconds (segment.ms and
// delete.retention.ms of 5 s) so that what a load reads shows compaction's effect within
// the run; the group creates it with an hour of each.
func TestStateStaysBoundedUnderChurn(t *testing.T) {
	profiles := 1200
	if v := os.Getenv("BRIDGE_ALERTS_CHURN"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			t.Fatalf("BRIDGE_ALERTS_CHURN=%q: want a number of profiles, at least 100", v)
		}
		profiles = n
	}
	waves := max(12, min(100, profiles/1000))
	perWave := profiles / waves
	got := churn(t, "forget_after 1h", waves, perWave, churnForgetAfter)
	last := got[len(got)-1]
	if last.keys > churnHeldWaves*perWave || last.live > churnHeldWaves*perWave {
		t.Errorf("after %d profiles: %d keys held, %d live in the state topic; want at most %d (the last %d waves)",
			last.profiles, last.keys, last.live, churnHeldWaves*perWave, churnHeldWaves)
	}
	if os.Getenv("BRIDGE_ALERTS_CHURN") != "" {
		base := churn(t, "never forgotten (baseline)", waves, perWave, 1_000_000*time.Hour)
		report(t, got, base)
	}
}

// churnPoint is the state after some waves.
type churnPoint struct {
	profiles, keys, live, read int
	load                       time.Duration
}

// churn runs waves of perWave profiles through a group with forget, and returns the state
// every tenth of the run; the last point is after a restart of the member: its own load.
func churn(t *testing.T, name string, waves, perWave int, forget time.Duration) []churnPoint {
	brokers, prefix := kafkatest.Brokers(t), kafkatest.Prefix(t)
	s := newSlack(t, nil)
	createState(t, brokers, prefix)
	yaml := strings.Replace(configYAML(brokers, prefix, s.srv.URL), "slack_rate: 50", "slack_rate: 1000", 1) +
		fmt.Sprintf("    cooldown: 10m\n    forget_after: %s\n", forget)
	yaml = strings.Replace(yaml, "    cooldown: 1h\n", "", 1)
	cfg := grouptest.Parse(t, yaml)
	reg, stop := quietGroup(t, cfg)
	t0 := time.Now().Add(-time.Duration(waves+10) * churnWaveGap).UTC().Truncate(time.Minute)
	var out []churnPoint
	decided := 0
	for w := 0; w <= waves; w++ {
		var evs []*event.Event
		if w < waves {
			for i := range perWave {
				evs = append(evs, at(expired(fmt.Sprintf("e%d_%d", w, i), fmt.Sprintf("w%d_%d", w, i)), t0.Add(time.Duration(w)*churnWaveGap)))
			}
		}
		if w > 0 { // last wave's publishes, once their expiries are decided
			for i := range perWave {
				evs = append(evs, at(published(fmt.Sprintf("p%d_%d", w-1, i), fmt.Sprintf("w%d_%d", w-1, i)), t0.Add(time.Duration(w-1)*churnWaveGap+2*time.Minute)))
			}
		}
		for p := range grouptest.Partitions {
			grouptest.Produce(t, brokers, prefix, int32(p), evs[p*len(evs)/grouptest.Partitions:(p+1)*len(evs)/grouptest.Partitions]...)
		}
		decided += len(evs)
		waitChurned(t, reg, prefix, decided, w*perWave, max(0, w-1)*perWave)
		if (w+1)%max(1, waves/10) == 0 || w == waves {
			out = append(out, measure(t, reg, cfg, min(w+1, waves)*perWave))
			t.Logf("%s: %+v", name, out[len(out)-1])
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	reg, _ = quietGroup(t, cfg)
	eventually(t, 5*time.Minute, "the restarted member's load", func() bool {
		return metric(t, reg, "bridge_alerts_state_keys", nil) > 0
	})
	p := out[len(out)-1]
	p.load = loadTime(t, reg)
	out = append(out, p)
	return out
}

// quietGroup runs the group of cfg in-process, logging warnings and errors only: a line
// per decision of 100,000 profiles would be most of the run.
func quietGroup(t *testing.T, cfg config.Config) (*prometheus.Registry, func() error) {
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return reg, grouptest.Run(t, cfg, func(ctx context.Context, cfg config.Config, _ *slog.Logger) error {
		return alerts.RunWith(reg)(ctx, cfg, log)
	})
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitChurned waits until the group committed decided decisions and Slack took alerted
// alerts and resolved resolutions messages: the wave is settled, and its batches swept.
func waitChurned(t *testing.T, reg *prometheus.Registry, prefix string, decided, alerted, resolved int) {
	t.Helper()
	keyed := map[string]string{"topic": alerts.Keyed(prefix)}
	eventually(t, 5*time.Minute, fmt.Sprintf("%d decisions, %d alerts and %d resolutions", decided, alerted, resolved), func() bool {
		return metric(t, reg, "bridge_consumer_processed_total", keyed) >= float64(decided) &&
			metric(t, reg, "bridge_alerts_sent_total", map[string]string{"kind": "alert"}) >= float64(alerted) &&
			metric(t, reg, "bridge_alerts_sent_total", map[string]string{"kind": "resolution"}) >= float64(resolved)
	})
}

// measure reads the keys the member holds, and loads the state as an assignment does.
func measure(t *testing.T, reg *prometheus.Registry, cfg config.Config, profiles int) churnPoint {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	st, read, err := alerts.LoadState(ctx, cfg, grouptest.Partitions)
	if err != nil {
		t.Fatal(err)
	}
	return churnPoint{profiles: profiles, keys: int(metric(t, reg, "bridge_alerts_state_keys", nil)), live: len(st), read: read, load: time.Since(start)}
}

// loadTime is the time the member took to load the state of its partitions.
func loadTime(t *testing.T, reg *prometheus.Registry) time.Duration {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "bridge_alerts_state_load_seconds" && len(mf.GetMetric()) > 0 {
			return time.Duration(mf.GetMetric()[0].GetHistogram().GetSampleSum() * float64(time.Second))
		}
	}
	t.Fatal("no state load measured")
	return 0
}

// createState creates the state topic compacting within seconds.
func createState(t *testing.T, brokers []string, prefix string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	configs := map[string]*string{}
	for k, v := range map[string]string{"cleanup.policy": "compact", "segment.ms": "5000", "delete.retention.ms": "5000",
		"min.cleanable.dirty.ratio": "0.01", "min.compaction.lag.ms": "0"} {
		configs[k] = &v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, grouptest.Partitions, -1, configs, alerts.State(prefix)); err != nil {
		t.Fatal(err)
	}
}

func report(t *testing.T, got, base []churnPoint) {
	var b strings.Builder
	fmt.Fprintf(&b, "| profiles | keys held | live keys | records a load reads | load | baseline: keys held | live keys | records a load reads | load |\n|---|---|---|---|---|---|---|---|---|\n")
	for i := range got {
		g, o := got[i], base[i]
		what := fmt.Sprint(g.profiles)
		if i == len(got)-1 {
			what += " (member restarted: its own load)"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %d | %d | %d | %s |\n", what, g.keys, g.live, g.read, g.load.Round(time.Millisecond),
			o.keys, o.live, o.read, o.load.Round(time.Millisecond))
	}
	t.Logf("\n%s", b.String())
}
