package ingress

import (
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Readiness is what /readyz answers. Reason is for anyone; Detail is for operators only (it
// may name brokers), so it is shown on the admin listener alone. A Readiness may be Ready with
// a Reason: ready to accept deliveries, though not all of them (the spool takes what Kafka
// cannot).
type Readiness struct {
	Ready  bool
	Reason string
	Detail string
}

// operatorRoutes adds /healthz, /readyz and /metrics to app; detail shows readiness details.
func (s *Server) operatorRoutes(app *fiber.App, detail bool) {
	app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/readyz", func(c *fiber.Ctx) error { return s.readyz(c, detail) })
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{})))
}

func (s *Server) readyz(c *fiber.Ctx, detail bool) error {
	r := s.ready()
	if r.Ready && r.Reason == "" {
		return c.JSON(fiber.Map{"status": "ready"})
	}
	answer := fiber.Map{"status": "not_ready", "reason": r.Reason}
	if detail && r.Detail != "" {
		answer["detail"] = r.Detail
	}
	if r.Ready {
		answer["status"] = "ready"
		return c.JSON(answer)
	}
	return c.Status(fiber.StatusServiceUnavailable).JSON(answer)
}
