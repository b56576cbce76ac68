package ingress_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/internal/testkit"
)

// TestRefusedBodyIsDrained: a client that goes on sending the body it declared after the
// answer (413 before the body was read) has what it sends taken, not reset: a reset would
// make the client fail on its write, and some never read the answer then. The client's
// kernel says which: every byte acknowledged, or the connection reset.
func TestRefusedBodyIsDrained(t *testing.T) {
	// The server discards up to 4 × limit after a refusal. fasthttp reads up to a buffer of
	// the body (MaxHeaderBytes, 32 KiB) before the handler runs: the first part fills it.
	const limit = 32 << 10
	srv := serve(t, func(o *ingress.Options) { o.MaxBodyBytes = limit })
	c := dial(t, srv.addr).(*net.TCPConn)
	body := strings.Repeat("x", 3*limit)
	io.WriteString(c, "POST /webhooks/codivupload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "+
		strconv.Itoa(len(body))+"\r\n\r\n"+body[:limit])
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 413 {
		t.Fatalf("a body over the limit: %v %v, want 413", resp, err)
	}
	if _, err := io.WriteString(c, body[limit:]); err != nil {
		t.Fatalf("the rest of the body, after the answer: %v", err)
	}
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var unacked, reset int
	testkit.Eventually(t, 30*time.Second, "the rest of the body acknowledged or reset", func() bool {
		raw.Control(func(fd uintptr) {
			if e, _ := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR); e != 0 {
				reset = e
			}
			unacked, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
		})
		return reset != 0 || unacked == 0
	}, func() string { return strconv.Itoa(unacked) + " bytes unacknowledged" })
	if reset != 0 {
		t.Errorf("the server reset the connection while the client sent the body it declared: %v", syscall.Errno(reset))
	}
}
