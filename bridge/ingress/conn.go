package ingress

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"
)

// listener hands out connections that close without destroying the answer just written
// (see conn.Close), that tell whether a byte ever came, and that the error handler can
// silence.
type listener struct {
	net.Listener
	tls        *tls.Config // nil: plain HTTP
	drainBytes int64
	drainTime  time.Duration
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	lc := &conn{Conn: c, l: l}
	if l.tls != nil {
		return &tlsConn{Conn: tls.Server(lc, l.tls)}, nil
	}
	return lc, nil
}

// conn is one accepted TCP connection.
type conn struct {
	net.Conn
	l      *listener
	got    bool // a byte was read; only the connection's own goroutine reads it
	silent atomic.Bool
	closed atomic.Bool
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.got = c.got || n > 0
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	if c.silent.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// Close ends the connection so that the client reads what was written. Closing a socket
// whose input is unread makes the kernel reset the connection, and a client still sending
// a body (one answered 413 before it was read) then fails on its write and never reads
// the answer. So Close ends only the sending side (the client reads the answer, then the
// end) and a goroutine discards what the client still sends, at most drainBytes within
// drainTime, before closing for good.
func (c *conn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return c.Conn.Close()
	}
	go c.drain()
	return nil
}

func (c *conn) drain() {
	defer c.Conn.Close()
	if c.Conn.SetReadDeadline(time.Now().Add(c.l.drainTime)) == nil {
		_, _ = io.CopyN(io.Discard, c.Conn, c.l.drainBytes)
	}
}

// tlsConn is a TLS connection over a conn. It tells whether a byte came after the
// handshake, and keeps the methods by which fasthttp knows it for TLS.
type tlsConn struct {
	*tls.Conn
	got bool
}

func (c *tlsConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.got = c.got || n > 0
	return n, err
}

// Handshake answers a plain HTTP request in plain HTTP, as net/http does, so that its
// sender learns why it gets no answer over TLS.
func (c *tlsConn) Handshake() error {
	err := c.Conn.Handshake()
	var re tls.RecordHeaderError
	if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader[:]) {
		_, _ = io.WriteString(re.Conn, httpsOnly)
	}
	return err
}

const httpsOnlyBody = `{"status":"bad_request","error":"this endpoint is HTTPS only"}`

var httpsOnly = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
	strconv.Itoa(len(httpsOnlyBody)) + "\r\n\r\n" + httpsOnlyBody

// looksLikeHTTP reports whether the first bytes of a connection start an HTTP request.
func looksLikeHTTP(b []byte) bool {
	for _, m := range []string{"GET ", "POST", "PUT ", "HEAD", "DELE", "PATC", "OPTI"} {
		if string(b[:min(len(b), 4)]) == m {
			return true
		}
	}
	return false
}

// silence makes c discard what the server writes from now on: for a connection that is
// closed without an answer.
func silence(c net.Conn) {
	if tc, ok := c.(*tlsConn); ok {
		c = tc.NetConn()
	}
	if lc, ok := c.(*conn); ok {
		lc.silent.Store(true)
	}
}

// nothingRead reports whether not a byte of a request ever came on c.
func nothingRead(c net.Conn) bool {
	switch c := c.(type) {
	case *conn:
		return !c.got
	case *tlsConn:
		return !c.got
	}
	return false
}
