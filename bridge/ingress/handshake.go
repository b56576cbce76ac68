package ingress

import (
	"github.com/gofiber/fiber/v2"

	"github.com/socialbridge/bridge/bridge/failure"
	"github.com/socialbridge/bridge/bridge/providers"
)

// handshake answers GET /webhooks/{source}: the provider's check of the endpoint (Meta's
// hub.challenge, X's CRC) when the source's preset has one, 405 otherwise. A refused
// check counts as a verification failure.
func (s *Server) handshake(c *fiber.Ctx) error {
	src, ok := s.sources[c.Params("source")]
	if !ok {
		return failure.New(failure.UnknownSource, "unknown source %q", c.Params("source"))
	}
	hs, ok := src.Preset.(providers.Handshaker)
	if !ok {
		return s.wrongMethod(c)
	}
	contentType, body, err := hs.Handshake(c.Request().URI().QueryArgs(), src.Keys)
	if err != nil {
		s.metrics.verifyFailures.WithLabelValues(src.Name).Inc()
		return err
	}
	s.metrics.answered(src.Name, fiber.StatusOK)
	c.Status(fiber.StatusOK).Response().Header.SetContentType(contentType)
	return c.Send(body)
}
