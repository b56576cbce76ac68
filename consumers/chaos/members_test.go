package chaos_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/testkit"
)

// group is one consumer group of the run: its members, each a `bridge consume NAME
// --config FILE` process of its own, as an orchestrator runs them. A member that exits
// without being told to is recorded and started again a second later, as an orchestrator
// would.
type group struct {
	t       *testing.T
	name    string // retries, alerts or analytics
	static  bool   // members have an instance_id (analytics has none)
	bin     string
	dir     string
	yaml    func(name, instance string) string // a member's configuration
	mu      sync.Mutex
	members []*member
	next    int
	exits   []string // unexpected exits, with the end of the member's log
	refused int      // starts that failed because the database was away (an orchestrator starts the member again)
	unended int      // stops whose last batch could not be ended, the broker away (see stopMember)
	closing bool
}

// member is one process of a group.
type member struct {
	id   string // the instance_id (retries, alerts), or a name (analytics)
	log  string
	proc *testkit.Proc
	told bool // the test stopped or killed it
	up   bool // it said it runs
}

func newGroup(t *testing.T, name string, static bool, bin, dir string, yaml func(name, instance string) string) *group {
	return &group{t: t, name: name, static: static, bin: bin, dir: dir, yaml: yaml}
}

// add starts a member with a new id, and returns the id.
func (g *group) add() (string, error) {
	g.mu.Lock()
	g.next++
	id := fmt.Sprintf("%c%d", g.name[0], g.next)
	g.mu.Unlock()
	return id, g.start(id)
}

// start starts the member id: its configuration file, its log (appended to across
// restarts), its process.
func (g *group) start(id string) error {
	instance := ""
	if g.static {
		instance = id
	}
	path := filepath.Join(g.dir, g.name+"-"+id+".yaml")
	if err := os.WriteFile(path, []byte(g.yaml(g.name, instance)), 0o600); err != nil {
		return err
	}
	m := &member{id: id, log: filepath.Join(g.dir, g.name+"-"+id+".log")}
	out, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s%s\n", startMarker, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(g.bin, "consume", g.name, "--config", path)
	cmd.Stdout, cmd.Stderr = out, out
	m.proc = testkit.Start(g.t, g.name+" member "+id, cmd) // its output reaches out through a pipe: out stays open until it exits
	go func() { <-m.proc.Exited(); out.Close() }()
	g.mu.Lock()
	g.members = append(g.members, m)
	g.mu.Unlock()
	go g.watch(m)
	return nil
}

// watch records an exit nobody asked for and starts the member again. An analytics
// member that cannot open its database at its start exits (with status 1, "store: open"),
// and its orchestrator starts it again: that is counted apart, as the database's restarts
// make it happen.
func (g *group) watch(m *member) {
	<-m.proc.Exited()
	g.mu.Lock()
	if m.told || g.closing || g.t.Context().Err() != nil { // the test's cleanup kills what runs
		g.mu.Unlock()
		return
	}
	g.remove(m)
	last := tail(m.log, 1)
	if strings.HasPrefix(last, "bridge: store: open: ") {
		g.refused++
	} else {
		g.exits = append(g.exits, fmt.Sprintf("%s member %s exited by itself (%v); its log ends:\n%s", g.name, m.id, m.proc.Err(), tail(m.log, 15)))
	}
	g.mu.Unlock()
	time.Sleep(time.Second)
	if g.t.Context().Err() != nil {
		return
	}
	if err := g.start(m.id); err != nil {
		g.t.Errorf("restarting %s member %s: %v", g.name, m.id, err)
	}
}

// pick takes a member out of the group, drawn with rng among those that are ready (see
// ready), as one the test is about to stop; it waits for one up to a minute.
func (g *group) pick(rng *rand.Rand) (*member, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		g.mu.Lock()
		var ready []*member
		for _, m := range g.members {
			if m.ready() {
				ready = append(ready, m)
			}
		}
		if len(ready) > 0 {
			m := ready[rng.IntN(len(ready))]
			m.told = true
			g.remove(m)
			g.mu.Unlock()
			return m, nil
		}
		g.mu.Unlock()
		if time.Now().After(deadline) {
			return nil, errors.New("no member ready for a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ready reports whether the member's process has said it runs (retries and alerts:
// "consuming", analytics: "analytics consumer started"), so that it handles SIGTERM as a
// stop: a process signalled in its first milliseconds dies before it can.
func (m *member) ready() bool {
	if m.up {
		return true
	}
	b, err := os.ReadFile(m.log)
	if err != nil {
		return false
	}
	last := b[max(0, bytes.LastIndex(b, []byte(startMarker))):]
	m.up = bytes.Contains(last, []byte("msg=consuming")) || bytes.Contains(last, []byte(`msg="analytics consumer started"`))
	return m.up
}

// startMarker begins what each start of a member appends to its log.
const startMarker = "---- chaos: started at "

func (g *group) remove(m *member) {
	for i, x := range g.members {
		if x == m {
			g.members = append(g.members[:i], g.members[i+1:]...)
			return
		}
	}
}

// kill SIGKILLs a member drawn with rng, and starts it again (the same instance_id) after
// pause. It returns the member's id.
func (g *group) kill(rng *rand.Rand, pause time.Duration) (string, error) {
	m, err := g.pick(rng)
	if err != nil {
		return "", err
	}
	m.proc.Kill()
	time.Sleep(pause)
	return m.id, g.start(m.id)
}

// leave stops a member drawn with rng gracefully (SIGTERM: it finishes its batch and
// exits 0), and starts a new member, with a new id, in its place. It says who left and
// who joined.
func (g *group) leave(rng *rand.Rand) (string, error) {
	m, err := g.pick(rng)
	if err != nil {
		return "", err
	}
	serr := g.stopMember(m)
	id, err := g.add()
	if serr != nil {
		err = serr
	}
	return m.id + " left, " + id + " joined", err
}

// extra starts a member with a new id, waits until it runs (see ready), and after length
// stops a member drawn with rng gracefully: a rebalance for the join, another for the
// leave. It says who joined and who left.
func (g *group) extra(rng *rand.Rand, length time.Duration) (string, error) {
	id, err := g.add()
	if err != nil {
		return "", err
	}
	deadline := time.Now().Add(time.Minute)
	for !g.running(id) {
		if time.Now().After(deadline) {
			return id + " joined", fmt.Errorf("%s member %s not running a minute after its start", g.name, id)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(length)
	m, err := g.pick(rng)
	if err != nil {
		return id + " joined", err
	}
	if err := g.stopMember(m); err != nil {
		return id + " joined, " + m.id + " left", err
	}
	return id + " joined, " + m.id + " left", nil
}

// running reports whether the member id runs and has said so.
func (g *group) running(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range g.members {
		if m.id == id {
			return m.ready()
		}
	}
	return false
}

// stopMember stops m (SIGTERM) and says what did not go cleanly. A member whose last
// batch cannot be ended because the broker is away (stopped, killed or paused meanwhile)
// exits with status 1 and "bridge: end transaction: ..." as its last line: its batch is
// not committed and is handled again by the member that takes its partitions, as after a
// kill. That is counted apart (unended), not a failure; the accounting proves nothing was
// lost or doubled.
func (g *group) stopMember(m *member) error {
	err := m.proc.Stop(time.Minute)
	if err == nil {
		return nil
	}
	if last := tail(m.log, 1); strings.HasPrefix(last, "bridge: end transaction: ") {
		g.mu.Lock()
		g.unended++
		g.mu.Unlock()
		return nil
	}
	return fmt.Errorf("%s member %s did not stop cleanly: %v; its log ends:\n%s", g.name, m.id, err, tail(m.log, 15))
}

// stop stops every member gracefully, at once, and returns what did not go cleanly.
func (g *group) stop() []string {
	g.mu.Lock()
	g.closing = true
	ms := g.members
	g.members = nil
	g.mu.Unlock()
	var mu sync.Mutex
	var bad []string
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.stopMember(m); err != nil {
				mu.Lock()
				bad = append(bad, err.Error())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return bad
}

// unexpected returns the exits nobody asked for so far, and how many starts failed for
// the database being away.
func (g *group) unexpected() ([]string, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.exits...), g.refused
}

// stopsUnended is how many stops could not end their last batch (see stopMember).
func (g *group) stopsUnended() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.unended
}

// logs returns the paths of every member's log.
func (g *group) logs() []string {
	paths, _ := filepath.Glob(filepath.Join(g.dir, g.name+"-*.log"))
	return paths
}

// tail is the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
