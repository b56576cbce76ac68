// Package pgserver runs a PostgreSQL server of a test's own: initdb into a temporary folder,
// then the postgres binary on a free loopback port, so that a test can stop it, crash it and
// start it again without disturbing the PostgreSQL other tests share. The binaries come
// from the Debian packages' folder (/usr/lib/postgresql/*/bin); PostgreSQL refuses to run as
// root, so as root both run as the postgres user. Import it only from _test.go files.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/socialbridge/bridge/internal/ports"
)

// Server is a postgres process. Its methods are not safe for concurrent use.
type Server struct {
	bin, dir string
	port     int
	cred     *syscall.Credential // nil unless run as root
	cmd      *exec.Cmd
	done     chan struct{}
}

// Require starts a Server for t and removes it at cleanup. Without PostgreSQL's binaries
// the test is skipped, or fails under CI (scripts/services.sh install provides them).
func Require(t testing.TB) *Server {
	t.Helper()
	bin, err := binDir()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("pgserver: %v (scripts/services.sh install provides it)", err)
		}
		t.Skipf("pgserver: %v", err)
	}
	s, err := start(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Crash()
		_ = os.RemoveAll(s.dir)
	})
	return s
}

// binDir is the newest PostgreSQL's binaries folder.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "postgres")); err == nil {
			return dirs[i], nil
		}
	}
	return "", errors.New("no PostgreSQL binaries in /usr/lib/postgresql/*/bin")
}

func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// start creates a cluster in a new temporary folder (user bridge, trust authentication)
// and starts it. Its data need not survive the machine, so nothing is fsynced; a commit
// still reaches the kernel before it is answered (synchronous_commit stays on), so a
// killed server loses none.
func start(bin string) (*Server, error) {
	s := &Server{bin: bin}
	var err error
	if s.cred, err = credential(); err != nil {
		return nil, err
	}
	if s.dir, err = os.MkdirTemp("", "pgserver-"); err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	if s.cred != nil {
		if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return nil, fmt.Errorf("pgserver: %w", err)
		}
	}
	initdb := s.command(filepath.Join(bin, "initdb"), "-D", s.data(), "-U", "bridge", "--auth=trust", "-E", "UTF8", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		_ = os.RemoveAll(s.dir)
		return nil, fmt.Errorf("pgserver: initdb: %w\n%s", err, out)
	}
	// The server keeps its port across restarts, so it cannot bind port 0: a port is found
	// free (ports.Free) and another process may take it first; then the server cannot bind
	// it and exits, and another port is tried.
	for attempt := 1; ; attempt++ {
		if s.port, err = ports.Free(); err != nil {
			return nil, err
		}
		err = s.Start()
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "could not bind") {
			return s, err
		}
	}
}

// credential is the postgres user's when running as root, else nil (run as ourselves).
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgserver: running as root needs the postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// command runs name as the server's user, in its folder, killed if the test binary dies.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: s.cred}
	return cmd
}

// DSN is a postgres:// URL of the server's postgres database; it stays the same across
// Stop, Crash and Start.
func (s *Server) DSN() string {
	return fmt.Sprintf("postgres://bridge@%s/postgres?sslmode=disable", s.Addr())
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Start starts the stopped server again with the same port and data, and waits until it
// accepts connections (after a crash, once it has recovered).
func (s *Server) Start() error {
	if s.cmd != nil {
		return errors.New("pgserver: already running")
	}
	log, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	defer log.Close()
	cmd := s.command(filepath.Join(s.bin, "postgres"), "-D", s.data(), "-h", "127.0.0.1", "-p", strconv.Itoa(s.port),
		"-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=100")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(s.done)
	err = s.waitReady(60 * time.Second)
	if err != nil {
		select {
		case <-s.done: // it exited: it may be started again
			s.cmd = nil
		default:
		}
	}
	return err
}

// Stop shuts the server down the fast way (SIGINT): open transactions are rolled back and
// every client's connection is cut, as in a restart for maintenance.
func (s *Server) Stop() error { return s.signal(syscall.SIGINT) }

// Crash shuts the server down at once (SIGQUIT, immediate shutdown): nothing is written
// out, as in a crash; the next Start recovers from the write-ahead log.
func (s *Server) Crash() error { return s.signal(syscall.SIGQUIT) }

func (s *Server) signal(sig syscall.Signal) error {
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL) // the postmaster and its backends
		<-s.done
	}
	s.cmd = nil
	return nil
}

// waitReady waits until a client can connect and run a query.
func (s *Server) waitReady(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var last error
	for {
		if last = ping(ctx, s.DSN()); last == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("pgserver: exited at start:\n%s", s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("pgserver: no answer on %s within %s: %v\n%s", s.Addr(), limit, last, s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

func ping(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}
