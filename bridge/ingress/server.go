// Package ingress is the bridge's HTTP front: POST /webhooks/{source} runs the request path
// (verify → normalize → dedup → encode → produce) and answers per docs/http.md; /healthz,
// /readyz and /metrics serve operators, beside the webhooks or on an admin listener.
package ingress

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/pprof"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

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
	// MaxAge, for a preset whose deliveries carry a signed time (providers.Dated), is how old
	// that time may be: an older delivery is refused as a replay. 0 turns the check off.
	MaxAge time.Duration
	state  sourceState

	// Spool: the source's deliveries go to Options.Spool when Kafka cannot take them.
	Spool bool
}

// Options are what a Server is built from. All fields but Ready and Now are required.
type Options struct {
	Sources      []Source
	TopicPrefix  string
	MaxBodyBytes int
	// MaxBodyBytesInFlight and MaxRequestsInFlight are the caps of admission (see
	// admission.go); zero takes the configuration's defaults, 64 MiB and 4096.
	MaxBodyBytesInFlight int64
	MaxRequestsInFlight  int
	// MaxHeaderBytes bounds the request line and headers: Fiber's read buffer.
	MaxHeaderBytes int
	ReadTimeout    time.Duration
	WriteTimeout   time.Duration
	IdleTimeout    time.Duration
	// DedupWait bounds how long a delivery waits for an in-flight attempt of the same id.
	DedupWait time.Duration
	Encoder   schemas.Encoder
	Producer  Producer
	Dedup     dedup.Reserver
	Metrics   *Metrics
	Log       *slog.Logger
	// Ready says whether the bridge should receive deliveries; nil means always.
	Ready func() Readiness
	// Admin moves the operator endpoints to an app of their own (see ServeAdmin); with
	// Pprof it serves Go's profiler there too.
	Admin bool
	Pprof bool
	// Now is the clock, for tests; nil means time.Now.
	Now func() time.Time

	// Spool keeps the records of the sources with Spool set while Kafka cannot take them
	// (bridge/spool); nil for none.
	Spool Spooler
	// Tracing traces the deliveries; the zero value does not.
	Tracing Tracing
}

// Server is the Fiber application serving the ingress.
type Server struct {
	app      *fiber.App
	admin    *fiber.App // nil: the operator endpoints are on app
	drain    listener   // what Serve's connections discard after an early answer
	draining atomic.Bool
	adm      *admission
	maxBody  int
	spare    chan *chunk // idle chunks of bodies (see body.go)
	sources  map[string]*Source
	prefix   string
	dedupTTL time.Duration
	encoder  schemas.Encoder
	producer Producer
	dedup    dedup.Reserver
	metrics  *Metrics
	log      *slog.Logger
	ready    func() Readiness
	now      func() time.Time
	spool    Spooler
	tracer   trace.Tracer // nil: tracing is off
	sender   string       // Tracing.Sender
}

// New builds the Server and its routes.
func New(o Options) *Server {
	s := &Server{
		sources: make(map[string]*Source, len(o.Sources)), prefix: o.TopicPrefix, dedupTTL: o.DedupWait,
		encoder: o.Encoder, producer: o.Producer, dedup: o.Dedup, metrics: o.Metrics, log: o.Log,
		ready: o.Ready, now: o.Now,
		drain:   listener{drainBytes: drainFactor * int64(o.MaxBodyBytes), drainTime: o.ReadTimeout},
		adm:     newAdmission(cmp.Or(o.MaxBodyBytesInFlight, 64<<20), int64(cmp.Or(o.MaxRequestsInFlight, 4096))),
		maxBody: o.MaxBodyBytes,
		spare:   make(chan *chunk, spareChunks),
		sender:  o.Tracing.Sender,
	}
	if o.Tracing.Provider != nil {
		s.tracer = o.Tracing.Provider.Tracer(tracerScope)
	}
	for _, src := range o.Sources {
		src.prepare(o.Log)
		s.sources[src.Name] = &src
		if src.state.dated != nil {
			// From 0, so that increase() counts the first replay: a series born at 1 is not.
			s.metrics.stale.WithLabelValues(src.Name)
		}
	}
	s.spool = o.Spool
	if s.ready == nil {
		s.ready = func() Readiness { return Readiness{Ready: true} }
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.app = fiber.New(fiber.Config{
		BodyLimit:             o.MaxBodyBytes,
		ReadBufferSize:        o.MaxHeaderBytes,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		IdleTimeout:           o.IdleTimeout,
		StreamRequestBody:     true, // admit reads the bodies, within the caps
		ErrorHandler:          s.handleError,
		DisableStartupMessage: true,
	})
	s.app.Server().ErrorHandler = connErrors(s.app.Server().ErrorHandler)
	s.app.Server().Handler = s.knownMethods(s.app.Server().Handler)
	s.metrics.watchAdmission(s.adm)
	if st, ok := o.Dedup.(dedupSizer); ok {
		s.metrics.watchDedup(st)
	}
	s.routes(o)
	return s
}

// drainFactor × max_body_bytes is how much of a refused body is read and discarded so that
// its sender reads the answer (see conn.Close).
const drainFactor = 4

// Serve answers the webhooks (and the operator endpoints, unless Options.Admin) on ln, over
// TLS with tlsConfig, until Shutdown.
func (s *Server) Serve(ln net.Listener, tlsConfig *tls.Config) error {
	l := s.drain
	l.Listener, l.tls = ln, tlsConfig
	return s.app.Listener(&l)
}

func (s *Server) routes(o Options) {
	s.app.Post("/webhooks/:source", s.traced(s.admit, s.countInFlight, s.webhook)...)
	s.app.Get("/webhooks/:source", s.handshake)
	s.app.All("/webhooks/:source", s.wrongMethod)
	s.app.Post("/webhooks/:source/:token", s.traced(s.admit, s.countInFlight, s.webhook)...)
	s.app.All("/webhooks/:source/:token", s.wrongMethod)
	s.app.All("/webhooks/*", s.noEndpoint)
	if !o.Admin {
		s.operatorRoutes(s.app, false)
		return
	}
	s.admin = fiber.New(fiber.Config{
		ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout, IdleTimeout: o.IdleTimeout,
		ErrorHandler: adminError, DisableStartupMessage: true,
	})
	if o.Pprof {
		s.admin.Use(pprof.New())
	}
	s.operatorRoutes(s.admin, true)
}

// App returns the Fiber application of the webhooks, to Test against.
func (s *Server) App() *fiber.App { return s.app }

// ServeAdmin answers the operator endpoints on ln until Shutdown; only for a Server built
// with Options.Admin.
func (s *Server) ServeAdmin(ln net.Listener) error { return s.admin.Listener(ln) }

// Drain prepares for shutdown while still serving: every answer from now on closes its
// connection, so that clients reconnect, to another bridge once readiness has told the
// load balancer.
func (s *Server) Drain() { s.draining.Store(true) }

// Shutdown stops accepting connections and waits, within ctx, for the requests in flight
// to be answered; then it stops the operator endpoints.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.app.ShutdownWithContext(ctx)
	if s.admin != nil {
		err = errors.Join(err, s.admin.ShutdownWithContext(ctx))
	}
	return err
}

// countInFlight counts the deliveries being handled, and closes their connections once
// draining.
func (s *Server) countInFlight(c *fiber.Ctx) error {
	if s.draining.Load() {
		c.Context().SetConnectionClose()
	}
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	return c.Next()
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
