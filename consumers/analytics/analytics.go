// Package analytics is the reference consumer that turns post outcomes into hourly
// aggregates and serves them: `bridge consume analytics`.
//
// It reads {prefix}post.published, post.failed, post.token_expired and post.retry in the
// consumer group consumers.analytics.group and keeps, per hour (of each event's occurred_at)
// and (platform, profile), the count of each and the publish delays (published_at −
// scheduled_at) as a mergeable sketch, with rollups per (hour, platform) and per (day,
// platform, profile), in the database consumers.analytics.database (package store). Each
// batch of records is one transaction that also moves the batch's partitions' offsets, and
// the consumer starts every partition it is assigned from the offset the database holds, so
// a crash, redelivery or rebalance never counts an event twice or misses one. After each
// commit it also commits those offsets to the group in Kafka, for lag tools only.
//
// It serves on consumers.analytics.listen: GET /analytics (the dashboard),
// GET /analytics/api/summary, GET /metrics and GET /healthz.
package analytics

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers"
	"github.com/socialbridge/bridge/consumers/analytics/store"
	"github.com/socialbridge/bridge/internal/telemetry"
	"github.com/socialbridge/bridge/schemas"
)

// DefaultMaxBatch is the most records one transaction counts, unless WithMaxBatch says.
const DefaultMaxBatch = 100_000

// shutdownTimeout bounds the HTTP server's graceful stop and the last offset commit to Kafka.
const shutdownTimeout = 10 * time.Second

// lagEvery is how often the group's lag is measured for bridge_consumer_lag.
const lagEvery = 10 * time.Second

// Service is the consumer and its HTTP server, ready to Run.
type Service struct {
	log      *slog.Logger
	group    string
	store    *store.Store
	client   *kgo.Client
	fetcher  poller // the client
	decoder  *schemas.Reader
	registry bool // schema_registry.url is set
	metrics  *metrics
	ln       net.Listener
	server   *consumers.Server
	commits  *kafkaCommits
	maxBatch int
	pollMax  int // the most records one poll takes
	owned    *assignment
	now      func() time.Time
	tracer   trace.Tracer            // nil: tracing is off
	extra    map[string]http.Handler // routes served beside the dashboard (WithRoute)
	// beforeCommit, set by tests only, runs inside each batch's transaction after the
	// aggregates and offsets are written; an error it returns rolls the transaction back.
	beforeCommit func() error
}

type options struct {
	ln         net.Listener
	clientOpts []kgo.Opt
	maxBatch   int
	routes     map[string]http.Handler
}

// Option changes how New builds the service.
type Option func(*options)

// WithListener serves on ln (which Run closes) instead of listening on
// consumers.analytics.listen; `bridge dev` passes one it opened.
func WithListener(ln net.Listener) Option { return func(o *options) { o.ln = ln } }

// WithClientOptions appends franz-go options to the consumer's (after those of the kafka
// section), e.g. a shorter session timeout.
func WithClientOptions(opts ...kgo.Opt) Option {
	return func(o *options) { o.clientOpts = append(o.clientOpts, opts...) }
}

// WithRoute serves h at pattern (an http.ServeMux pattern) beside the dashboard; `bridge
// dev` serves its traces so.
func WithRoute(pattern string, h http.Handler) Option {
	return func(o *options) {
		if o.routes == nil {
			o.routes = map[string]http.Handler{}
		}
		o.routes[pattern] = h
	}
}

// WithMaxBatch bounds the records counted per transaction (default DefaultMaxBatch).
func WithMaxBatch(n int) Option { return func(o *options) { o.maxBatch = n } }

// Run runs the analytics consumer of cfg until ctx ends.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) error {
	s, err := New(ctx, cfg, log, opts...)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// New opens (and migrates) the database, prepares the Kafka client and the schema registry,
// and listens; nothing is consumed or served until Run. Close it if Run is never called.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (*Service, error) {
	o := options{maxBatch: DefaultMaxBatch}
	for _, opt := range opts {
		opt(&o)
	}
	st, err := store.Open(ctx, cfg.Consumers.Analytics.Database)
	if err != nil {
		return nil, err
	}
	s := newService(log, cfg.Consumers.Analytics.Group, st, o.maxBatch)
	s.registry = cfg.SchemaRegistry.URL != ""
	if err = s.connect(cfg, o); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// newService is the Service of group that counts into st, before it connects to anything.
func newService(log *slog.Logger, group string, st *store.Store, maxBatch int) *Service {
	return &Service{log: log, group: group, store: st, metrics: newMetrics(group), commits: newKafkaCommits(),
		owned: newAssignment(), maxBatch: max(1, maxBatch), pollMax: pollSize, now: time.Now, tracer: telemetry.Tracer(tracerScope)}
}

func (s *Service) connect(cfg config.Config, o options) error {
	var err error
	if s.decoder, err = consumers.NewReader(cfg.SchemaRegistry); err != nil {
		return fmt.Errorf("analytics: %w", err)
	}
	if s.client, err = kgo.NewClient(s.clientOptions(cfg, o.clientOpts)...); err != nil {
		return fmt.Errorf("analytics: kafka client: %w", err)
	}
	s.fetcher = s.client
	s.extra = o.routes
	s.ln = o.ln
	if s.ln == nil {
		if s.ln, err = net.Listen("tcp", cfg.Consumers.Analytics.Listen); err != nil {
			return fmt.Errorf("analytics: consumers.analytics.listen: %w", err)
		}
	}
	return nil
}

// Addr is the address the HTTP server listens on.
func (s *Service) Addr() string { return s.ln.Addr().String() }

// Run consumes and serves until ctx ends, then finishes the batches in hand, commits their
// offsets to Kafka too, leaves the group and closes everything. It returns nil, or the error
// that stopped it sooner: a batch the database refused because it would store an offset
// past records not counted (store.ErrGap, a bug), after which the consumer stops rather than
// count wrong; started again, it reads every partition from the database's offsets.
func (s *Service) Run(ctx context.Context) error {
	defer s.Close()
	s.server = consumers.ServeListener(s.ln, s.metrics.reg, s.routes(), s.log)
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		_ = s.server.Shutdown(sctx)
	}()
	s.log.Info("analytics consumer started", "dashboard", "http://"+s.Addr()+"/analytics")
	lagCtx, stopLag := context.WithCancel(ctx)
	defer stopLag()
	go s.metrics.shared.WatchLag(lagCtx, s.client, s.group, lagEvery, s.log)
	commitCtx, stopCommits := context.WithCancel(ctx)
	defer stopCommits()
	committed := make(chan struct{})
	go func() { defer close(committed); s.commits.run(commitCtx, s.client, s.log) }()
	s.server.SetRunning(true)
	err := s.consume(ctx)
	s.server.SetRunning(false)
	stopCommits()
	<-committed
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	s.commits.flush(fctx, s.client, s.log)
	if err != nil {
		return fmt.Errorf("analytics: stopped: %w", err)
	}
	return nil
}

// Close releases what New opened. Run calls it.
func (s *Service) Close() {
	if s.client != nil {
		s.client.Close() // leaves the group
	}
	if s.ln != nil {
		s.ln.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
}
