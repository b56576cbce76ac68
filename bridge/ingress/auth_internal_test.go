package ingress

import (
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// TestPathsKeepTokensOut checks the two places a request's path leaves the process: the
// log and the metrics' source label. A URL token must show in neither.
func TestPathsKeepTokensOut(t *testing.T) {
	s := &Server{sources: map[string]*Source{"uploadpost": {Name: "uploadpost"}}}
	app := fiber.New()
	var label, logged string
	app.Use(func(c *fiber.Ctx) error {
		label, logged = s.sourceLabel(c), logPath(c)
		return nil
	})
	for _, c := range []struct{ path, label, logged string }{
		{"/webhooks/uploadpost/9f2c4e7a1b3d5f608a2c4e6b8d0f1a3c", "uploadpost", "/webhooks/uploadpost/[redacted]"},
		{"/webhooks/uploadpost/9f2c4e7a1b3d5f608a2c4e6b8d0f1a3c/more", "uploadpost", "/webhooks/uploadpost/[redacted]"},
		{"/webhooks/uploadpost", "uploadpost", "/webhooks/uploadpost"},
		{"/webhooks/9f2c4e7a1b3d5f608a2c4e6b8d0f1a3c", "unknown", "/webhooks/9f2c4e7a1b3d5f608a2c4e6b8d0f1a3c"},
		{"/healthz", "unknown", "/healthz"},
	} {
		if _, err := app.Test(httptest.NewRequest("POST", c.path, nil)); err != nil {
			t.Fatal(err)
		}
		if label != c.label || logged != c.logged {
			t.Errorf("%s: label %q, logged %q; want %q, %q", c.path, label, logged, c.label, c.logged)
		}
	}
}
