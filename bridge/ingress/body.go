package ingress

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/socialbridge/bridge/bridge/failure"
)

// The ingress streams request bodies (Fiber's StreamRequestBody): fasthttp calls the
// handlers once the headers and at most the first 8 KiB of a body are in, and admit reads
// the rest within the caps of admission. Without it fasthttp reads every body whole before
// any handler runs, allocating its declared length at once: 2,000 unauthenticated
// connections announcing 1 MiB each held 2 GiB.

// A body is read in chunks, each reserved before it is filled, and copied into one buffer of
// its size once it is whole. The chunks of uploads that end (shed, timed out, joined) wait
// for the next ones in a free list of at most spareChunks, so that a crowd of uploads
// cut off and reopened makes little garbage, and the idle chunks stay bounded (a sync.Pool
// would keep up to two collections' worth). A body that fits in one chunk
// is read into its own buffer at once. A body of at most prefetched bytes is in memory
// before admit runs (fasthttp reads it with the headers, per connection): it is taken as it
// is, without a reservation, so that an attack holding the whole budget, however fast,
// never refuses the small deliveries webhooks are.
const (
	chunkSize   = 16 << 10
	prefetched  = 8 << 10
	spareChunks = 1024 // 16 MiB
)

// chunk is one piece of a body being read.
type chunk = [chunkSize]byte

func (s *Server) takeChunk() *chunk {
	select {
	case c := <-s.spare:
		return c
	default:
		return new(chunk)
	}
}

func (s *Server) dropChunk(c *chunk) {
	select {
	case s.spare <- c:
	default: // enough spares: to the collector
	}
}

// admit reads a webhook's body into memory within the caps, then runs the request path on
// it among the requests in flight. A body it answers before reading whole closes its
// connection (the rest of the body would be read as the next request).
func (s *Server) admit(c *fiber.Ctx) error {
	n := c.Request().Header.ContentLength() // -1: chunked
	if n > s.maxBody {
		c.Context().SetConnectionClose()
		return failure.New(failure.TooLarge, "body larger than %d bytes", s.maxBody)
	}
	if n >= 0 && n <= prefetched {
		c.Request().Body() // in memory already: no read from the connection, no reservation
	} else {
		u := s.adm.begin(c.Context().Conn())
		defer s.adm.end(u)
		body, err := s.readBody(c, u, n)
		s.adm.doneReading(u)
		if err != nil {
			c.Context().SetConnectionClose()
			return err
		}
		c.Request().SetBodyRaw(body)
	}
	if err := s.adm.enter(); err != nil {
		return err
	}
	defer s.adm.leave()
	return c.Next()
}

// readBody reads the body of c, of length n (-1: chunked, up to max_body_bytes).
func (s *Server) readBody(c *fiber.Ctx, u *upload, n int) ([]byte, error) {
	r := c.Request().BodyStream()
	if r == nil || n == 0 {
		return nil, nil
	}
	if n > 0 && n <= chunkSize {
		if err := s.adm.reserve(u, int64(n)); err != nil {
			return nil, err
		}
		buf := make([]byte, n)
		got, err := s.fill(u, r, buf)
		return buf[:got], s.bodyError(u, n, got, err)
	}
	limit := n
	if n < 0 {
		limit = s.maxBody + 1 // one more, to tell a body over the limit
	}
	var parts []*chunk
	defer func() { s.dropParts(u, parts) }()
	total := 0
	for total < limit {
		if err := s.adm.reserve(u, chunkSize); err != nil {
			return nil, err
		}
		p := s.takeChunk()
		parts = append(parts, p)
		got, err := s.fill(u, r, p[:min(chunkSize, limit-total)])
		if total += got; err != nil || got < chunkSize {
			if err := s.bodyError(u, n, total, err); err != nil {
				return nil, err
			}
			break
		}
	}
	if total > s.maxBody {
		return nil, failure.New(failure.TooLarge, "body larger than %d bytes", s.maxBody)
	}
	body := s.join(u, parts, total)
	parts = nil
	return body, nil
}

// dropParts gives the chunks of a body that was not joined back, with their bytes.
func (s *Server) dropParts(u *upload, parts []*chunk) {
	for _, p := range parts {
		s.dropChunk(p)
	}
	if len(parts) > 0 {
		s.adm.release(u, int64(len(parts)*chunkSize))
	}
}

// fill reads into buf until it is full, the body ends (err nil), or a read fails, keeping
// u's speed up to date for shedding.
func (s *Server) fill(u *upload, r io.Reader, buf []byte) (int, error) {
	u.filling(time.Now())
	got := 0
	for got < len(buf) {
		n, err := r.Read(buf[got:])
		got += n
		u.received(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return got, err
		}
	}
	u.filled(time.Now(), got)
	return got, nil
}

// bodyError says what is wrong with a body of got bytes, of length n (-1: chunked), after
// the read's err.
func (s *Server) bodyError(u *upload, n, got int, err error) error {
	switch {
	case err != nil:
		return s.readError(u, err)
	case got > s.maxBody:
		return failure.New(failure.TooLarge, "body larger than %d bytes", s.maxBody)
	case n >= 0 && got < n:
		return failure.New(failure.Malformed, "the body ended before its Content-Length")
	}
	return nil
}

// join copies the first total bytes of parts into one buffer, which takes over their
// reservation, and gives the chunks back.
func (s *Server) join(u *upload, parts []*chunk, total int) []byte {
	buf := make([]byte, 0, total)
	for _, p := range parts {
		buf = append(buf, p[:min(chunkSize, total-len(buf))]...)
		s.dropChunk(p)
	}
	s.adm.shrink(u, int64(len(parts)*chunkSize), int64(total))
	return buf
}

// readError is what a failed read of u's body is answered: 503 when it was shed for a
// faster one, 408 past the read timeout, else 400.
func (s *Server) readError(u *upload, err error) error {
	var ne net.Error
	switch {
	case s.adm.wasShed(u):
		return errShed
	case errors.As(err, &ne) && ne.Timeout():
		return failure.Wrap(failure.Timeout, "the body did not arrive within the read timeout", err)
	}
	return failure.Wrap(failure.Malformed, "the body could not be read", err)
}
