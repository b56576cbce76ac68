package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/socialbridge/bridge/internal/resultsmd"
)

// Results is everything one run measured; it is written as results.json and RESULTS.md.
type Results struct {
	Date         string       `json:"date"`
	Machine      Machine      `json:"machine"`
	Settings     Settings     `json:"settings"`
	Phases       []Phase      `json:"phases"`
	Ratios       Ratios       `json:"ratios"`
	Targets      []Target     `json:"targets"`
	Micro        []Micro      `json:"micro,omitempty"`
	Attack       *Attack      `json:"hostile,omitempty"`
	Verification Verification `json:"verification"`
}

// Machine is where the figures come from.
type Machine struct {
	CPU       string  `json:"cpu"`
	Cores     int     `json:"cores"`
	MemoryGiB float64 `json:"memory_gib"`
	Kernel    string  `json:"kernel"`
	Go        string  `json:"go"`
	Kafka     string  `json:"kafka"`
	Commit    string  `json:"commit"`
}

// Settings are the run's parameters.
type Settings struct {
	Command     string  `json:"command"`
	Brokers     string  `json:"brokers"`
	Conns       int     `json:"conns"`
	Duration    string  `json:"duration_per_phase"`
	Warmup      string  `json:"warmup"`
	DupShare    float64 `json:"dup_share"`
	MaxRequests int     `json:"max_requests_per_phase"`
	BodyBytes   string  `json:"body_bytes"`
	Partitions  int32   `json:"partitions"`
	Linger      string  `json:"linger"`
	Compression string  `json:"compression"`
	MaxRate     float64 `json:"max_rate"` // 200 answers per second of the real bridge, closed loop
}

// Ratios compare the bridge's accepted events per second with the baselines of the run.
type Ratios struct {
	BridgeToNoop   float64 `json:"bridge_to_noop_ingress"`
	BridgeToDirect float64 `json:"bridge_to_direct_producer"`
}

// Target is one of the goals for this machine, checked against the run.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Pass bool   `json:"pass"`
}

// machine describes this computer, from /proc and the toolchain.
func machine(kafkaVersion string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Kafka: kafkaVersion, Commit: commit()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
				m.MemoryGiB = kb / (1 << 20)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return m
}

// commit names the source measured: the git commit, "+dirty" with uncommitted changes.
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += "+dirty"
	}
	return c
}

func phase(ps []Phase, name string) (Phase, bool) {
	for _, p := range ps {
		if p.Name == name {
			return p, true
		}
	}
	return Phase{}, false
}

// judge computes the ratios and checks the targets.
func (r *Results) judge() {
	bridge, _ := phase(r.Phases, phaseBridge)
	if noop, ok := phase(r.Phases, phaseNoop); ok && noop.AcceptedPerSec > 0 {
		r.Ratios.BridgeToNoop = bridge.AcceptedPerSec / noop.AcceptedPerSec
	}
	if direct, ok := phase(r.Phases, phaseDirect); ok && direct.AcceptedPerSec > 0 {
		r.Ratios.BridgeToDirect = bridge.AcceptedPerSec / direct.AcceptedPerSec
	}
	r.Targets = append(r.Targets, Target{
		Name: "bridge / no-op-producer ingress (accepted per second)", Want: "≥ 0.70",
		Got: fmt.Sprintf("%.2f", r.Ratios.BridgeToNoop), Pass: r.Ratios.BridgeToNoop >= 0.7,
	})
	if half, ok := phase(r.Phases, phaseHalf); ok {
		r.Targets = append(r.Targets, Target{
			Name: fmt.Sprintf("p99 latency at 50%% of the maximum rate (%.0f/s)", half.TargetRate), Want: "< 25 ms",
			Got: fmt.Sprintf("%.1f ms", half.Latency.P99), Pass: half.Latency.P99 < 25 && half.Late == 0,
		})
	}
	if a := r.Attack; a != nil {
		r.Targets = append(r.Targets, Target{
			Name: "p99 at 50% of max beside hostile clients / without, and no error", Want: "≤ 2, 0 errors",
			Got:  fmt.Sprintf("%.2f (%.2f / %.2f ms), %d errors", a.ValidToCalmP99, a.ValidP99Hostile, a.ValidP99Calm, a.ValidNon200),
			Pass: a.ValidToCalmP99 <= 2 && a.ValidNon200 == 0,
		})
	}
	if hot, ok := findMicro(r.Micro, "HotPath"); ok {
		r.Targets = append(r.Targets,
			Target{Name: "hot path (verify, normalize, encode) time", Want: "< 10 µs", Got: fmt.Sprintf("%.2f µs", hot.NsPerOp/1000), Pass: hot.NsPerOp < 10_000},
			Target{Name: "hot path allocations", Want: "< 15 per request", Got: fmt.Sprintf("%.0f", hot.AllocsPerOp), Pass: hot.AllocsPerOp < 15})
	}
	r.Targets = append(r.Targets, Target{
		Name: "bridge / direct franz-go producer (accepted per second)", Want: "reported",
		Got: fmt.Sprintf("%.2f", r.Ratios.BridgeToDirect), Pass: true,
	})
}

// loadSection names the part of RESULTS.md the load benchmark writes; the other benchmarks'
// sections in that file are kept.
const loadSection = "load-bench"

// write saves results.json, and the load benchmark's section of RESULTS.md, in dir.
func (r *Results) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	return resultsmd.WriteSection(filepath.Join(dir, "RESULTS.md"), loadSection, r.markdown(), true)
}

func (r *Results) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	m, s := r.Machine, r.Settings
	w("# Load benchmark results\n\n")
	w("Generated by `%s` on %s. Regenerate with `make bench`; the figures of each run are in\n", s.Command, r.Date)
	w("`bench/results.json`. All phases ran in one run, one after the other, on one broker.\n\n")
	w("**Machine**: %s, %d cores, %.1f GiB memory, %s; %s; Kafka %s (single-node KRaft on\n", m.CPU, m.Cores, m.MemoryGiB, m.Kernel, m.Go, m.Kafka)
	w("loopback); commit %s. The broker, the bridge and the load generator share the %d cores.\n\n", m.Commit, m.Cores)
	w("**Load**: signed CodivUpload webhooks of %s bytes (post.published 70%%, post.failed 15%%,\n", s.BodyBytes)
	w("post.retry 10%%, post.token_expired 5%%), unique ids plus %.0f%% redeliveries of earlier ids, over\n", s.DupShare*100)
	w("%d keep-alive connections; %s per phase after a %s warm-up; at most %d requests per phase.\n", s.Conns, s.Duration, s.Warmup, s.MaxRequests)
	w("Bridge settings: %d partitions per topic, linger %s, %s compression, acks=all, idempotent, single-object Avro.\n\n", s.Partitions, s.Linger, s.Compression)

	w("## Throughput and latency\n\n")
	w("| phase | loop | sent | accepted/s | 200s/s | p50 ms | p99 ms | p99.9 ms | max ms | CPU s / 1,000 | bridge peak RSS | answers |\n")
	w("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, p := range r.Phases {
		loop := p.Loop
		if p.Loop == "open" {
			loop = fmt.Sprintf("open %.0f/s", p.TargetRate)
		}
		rss := "–"
		if p.PeakRSSMiB > 0 {
			rss = fmt.Sprintf("%.0f MiB", p.PeakRSSMiB)
		}
		w("| %s | %s | %d | %.0f | %.0f | %.2f | %.2f | %.2f | %.1f | %.3f | %s | %s |\n",
			p.What, loop, p.Sent, p.AcceptedPerSec, p.OKPerSec, p.Latency.P50, p.Latency.P99, p.Latency.P999, p.Latency.Max,
			p.CPUPer1000, rss, answersText(p))
	}
	w("\nLatency is from the moment a request was due to the moment its answer was read: in the\n")
	w("open-loop phases the due time is the request's place in a fixed schedule, so a slow answer\n")
	w("that delays the requests behind it is counted, not omitted. Closed loop: from its send.\n")
	w("CPU s / 1,000 is the bridge process's user+system CPU per 1,000 requests (for the direct\n")
	w("baseline: this program's, which then only produces). The maximum rate, %.0f/s, is the real\n", s.MaxRate)
	w("bridge's 200 answers per second in closed loop.\n\n")

	w("CPU seconds used by each process during each phase, of %d × the phase's seconds available;\n", m.Cores)
	w("\"other\" is the rest of the machine (anything else running disturbs the figures):\n\n")
	w("| phase | seconds | bridge | load generator | broker | other |\n|---|--:|--:|--:|--:|--:|\n")
	for _, p := range r.Phases {
		w("| %s | %.1f | %s | %s | %s | %s |\n", p.What, p.Seconds,
			cpuCell(p, "bridge"), cpuCell(p, "loadgen"), cpuCell(p, "broker"), cpuCell(p, "other"))
	}

	if busy := r.disturbed(); busy != "" {
		w("\n**Disturbed**: other processes used %s; the figures of those phases are\n", busy)
		w("lower than this machine gives when it is otherwise idle.\n")
	}
	w("\n## Ratios and targets\n\n")
	w("| target | want | got | |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		mark := "✅ pass"
		switch {
		case t.Want == "reported":
			mark = "(no target)"
		case !t.Pass:
			mark = "❌ fail"
		}
		w("| %s | %s | %s | %s |\n", t.Name, t.Want, t.Got, mark)
	}

	if a := r.Attack; a != nil {
		r.hostileMarkdown(w)
	}
	w("\n## Verification\n\n")
	v := r.Verification
	if v.Passed {
		w("Passed: after the real-bridge phases all %d records of the run's topics (`%s*`) were read back;\n", v.RecordsRead, v.TopicsPrefix)
		w("each of the %d ids answered 200 (accepted or duplicate) is there exactly once, in the topic of its\n", v.IDsAnswered)
		w("type; no id is there twice, none was accepted twice, nothing was quarantined")
		if v.HostileQuarantined > 0 {
			w(" (but the %d hostile\nJSON bodies of the hostile phase, sent to a source of their own)", v.HostileQuarantined)
		}
		w(".\n")
	} else {
		w("**Failed**: %d mismatches between the answers and the %d records read back from `%s*`. First:\n\n", v.Mismatches, v.RecordsRead, v.TopicsPrefix)
		for _, e := range v.Examples {
			w("- %s\n", e)
		}
	}

	if len(r.Micro) > 0 {
		w("\n## Micro-benchmarks of the request path\n\n")
		w("`go test -run '^$' -bench . -benchmem ./bench/...`, run after the load phases on the same\n")
		w("machine and broker. One typical delivery: a signed 600-byte post.published. HotPath is\n")
		w("verify + normalize + envelope + encode, as the ingress does them; Produce is the bridge's\n")
		w("produce-and-wait of its record with its producer options, one at a time (sync) and from\n")
		w("32 goroutines (concurrent: time per record while franz-go batches them).\n\n")
		w("| benchmark | ns/op | B/op | allocs/op |\n|---|--:|--:|--:|\n")
		for _, mb := range r.Micro {
			w("| %s | %.0f | %.0f | %.0f |\n", mb.Name, mb.NsPerOp, mb.BytesPerOp, mb.AllocsPerOp)
		}
	}
	return b.String()
}

// disturbed names the phases in which the rest of the machine used more than 5% of the CPU
// time available, "" if none.
func (r *Results) disturbed() string {
	var out []string
	for _, p := range r.Phases {
		if avail := p.Seconds * float64(r.Machine.Cores); p.CPUSeconds["other"] > 0.05*avail {
			out = append(out, fmt.Sprintf("%.0f%% of the CPU during %s", 100*p.CPUSeconds["other"]/avail, p.What))
		}
	}
	return strings.Join(out, ", ")
}

func cpuCell(p Phase, name string) string {
	c, ok := p.CPUSeconds[name]
	if !ok {
		return "–"
	}
	return fmt.Sprintf("%.1f", c)
}

func answersText(p Phase) string {
	keys := make([]string, 0, len(p.Answers))
	for k := range p.Answers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys)+1)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, p.Answers[k]))
	}
	if p.Late > 0 {
		parts = append(parts, fmt.Sprintf("late (not sent): %d", p.Late))
	}
	return strings.Join(parts, ", ")
}

// hostileMarkdown describes the hostile phase: what attacked, and how it went.
func (r *Results) hostileMarkdown(w func(string, ...any)) {
	a := r.Attack
	w("\n## Hostile clients\n\n")
	w("The phase at 50%% of the maximum rate ran again, same schedule and connections, beside\n")
	w("%d connections that send nothing, %d slowloris connections (a request's headers, a byte a\n", a.Idle, a.Slowloris)
	w("second) and %.0f signed deliveries a second whose JSON is nested %d deep or holds a number\n", a.JSONPerSec, a.NestedDepth)
	w("of %d digits (64 KiB each; authentic, so they are parsed and quarantined). The bridge runs\n", a.NumberDigits)
	w("its defaults: `http.read_timeout` 10 s closes the idle and slowloris connections, which are\n")
	w("opened again at once (%d dials, %d failed; at least %d of %d held throughout; open-file\n",
		a.Dials, a.Refused, a.MinHeld, a.Idle+a.Slowloris)
	w("limit %d).\n\n", a.OpenFileLimit)
	w("| valid stream | p99 ms | answers not 200 |\n|---|--:|--:|\n")
	w("| without the attack | %.2f | – |\n", a.ValidP99Calm)
	w("| beside the attack | %.2f | %d |\n\n", a.ValidP99Hostile, a.ValidNon200)
	w("Hostile JSON answers: %s.\n", countsText(a.JSONAnswers))
}

func countsText(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
