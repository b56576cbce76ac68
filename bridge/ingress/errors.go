package ingress

import (
	"errors"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/valyala/fasthttp"

	"github.com/socialbridge/bridge/bridge/failure"
)

// status maps a failure kind to its HTTP status: the one place where that happens.
var status = map[failure.Kind]int{
	failure.Internal:        fiber.StatusInternalServerError,
	failure.Unauthorized:    fiber.StatusUnauthorized,
	failure.UnknownSource:   fiber.StatusNotFound,
	failure.WrongMethod:     fiber.StatusMethodNotAllowed,
	failure.TooLarge:        fiber.StatusRequestEntityTooLarge,
	failure.NotJSON:         fiber.StatusUnsupportedMediaType,
	failure.Unnormalizable:  fiber.StatusAccepted,
	failure.Unavailable:     fiber.StatusServiceUnavailable,
	failure.Malformed:       fiber.StatusBadRequest,
	failure.Timeout:         fiber.StatusRequestTimeout,
	failure.HeadersTooLarge: fiber.StatusRequestHeaderFieldsTooLarge,
}

// fiberKinds maps the errors Fiber and fasthttp raise before our handlers run.
var fiberKinds = map[int]failure.Kind{
	fiber.StatusNotFound:                    failure.UnknownSource,
	fiber.StatusMethodNotAllowed:            failure.WrongMethod,
	fiber.StatusRequestEntityTooLarge:       failure.TooLarge,
	fiber.StatusBadRequest:                  failure.Malformed,
	fiber.StatusRequestTimeout:              failure.Timeout,
	fiber.StatusRequestHeaderFieldsTooLarge: failure.HeadersTooLarge,
}

// fiberReasons answer the errors of fiberKinds. Fiber's and fasthttp's own texts can quote
// the request's bytes, so they are neither shown nor logged.
var fiberReasons = map[failure.Kind]string{
	failure.UnknownSource:   "not found",
	failure.WrongMethod:     "method not allowed",
	failure.TooLarge:        "body too large",
	failure.Malformed:       "malformed HTTP request",
	failure.Timeout:         "the request did not arrive within the read timeout",
	failure.HeadersTooLarge: "request headers too large",
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
	kind, code, reason := classify(err)
	switch kind {
	case failure.Internal:
		s.log.Error("request failed", "path", logPath(c), "err", err)
	case failure.Unavailable:
		s.logUnavailable(c, err)
		c.Set(fiber.HeaderRetryAfter, retryAfter)
	case failure.Malformed, failure.Timeout, failure.HeadersTooLarge:
		s.log.Debug("refused a request that broke HTTP", "code", code, "source", s.sourceLabel(c))
	case failure.WrongMethod:
		if len(c.Response().Header.Peek(fiber.HeaderAllow)) == 0 { // unless the route named its own
			c.Set(fiber.HeaderAllow, "POST")
		}
	}
	s.metrics.answered(s.sourceLabel(c), code)
	return c.Status(code).JSON(errorAnswer{Status: statusWord(code), Error: reason})
}

// classify returns how err is answered: its kind, HTTP status, and the reason shown.
// A 4xx of Fiber's that no kind names is still the client's fault, answered with its code.
func classify(err error) (failure.Kind, int, string) {
	var e *failure.Error
	if errors.As(err, &e) {
		return e.Kind, status[e.Kind], e.Reason
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		if k, ok := fiberKinds[fe.Code]; ok {
			return k, status[k], fiberReasons[k]
		}
		if fe.Code >= 400 && fe.Code < 500 {
			return failure.Malformed, fe.Code, utils.StatusMessage(fe.Code)
		}
	}
	return failure.Internal, fiber.StatusInternalServerError, "internal error"
}

// connErrors wraps fasthttp's error handler (Fiber's, which maps fasthttp's errors to
// fiber.Errors for handleError): a connection whose peer is gone, or that timed out before
// a byte of a request came (an idle keep-alive connection, a client's spare one), is
// closed without an answer, since there is no request to answer.
func connErrors(next func(*fasthttp.RequestCtx, error)) func(*fasthttp.RequestCtx, error) {
	return func(ctx *fasthttp.RequestCtx, err error) {
		var ne net.Error
		if errors.As(err, &ne) && (!ne.Timeout() || nothingRead(ctx.Conn())) {
			silence(ctx.Conn())
			return
		}
		next(ctx, err)
	}
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
	case fiber.StatusBadRequest:
		return "bad_request"
	case fiber.StatusRequestTimeout:
		return "timeout"
	case fiber.StatusRequestHeaderFieldsTooLarge:
		return "headers_too_large"
	default:
		return "error"
	}
}

// adminError answers the admin listener's errors (unknown paths): the webhooks' metrics
// and logs are not theirs.
func adminError(c *fiber.Ctx, err error) error {
	code := fiber.StatusInternalServerError
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code = fe.Code
	}
	return c.Status(code).JSON(errorAnswer{Status: statusWord(code), Error: utils.StatusMessage(code)})
}

// logUnavailable logs a 503: Kafka's and the dedup store's at warn, each; those of the
// ingress's caps at debug, with a warning at most every warnEvery counting them.
func (s *Server) logUnavailable(c *fiber.Ctx, err error) {
	if !isRefusal(err) {
		s.log.Warn("unavailable", "path", logPath(c), "err", err)
		return
	}
	s.log.Debug("refused past the ingress's caps", "path", logPath(c), "err", err)
	if n := s.adm.refused(time.Now()); n > 0 {
		s.log.Warn("refusing requests past the ingress's caps (http.max_body_bytes_in_flight, http.max_requests_in_flight): 503 with Retry-After",
			"refused", n, "since", "the last such warning")
	}
}
