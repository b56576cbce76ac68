package ingress

import (
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/socialbridge/bridge/bridge/failure"
)

// TestClassifyFiberCodes: a 4xx of Fiber's that no kind names is the client's fault, answered
// with its own code and status text; anything else of Fiber's (a 5xx, a code below 400) is
// an internal error that shows nothing of it.
func TestClassifyFiberCodes(t *testing.T) {
	for _, c := range []struct {
		code   int
		kind   failure.Kind
		status int
		reason string
	}{
		{fiber.StatusTeapot, failure.Malformed, fiber.StatusTeapot, "I'm a teapot"},
		{499, failure.Malformed, 499, ""},
		{fiber.StatusUnprocessableEntity, failure.Malformed, fiber.StatusUnprocessableEntity, "Unprocessable Entity"},
		{fiber.StatusInternalServerError, failure.Internal, fiber.StatusInternalServerError, "internal error"},
		{fiber.StatusBadGateway, failure.Internal, fiber.StatusInternalServerError, "internal error"},
		{399, failure.Internal, fiber.StatusInternalServerError, "internal error"},
	} {
		kind, status, reason := classify(fiber.NewError(c.code, "fiber's own text"))
		if kind != c.kind || status != c.status || reason != c.reason {
			t.Errorf("fiber error %d classified %v %d %q, want %v %d %q", c.code, kind, status, reason, c.kind, c.status, c.reason)
		}
	}
}
