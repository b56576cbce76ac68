// Package redisserver runs a redis-server process of its own on a loopback port, with its
// data in a folder, so that a test or the fault suite can kill it and start it again. It
// appends every write to its log before answering (appendonly; appendfsync everysec), as a
// Redis holding the dedup window must: a killed and restarted Redis forgets nothing it
// acknowledged (only a crash of the machine itself can lose the last second).
package redisserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socialbridge/bridge/internal/ports"
)

// Server is a redis-server process. Its methods are not safe for concurrent use.
type Server struct {
	bin, dir string
	args     []string // more of redis-server's options, e.g. "--maxmemory-policy", "allkeys-lru"
	port     int
	cmd      *exec.Cmd
	done     chan struct{}
}

// Start runs redis-server (found on PATH) with its data in dir on a free loopback port, and
// waits until it answers. args are more options for redis-server, kept across restarts. A
// free port (ports.Free) may be taken by another process before the server binds it: then
// Start tries another, up to three times.
func Start(dir string, args ...string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redisserver: %w", err)
	}
	for attempt := 1; ; attempt++ {
		port, err := ports.Free()
		if err != nil {
			return nil, err
		}
		s := &Server{bin: bin, dir: dir, args: args, port: port}
		err = s.Start()
		if err == nil || attempt == 3 || !errors.Is(err, errPortTaken) {
			return s, err
		}
	}
}

// errPortTaken is why a server could not start on its port: another process holds it.
var errPortTaken = errors.New("redisserver: the port is taken")

// Require starts a Server for t in a temp dir, with args as in Start, and kills it at
// cleanup. Without a redis-server binary the test is skipped, or fails under CI.
func Require(t testing.TB, args ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redisserver: %v (scripts/services.sh install provides it)", err)
		}
		t.Skipf("redisserver: %v", err)
	}
	s, err := Start(t.TempDir(), args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Kill() })
	return s
}

// Addr is the server's host:port; it stays the same across Kill and Start.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Pid is the running process's id, 0 when stopped.
func (s *Server) Pid() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Start starts the stopped server again with the same port and data.
func (s *Server) Start() error {
	if s.cmd != nil {
		return errors.New("redisserver: already running")
	}
	cmd := exec.Command(s.bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(s.port), "--dir", s.dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
		"--logfile", filepath.Join(s.dir, "redis.log"))
	cmd.Args = append(cmd.Args, s.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redisserver: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(s.done)
	return s.waitReady(10 * time.Second)
}

// Kill stops the server with SIGKILL and waits for it to exit.
func (s *Server) Kill() error { return s.signal(syscall.SIGKILL) }

// Stop stops the server with SIGTERM (it finishes writing its data) and waits for it to exit.
func (s *Server) Stop() error { return s.signal(syscall.SIGTERM) }

func (s *Server) signal(sig syscall.Signal) error {
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
	return nil
}

// waitReady waits until the server answers PING with PONG.
func (s *Server) waitReady(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		// The answer must come from this server, not from one that held the port first.
		if pid, err := ping(s.Addr()); err == nil && pid == s.cmd.Process.Pid {
			return nil
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			if bytes.Contains(b, []byte("Address already in use")) {
				return fmt.Errorf("%w: %d", errPortTaken, s.port)
			}
			return fmt.Errorf("redisserver: exited at start:\n%s", b)
		case <-ctx.Done():
			return fmt.Errorf("redisserver: no answer on %s within %s", s.Addr(), limit)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ping asks the server at addr for its process id (INFO server), which also tells it answers.
func ping(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("INFO server\r\n")); err != nil {
		return 0, err
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "$") {
		return 0, fmt.Errorf("redisserver: INFO answered %q: %v", head, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[1:]))
	if err != nil {
		return 0, fmt.Errorf("redisserver: INFO answered %q", head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\r\n") {
		if v, ok := strings.CutPrefix(line, "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("redisserver: INFO server has no process_id")
}
