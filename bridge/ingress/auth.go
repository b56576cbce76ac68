package ingress

import (
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
)

// verify authenticates a delivery by the proof its preset has: the token that ends its URL
// for a provider that signs nothing (POST /webhooks/{source}/{token}), its signature for one
// that signs; a polled provider's source takes no delivery.
func (s *Server) verify(c *fiber.Ctx, src *Source, body []byte, now time.Time) (err error) {
	_, span := s.span(c.UserContext(), "verify")
	defer func() { endSpan(span, err) }()
	token := c.Params("token")
	if u, unsigned := src.Preset.(providers.Unsigned); unsigned {
		return u.VerifyToken([]byte(token), src.Keys)
	}
	if token != "" {
		return failure.New(failure.UnknownSource, "no such webhook endpoint: source %q signs its deliveries, POST them to /webhooks/%s", src.Name, src.Name)
	}
	if sg, signed := src.Preset.(providers.Signed); signed {
		return sg.Verify(&c.Request().Header, body, src.Keys, now)
	}
	return failure.New(failure.Unauthorized, "%s sends no webhooks: this source is polled", src.Provider)
}

// noEndpoint answers the paths under /webhooks/ that are no endpoint. It does not echo the
// path, which may hold a token.
func (s *Server) noEndpoint(*fiber.Ctx) error {
	return failure.New(failure.UnknownSource, "no such webhook endpoint: POST /webhooks/{source}, or /webhooks/{source}/{token} for a sender that signs nothing")
}

// logPath is the request's path as logs show it: a URL token is a credential, so what
// follows a source's name is replaced.
func logPath(c *fiber.Ctx) string {
	path := c.Path()
	rest, ok := strings.CutPrefix(path, "/webhooks/")
	if !ok {
		return path
	}
	if name, _, more := strings.Cut(rest, "/"); more {
		return "/webhooks/" + name + "/[redacted]"
	}
	return path
}
