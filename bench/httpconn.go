package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// httpConn is one keep-alive HTTP/1.1 connection that sends requests serialized in advance
// and reads their answers with little parsing. On a two-core machine shared with the
// bridge and the broker, the load generator's own CPU is taken from them: this costs a
// fraction of net/http's client per request.
type httpConn struct {
	addr    string
	timeout time.Duration
	c       net.Conn
	r       *bufio.Reader
	body    []byte
}

func newHTTPConn(addr string, timeout time.Duration) *httpConn {
	return &httpConn{addr: addr, timeout: timeout}
}

// do sends the serialized request req and returns the answer's status code and body, which
// is valid until the next call. After an error the connection is closed; the next call
// dials again.
func (h *httpConn) do(req []byte) (int, []byte, error) {
	if h.c == nil {
		c, err := net.DialTimeout("tcp", h.addr, h.timeout)
		if err != nil {
			return 0, nil, err
		}
		h.c = c
		if h.r == nil {
			h.r = bufio.NewReaderSize(c, 4096)
		} else {
			h.r.Reset(c)
		}
	}
	code, keep, err := h.exchange(req)
	if err != nil || !keep {
		h.close()
	}
	return code, h.body, err
}

func (h *httpConn) close() {
	if h.c != nil {
		h.c.Close()
		h.c = nil
	}
}

func (h *httpConn) exchange(req []byte) (code int, keep bool, err error) {
	if err := h.c.SetDeadline(time.Now().Add(h.timeout)); err != nil {
		return 0, false, err
	}
	if _, err := h.c.Write(req); err != nil {
		return 0, false, err
	}
	line, err := h.r.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	if code, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	length, chunked, keep, err := h.headers()
	if err != nil {
		return code, false, err
	}
	if chunked {
		err = h.readChunked()
	} else {
		err = h.readBody(length)
	}
	return code, keep, err
}

// headers reads the answer's headers up to the blank line and returns what framing needs.
func (h *httpConn) headers() (length int, chunked, keep bool, err error) {
	length, keep = -1, true
	for {
		line, err := h.r.ReadSlice('\n')
		if err != nil {
			return 0, false, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return length, chunked, keep, nil
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, false, false, fmt.Errorf("malformed content-length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
}

func (h *httpConn) readBody(length int) error {
	if length < 0 {
		return errors.New("answer has neither content-length nor chunked encoding")
	}
	h.body = grow(h.body[:0], length)
	_, err := io.ReadFull(h.r, h.body)
	return err
}

func (h *httpConn) readChunked() error {
	h.body = h.body[:0]
	for {
		line, err := h.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(size), 16, 32)
		if err != nil || n < 0 {
			return fmt.Errorf("malformed chunk size %q", line)
		}
		if n == 0 {
			_, err := h.r.Discard(2) // the empty trailer; this client sends no TE: trailers
			return err
		}
		start := len(h.body)
		h.body = grow(h.body, int(n))
		if _, err := io.ReadFull(h.r, h.body[start:]); err != nil {
			return err
		}
		if _, err := h.r.Discard(2); err != nil {
			return err
		}
	}
}

// grow extends b by n bytes.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n+512)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// wire serializes a POST of body to path with the given headers.
func wire(path string, headers [][2]string, body []byte) []byte {
	b := make([]byte, 0, len(body)+256)
	b = fmt.Appendf(b, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", path)
	for _, h := range headers {
		b = fmt.Appendf(b, "%s: %s\r\n", h[0], h[1])
	}
	b = fmt.Appendf(b, "Content-Length: %d\r\n\r\n", len(body))
	return append(b, body...)
}
