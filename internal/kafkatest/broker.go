package kafkatest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/ports"
)

// Bounds on the life cycle of a dedicated broker.
const (
	defaultStartTimeout = 120 * time.Second // KAFKA_START_TIMEOUT (seconds) overrides
	formatTimeout       = 60 * time.Second
	stopGrace           = 30 * time.Second // SIGTERM, then SIGKILL
	defaultHeap         = "-Xms128m -Xmx512m"
	restartAttempts     = 3 // Start tries this often when Kafka exits while starting
)

// startMark begins the line kafkatest writes to the broker's log at each start.
const startMark = "==== kafkatest: starting Kafka"

// errExited is the error of a start during which the process exited.
var errExited = errors.New("process exited")

// Broker is a dedicated Kafka process on loopback ports, with its data in the test's temp
// dir: a single-node Kafka (KRaft, combined broker and controller), or a broker of a Cluster.
// Its methods must be called from the test's goroutine.
type Broker struct {
	t       testing.TB
	java    string
	libs    string
	dir     string
	port    int // the client listener; 0 for a Cluster's controller, which has none
	cport   int
	cluster string // the cluster id its storage was formatted with; "" for a Cluster's nodes
	logPath string // path of kafka.log
	sec     Security
	ports   map[string]int // the port of each listener of sec, by protocol
	heap    string         // JVM heap flags; "" is defaultHeap

	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{} // closed when cmd has exited
	paused    bool          // stopped by SIGSTOP
	tailShown bool          // the log's tail is already in the test output
}

// StartBroker starts a dedicated Kafka broker from the jars in KAFKA_LIBS and
// waits until it answers metadata requests. It is killed when the test ends.
// Without KAFKA_LIBS the test is skipped, or fails when CI is set.
func StartBroker(t testing.TB) *Broker {
	t.Helper()
	return StartSecureBroker(t, Security{})
}

// StartSecureBroker is StartBroker with the listeners of sec besides the PLAINTEXT one.
func StartSecureBroker(t testing.TB, sec Security) *Broker {
	t.Helper()
	java, libs := javaRuntime(t)
	b := &Broker{t: t, java: java, libs: libs, dir: t.TempDir(), sec: sec}
	b.logPath = filepath.Join(b.dir, "kafka.log")
	// Registered after t.TempDir, so it runs before the dir is removed.
	t.Cleanup(b.cleanup)

	// Free ports are found by binding :0 and closing; another process may
	// take one before Kafka binds it, so a bind failure is retried.
	for attempt := 1; ; attempt++ {
		err := b.init()
		if err == nil {
			err = b.start()
		}
		if err == nil {
			return b
		}
		if attempt < 3 && strings.Contains(b.logTail(200), "Address already in use") {
			t.Logf("kafkatest: port taken, retrying: %v", err)
			continue
		}
		b.tailShown = true
		t.Fatalf("kafkatest: starting Kafka: %v\n%s", err, b.logTail(60))
	}
}

// javaRuntime returns the java binary and the folder of Kafka's jars that dedicated brokers run.
// Without KAFKA_LIBS the test is skipped, or fails when CI is set.
func javaRuntime(t testing.TB) (java, libs string) {
	t.Helper()
	libs = os.Getenv(EnvLibs)
	if libs == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("kafkatest: %s not set; CI must run the tests through scripts/test.sh (make test)", EnvLibs)
		}
		t.Skipf("%s not set; run via make test", EnvLibs)
	}
	if jars, _ := filepath.Glob(filepath.Join(libs, "kafka_2.13-*.jar")); len(jars) == 0 {
		t.Fatalf("kafkatest: %s=%s holds no kafka_2.13 jar; run scripts/kafka.sh fetch", EnvLibs, libs)
	}
	javaName := os.Getenv(EnvJava)
	if javaName == "" {
		javaName = "java"
	}
	java, err := exec.LookPath(javaName)
	if err != nil {
		t.Fatalf("kafkatest: java not found (%s=%q): %v", EnvJava, os.Getenv(EnvJava), err)
	}
	return java, libs
}

// Addr returns the broker's bootstrap address, 127.0.0.1:port. It stays the
// same across Stop and Start.
func (b *Broker) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port)) }

// Listener returns the address of the broker's listener of protocol (SSL, SASL_SSL or
// SASL_PLAINTEXT, as its Security offers), or "" if it has none.
func (b *Broker) Listener(protocol string) string {
	if p, ok := b.ports[protocol]; ok {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return ""
}

// Stop stops the broker (SIGTERM, SIGKILL after 30 s) and waits until it has
// exited. Stopping a stopped broker does nothing.
func (b *Broker) Stop() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopLocked(stopGrace)
}

// Start starts the stopped broker again with the same data and ports, and
// waits until it is ready.
func (b *Broker) Start() {
	b.t.Helper()
	b.mu.Lock()
	running := b.cmd != nil
	b.mu.Unlock()
	if running {
		b.t.Fatalf("kafkatest: Start: broker already running; Stop it first")
	}
	// A restart that exits on its own is tried again: the test is about what happens once
	// the broker is back, not about Kafka's start. Each failed attempt is shown in the log.
	var err error
	for attempt := 1; attempt <= restartAttempts; attempt++ {
		if err = b.start(); err == nil {
			return
		}
		if !errors.Is(err, errExited) || attempt == restartAttempts {
			break
		}
		b.t.Logf("kafkatest: Kafka exited while restarting (attempt %d of %d): %v\n%s",
			attempt, restartAttempts, err, b.errorLines(20))
		time.Sleep(time.Duration(attempt) * time.Second) // pacer: a bound port or lock may clear
	}
	b.tailShown = true
	b.t.Fatalf("kafkatest: restarting Kafka: %v\nerrors logged:\n%s\ntail:\n%s", err, b.errorLines(20), b.logTail(60))
}

// Pause freezes the running broker (SIGSTOP) and returns once every thread of it has
// stopped: its connections stay open and its port accepts, but it answers nothing, like a
// broker stuck in a long GC pause or on a dead disk. Resume, Stop and the test's end undo it.
func (b *Broker) Pause() {
	b.t.Helper()
	b.signal(syscall.SIGSTOP, true)
	b.mu.Lock()
	pid := b.cmd.Process.Pid
	b.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for !stopped(pid) {
		if time.Now().After(deadline) {
			b.t.Fatalf("kafkatest: Pause: broker (pid %d) still running 10s after SIGSTOP", pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// stopped reports whether every thread of process pid is stopped by a signal; without
// /proc (not Linux) it trusts the signal.
func stopped(pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return true
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(task)
		if err != nil {
			continue // the thread ended
		}
		// The state follows the command name, which is in parentheses and may hold spaces.
		if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] != 'T' {
			return false
		}
	}
	return true
}

// Resume lets a paused broker run again (SIGCONT).
func (b *Broker) Resume() {
	b.t.Helper()
	b.signal(syscall.SIGCONT, false)
}

func (b *Broker) signal(sig syscall.Signal, paused bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		b.t.Fatalf("kafkatest: %v: the broker is not running", sig)
	}
	if err := b.cmd.Process.Signal(sig); err != nil {
		b.t.Fatalf("kafkatest: %v: %v", sig, err)
	}
	b.paused = paused
}

// init picks ports, writes the configuration and formats a fresh data dir.
func (b *Broker) init() error {
	var err error
	if b.port, err = ports.Free(); err != nil {
		return err
	}
	if b.cport, err = ports.Free(); err != nil {
		return err
	}
	b.ports = map[string]int{}
	for _, protocol := range b.sec.protocols() {
		if b.ports[protocol], err = ports.Free(); err != nil {
			return err
		}
	}
	props, err := b.config(filepath.Join(b.dir, "data"))
	if err != nil {
		return err
	}
	if b.cluster, err = clusterID(); err != nil {
		return err
	}
	return b.format(props, b.cluster)
}

// format writes props as the node's server.properties and formats a fresh data dir in the
// cluster id.
func (b *Broker) format(props, id string) error {
	if err := os.Remove(b.logPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	data := filepath.Join(b.dir, "data")
	if err := os.RemoveAll(data); err != nil {
		return err
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(b.path("server.properties"), []byte(props), 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), formatTimeout)
	defer cancel()
	args := append(b.jvmArgs(), "kafka.tools.StorageTool", "format",
		"--config", b.path("server.properties"), "--cluster-id", id)
	args = append(args, b.sec.scramArgs()...)
	out, err := exec.CommandContext(ctx, b.java, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("formatting storage: %v\n%s", err, out)
	}
	return nil
}

func (b *Broker) start() error {
	logf, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "%s at %s ====\n", startMark, time.Now().Format(time.RFC3339Nano))
	args := append(b.jvmArgs(), "kafka.Kafka", b.path("server.properties"))
	cmd := exec.Command(b.java, args...)
	cmd.Dir = b.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	logf.Close()
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		appendLog(b.logPath, fmt.Sprintf("==== kafkatest: Kafka exited: %v ====\n", err))
		close(done)
	}()
	b.mu.Lock()
	b.cmd, b.done = cmd, done
	b.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout())
	defer cancel()
	if err := b.waitReady(ctx, done); err != nil {
		b.mu.Lock()
		b.stopLocked(0)
		b.mu.Unlock()
		return err
	}
	return nil
}

// waitReady waits until the node serves: a broker answers metadata requests, a controller
// of a Cluster accepts connections on its listener.
func (b *Broker) waitReady(ctx context.Context, exited <-chan struct{}) error {
	if b.port != 0 {
		return waitReady(ctx, []string{b.Addr()}, exited, b.cluster)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(b.cport))
	for {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("controller not listening: %w (last error: %v)", ctx.Err(), err)
		case <-exited:
			return fmt.Errorf("%w (last error: %v)", errExited, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startTimeout bounds the wait for a started node (or cluster) to serve.
func startTimeout() time.Duration {
	if s, err := strconv.Atoi(os.Getenv("KAFKA_START_TIMEOUT")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return defaultStartTimeout
}

// stopLocked sends SIGTERM (or SIGKILL right away if grace is 0), kills after
// grace, and waits for the process to exit.
func (b *Broker) stopLocked(grace time.Duration) {
	if b.cmd == nil {
		return
	}
	cmd, done := b.cmd, b.done
	b.cmd, b.done = nil, nil
	if b.paused {
		_ = cmd.Process.Signal(syscall.SIGCONT) // a stopped process would hold SIGTERM
		b.paused = false
	}
	if grace > 0 {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			return
		case <-time.After(grace):
			b.t.Logf("kafkatest: Kafka still running %v after SIGTERM; killing it", grace)
		}
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		b.t.Errorf("kafkatest: Kafka (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
	}
}

func (b *Broker) cleanup() {
	b.mu.Lock()
	b.stopLocked(0)
	b.mu.Unlock()
	if b.t.Failed() && !b.tailShown {
		b.t.Logf("kafkatest: tail of %s:\n%s", b.logPath, b.logTail(40))
	}
}

func (b *Broker) path(name string) string { return filepath.Join(b.dir, name) }

func (b *Broker) jvmArgs() []string {
	heap := cmp.Or(os.Getenv("KAFKA_HEAP_OPTS"), b.heap, defaultHeap)
	args := strings.Fields(heap)
	return append(args,
		// C1 only: a test broker starts faster and takes less CPU from the
		// tests running beside it; it never runs long enough for C2 to pay.
		"-XX:TieredStopAtLevel=1",
		"-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile="+filepath.Join(scriptsDir(), "log4j2.properties"),
		"-cp", filepath.Join(b.libs, "*"))
}

// config is the broker's server.properties, from the template scripts/kafka.sh uses too.
func (b *Broker) config(data string) (string, error) {
	tmpl, err := os.ReadFile(filepath.Join(scriptsDir(), "server.properties"))
	if err != nil {
		return "", err
	}
	props := strings.NewReplacer("@PORT@", strconv.Itoa(b.port), "@CONTROLLER_PORT@", strconv.Itoa(b.cport),
		"@DATA@", data).Replace(string(tmpl))
	return props + b.sec.properties(b.port, b.cport, b.ports), nil
}

// scriptsDir is scripts/kafka of this repository, found from this file's own path.
func scriptsDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "scripts", "kafka")
}

// appendLog appends a line of our own to the broker's log, to help reading
// it; errors are ignored.
func appendLog(path, line string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	_, _ = f.WriteString(line)
	_ = f.Close()
}

// errorLines returns the first n lines of the broker's log, since its last start, that say
// ERROR or FATAL, and the exceptions printed with them: what made a start fail, which a tail of the log
// buries under the configuration Kafka prints and its shutdown.
func (b *Broker) errorLines(n int) string {
	data, err := os.ReadFile(b.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if i := bytes.LastIndex(data, []byte(startMark)); i >= 0 {
		data = data[i:]
	}
	var out [][]byte
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(out) == n {
			break
		}
		logged := bytes.HasPrefix(line, []byte("["))
		if bytes.Contains(line, []byte("] ERROR ")) || bytes.Contains(line, []byte("] FATAL ")) ||
			!logged && (bytes.Contains(line, []byte("Exception")) || bytes.Contains(line, []byte("Error"))) {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return "(none)"
	}
	return string(bytes.Join(out, []byte("\n")))
}

// logTail returns the last n lines of the broker's log.
func (b *Broker) logTail(n int) string {
	data, err := os.ReadFile(b.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// clusterID returns a random Kafka cluster id: 16 bytes in unpadded
// base64url, not starting with '-' (it would be read as a flag).
func clusterID() (string, error) {
	for {
		var raw [16]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return "", err
		}
		if id := base64.RawURLEncoding.EncodeToString(raw[:]); id[0] != '-' {
			return id, nil
		}
	}
}
