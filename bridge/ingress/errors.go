package ingress

import (
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/socialbridge/bridge/bridge/failure"
)

// status maps a failure kind to its HTTP status: the one place where that happens.
var status = map[failure.Kind]int{
	failure.Internal:       fiber.StatusInternalServerError,
	failure.Unauthorized:   fiber.StatusUnauthorized,
	failure.UnknownSource:  fiber.StatusNotFound,
	failure.WrongMethod:    fiber.StatusMethodNotAllowed,
	failure.TooLarge:       fiber.StatusRequestEntityTooLarge,
	failure.NotJSON:        fiber.StatusUnsupportedMediaType,
	failure.Unnormalizable: fiber.StatusAccepted,
	failure.Unavailable:    fiber.StatusServiceUnavailable,
}

// fiberKinds maps the errors Fiber raises before our handlers run.
var fiberKinds = map[int]failure.Kind{
	fiber.StatusNotFound:              failure.UnknownSource,
	fiber.StatusMethodNotAllowed:      failure.WrongMethod,
	fiber.StatusRequestEntityTooLarge: failure.TooLarge,
}

// retryAfter is the Retry-After, in seconds, of a 503: long enough for a broker to come
// back, short enough that providers with few retries still get through.
const retryAfter = "5"

type errorAnswer struct {
	Status string `json:"status"`
	Error  string `json:"error"`
}

// handleError is Fiber's error handler: every error of every route is answered here.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	kind := failure.KindOf(err)
	reason := "internal error"
	var fe *fiber.Error
	var e *failure.Error
	switch {
	case errors.As(err, &e):
		reason = e.Reason
	case errors.As(err, &fe):
		kind, reason = fiberKind(fe.Code), fe.Message
	}
	code := status[kind]
	if kind == failure.Internal {
		s.log.Error("request failed", "path", logPath(c), "err", err)
	} else if kind == failure.Unavailable {
		s.log.Warn("unavailable", "path", logPath(c), "err", err)
		c.Set(fiber.HeaderRetryAfter, retryAfter)
	}
	if kind == failure.WrongMethod && len(c.Response().Header.Peek(fiber.HeaderAllow)) == 0 {
		c.Set(fiber.HeaderAllow, "POST")
	}
	s.metrics.answered(s.sourceLabel(c), code)
	return c.Status(code).JSON(errorAnswer{Status: statusWord(code), Error: reason})
}

func fiberKind(code int) failure.Kind {
	if k, ok := fiberKinds[code]; ok {
		return k
	}
	return failure.Internal
}

func statusWord(code int) string {
	switch code {
	case fiber.StatusUnauthorized:
		return "unauthorized"
	case fiber.StatusNotFound:
		return "not_found"
	case fiber.StatusMethodNotAllowed:
		return "method_not_allowed"
	case fiber.StatusRequestEntityTooLarge:
		return "too_large"
	case fiber.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case fiber.StatusServiceUnavailable:
		return "unavailable"
	default:
		return "error"
	}
}
