// Package ingress is the bridge's HTTP front: POST /webhooks/{source} runs the request path
// (verify → normalize → dedup → encode → produce) and answers per PRODUCT.md; /healthz,
// /readyz and /metrics serve operators.
package ingress

import (
	"log/slog"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/dedup"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/schemas"
)

// Producer is where records go. Produce sends rec and waits for Kafka's acknowledgement,
// setting rec's Partition and Offset on success. It calls settle exactly once with the
// record's final outcome: before returning when the outcome is known then, or later when
// Produce gave up waiting (returning an error) while the record's fate was still open.
type Producer interface {
	Produce(rec *kgo.Record, settle func(error)) error
}

// Source is one configured webhook endpoint with its keys ready for verification.
type Source struct {
	Name     string
	Provider string
	Preset   providers.Preset
	Keys     []*providers.Key
}

// Options are what a Server is built from. All fields but Ready and Now are required.
type Options struct {
	Sources      []Source
	TopicPrefix  string
	MaxBodyBytes int
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	IdleTimeout  time.Duration
	// DedupWait bounds how long a delivery waits for an in-flight attempt of the same id.
	DedupWait time.Duration
	Encoder   schemas.Encoder
	Producer  Producer
	Dedup     dedup.Reserver
	Metrics   *Metrics
	Log       *slog.Logger
	// Ready says whether Kafka is reachable with the topics present; nil means always.
	Ready func() (bool, string)
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time
}

// Server is the Fiber application serving the ingress.
type Server struct {
	app      *fiber.App
	sources  map[string]*Source
	prefix   string
	dedupTTL time.Duration
	encoder  schemas.Encoder
	producer Producer
	dedup    dedup.Reserver
	metrics  *Metrics
	log      *slog.Logger
	ready    func() (bool, string)
	now      func() time.Time
}

// New builds the Server and its routes.
func New(o Options) *Server {
	s := &Server{
		sources: make(map[string]*Source, len(o.Sources)), prefix: o.TopicPrefix, dedupTTL: o.DedupWait,
		encoder: o.Encoder, producer: o.Producer, dedup: o.Dedup, metrics: o.Metrics, log: o.Log,
		ready: o.Ready, now: o.Now,
	}
	for i := range o.Sources {
		s.sources[o.Sources[i].Name] = &o.Sources[i]
	}
	if s.ready == nil {
		s.ready = func() (bool, string) { return true, "" }
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.app = fiber.New(fiber.Config{
		BodyLimit:             o.MaxBodyBytes,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		IdleTimeout:           o.IdleTimeout,
		ErrorHandler:          s.handleError,
		DisableStartupMessage: true,
	})
	if st, ok := o.Dedup.(dedupSizer); ok {
		s.metrics.watchDedup(st)
	}
	s.routes()
	return s
}

func (s *Server) routes() {
	s.app.Use(s.countInFlight)
	s.app.Post("/webhooks/:source", s.webhook)
	s.app.Get("/webhooks/:source", s.handshake)
	s.app.All("/webhooks/:source", s.wrongMethod)
	s.app.Post("/webhooks/:source/:token", s.webhook)
	s.app.All("/webhooks/:source/:token", s.wrongMethod)
	s.app.All("/webhooks/*", s.noEndpoint)
	s.app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	s.app.Get("/readyz", s.readyz)
	s.app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{})))
}

// App returns the Fiber application, to Listen on or to Test against.
func (s *Server) App() *fiber.App { return s.app }

func (s *Server) countInFlight(c *fiber.Ctx) error {
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	return c.Next()
}

func (s *Server) readyz(c *fiber.Ctx) error {
	if ok, why := s.ready(); !ok {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "not_ready", "reason": why})
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// sourceLabel names the source of a request for metrics, from the path itself: errors raised
// before routing (413) have no route parameters. Unknown names share one label, so that
// requests to random paths cannot grow the metrics without bound; what follows the name
// (an unsigned source's URL token) never becomes a label.
func (s *Server) sourceLabel(c *fiber.Ctx) string {
	rest, _ := strings.CutPrefix(c.Path(), "/webhooks/")
	name, _, _ := strings.Cut(rest, "/")
	if src, ok := s.sources[name]; ok {
		return src.Name
	}
	return "unknown"
}
