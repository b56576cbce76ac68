// Package analytics is the reference consumer that turns post outcomes into hourly
// aggregates and serves them: `bridge consume analytics`.
//
// It reads {prefix}post.published, post.failed, post.token_expired and post.retry in the
// consumer group consumers.analytics.group and keeps, per hour (of each event's occurred_at)
// and (platform, profile), the count of each and the publish delays (published_at −
// scheduled_at) as mergeable sketch buckets, in the database consumers.analytics.database
// (package store). Each batch of records is one transaction that also moves the batch's
// partitions' offsets, and the consumer starts every partition it is assigned from the
// offset the database holds, so a crash, redelivery or rebalance never counts an event twice
// or misses one.
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

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// DefaultMaxBatch is the most records one transaction counts, unless WithMaxBatch says.
const DefaultMaxBatch = 10_000

// shutdownTimeout bounds the HTTP server's graceful stop.
const shutdownTimeout = 10 * time.Second

// Service is the consumer and its HTTP server, ready to Run.
type Service struct {
	log      *slog.Logger
	store    *store.Store
	client   *kgo.Client
	decoder  decoder
	metrics  *metrics
	ln       net.Listener
	server   *http.Server
	maxBatch int
	now      func() time.Time
}

type options struct {
	ln         net.Listener
	clientOpts []kgo.Opt
	maxBatch   int
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

// New opens (and migrates) the database, connects to Kafka and the schema registry, and
// listens; nothing is consumed or served until Run. Close it if Run is never called.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...Option) (*Service, error) {
	o := options{maxBatch: DefaultMaxBatch}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Service{log: log, metrics: newMetrics(), maxBatch: o.maxBatch, now: time.Now}
	var err error
	if s.store, err = store.Open(ctx, cfg.Consumers.Analytics.Database); err != nil {
		return nil, err
	}
	if err = s.connect(ctx, cfg, o); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Service) connect(ctx context.Context, cfg config.Config, o options) error {
	var err error
	if s.decoder, err = newDecoder(ctx, cfg); err != nil {
		return err
	}
	if s.client, err = kgo.NewClient(s.clientOptions(cfg, o.clientOpts)...); err != nil {
		return fmt.Errorf("analytics: kafka client: %w", err)
	}
	s.ln = o.ln
	if s.ln == nil {
		if s.ln, err = net.Listen("tcp", cfg.Consumers.Analytics.Listen); err != nil {
			return fmt.Errorf("analytics: consumers.analytics.listen: %w", err)
		}
	}
	s.server = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	return nil
}

// Addr is the address the HTTP server listens on.
func (s *Service) Addr() string { return s.ln.Addr().String() }

// Run consumes and serves until ctx ends, then finishes the batch in hand, leaves the group
// and closes everything. It returns an error only when serving fails.
func (s *Service) Run(ctx context.Context) error {
	defer s.Close()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- s.server.Serve(s.ln) }()
	s.log.Info("analytics consumer started", "dashboard", "http://"+s.Addr()+"/analytics")
	consumed := make(chan struct{})
	go func() { defer close(consumed); s.consume(ctx) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
		err = fmt.Errorf("analytics: serve: %w", err)
		stop()
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	_ = s.server.Shutdown(sctx)
	<-consumed
	return err
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
