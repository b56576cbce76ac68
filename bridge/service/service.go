// Package service wires a configuration into a running bridge: the Kafka client and topics,
// the schema codec, the dedup store rebuilt from Kafka, and the ingress. It is what
// `bridge serve` and `bridge dev` run, and what the end-to-end tests start.
package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/socialbridge/bridge/bridge/ingress"
	"github.com/socialbridge/bridge/bridge/poll"
	"github.com/socialbridge/bridge/bridge/producer"
	"github.com/socialbridge/bridge/bridge/providers"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/kafkaconn"
	"github.com/socialbridge/bridge/internal/telemetry"
	"github.com/socialbridge/bridge/internal/topics"
	"github.com/socialbridge/bridge/schemas"
)

// startTimeout bounds each step of the start that does not grow with the data (topics,
// schemas); the dedup rebuild, which does, runs in the background (see dedup.go).
const startTimeout = 30 * time.Second

// Service is one running bridge.
type Service struct {
	cfg     config.Config
	log     *slog.Logger
	cl      *kgo.Client
	server  *ingress.Server
	dedup   *dedupState
	metrics *ingress.Metrics
	poller  *poll.Poller
	spool   *spoolState // nil: no source spools
	// checkLater: the topics' settings are checked once Kafka answers, after the start.
	checkLater bool
	// ensureLater: Kafka could not create the topics at start, which a spooling bridge does
	// not wait for (see spool.go); topicsReady is closed once they are there.
	ensureLater bool
	topicsReady chan struct{}
	ready       atomic.Pointer[ingress.Readiness]
	draining    atomic.Bool
	stop        context.CancelFunc
	watcher     sync.WaitGroup
	ln          net.Listener
	admin       net.Listener
	// tick, if set, makes the ticks of readiness rounds instead of a ticker (tests drive the
	// rounds one by one with it).
	tick func(every time.Duration) (ticks <-chan time.Time, stop func())
}

// Options are what a caller may set of New and Run beside the configuration; the zero value
// is what `bridge serve` runs.
type Options struct {
	// DiscardRecords builds a bridge that runs the whole request path but drops the records
	// instead of producing them, and never contacts Kafka or a registry: the HTTP-side
	// baseline of the load benchmark. Nothing it accepts is stored.
	DiscardRecords bool
	// Collectors are added to the bridge's /metrics (`bridge serve` adds the quarantine
	// topic's, which this package does not read).
	Collectors []prometheus.Collector
	// RebuildClientOptions are appended to the franz-go options of the client that rebuilds
	// the dedup window from Kafka (tests slow it down or hold it with them).
	RebuildClientOptions []kgo.Opt
}

// New connects to Kafka, creates the topics when configured, registers the schemas, and builds
// the ingress; it fails with a clear error if any of these cannot be done within the start
// timeout. The dedup window is rebuilt from Kafka in the background (see dedup.go).
func New(ctx context.Context, cfg config.Config, log *slog.Logger, o Options) (*Service, error) {
	sources, err := keyedSources(cfg)
	if err != nil {
		return nil, err
	}
	if o.DiscardRecords {
		s, err := discarding(cfg, log, sources)
		if err == nil {
			s.metrics.Registry.MustRegister(o.Collectors...)
		}
		return s, err
	}
	cl, err := kgo.NewClient(append(producer.Options(cfg.Kafka), telemetry.KafkaHooks("")...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	s := &Service{cfg: cfg, log: log, cl: cl, metrics: ingress.NewMetrics(), topicsReady: make(chan struct{})}
	s.metrics.Registry.MustRegister(o.Collectors...)
	if err := s.start(ctx, sources, o); err != nil {
		cl.Close()
		_ = s.closeSpool(ctx) // the start's error is the one to report
		return nil, err
	}
	return s, nil
}

func (s *Service) start(ctx context.Context, sources []ingress.Source, o Options) error {
	k := s.cfg.Kafka
	if err := s.openSpool(); err != nil {
		return err
	}
	if err := withTimeout(ctx, s.eventTopics); err != nil {
		return fmt.Errorf("kafka at %v: %w", k.Brokers, err)
	}
	enc, err := s.encoder(ctx)
	if err != nil {
		return err
	}
	s.dedup = newDedup(s.cfg, s.log, s.cfg.Dedup.Rebuild)
	s.dedup.clientOpts = append(s.dedup.clientOpts, o.RebuildClientOptions...)
	s.remarkSpooled()
	s.dedup.start(s.cl, k.TopicPrefix)
	s.server = s.ingress(sources, enc, producer.New(s.cl, k.ProduceTimeout.D()))
	return s.startPolls(ctx)
}

// eventTopics creates the topics the bridge writes (kafka.create_topics) and checks their
// settings. Without create_topics a missing topic makes the bridge unready, not its start
// fail, and the start does not need Kafka: the settings of those that exist are checked once
// Kafka answers (checkTopics), unless kafka.require_durable must refuse the start on them.
func (s *Service) eventTopics(ctx context.Context) error {
	k := s.cfg.Kafka
	ts := topics.Events(k.TopicPrefix)
	var err error
	switch {
	case k.CreateTopics && s.spool != nil:
		err = s.ensureOrLater(ctx, ts)
	case k.CreateTopics:
		err = topics.Ensure(ctx, s.cl, k, s.log, ts...)
	case k.RequireDurable:
		err = topics.Check(ctx, s.cl, k, s.log, ts...)
	default:
		s.checkLater = true
	}
	if err == nil && !s.ensureLater {
		close(s.topicsReady)
	}
	return err
}

// checkTopics checks the settings of the event topics that exist in the background, once
// Kafka answers; Shutdown waits for it.
func (s *Service) checkTopics(ctx context.Context) {
	if !s.checkLater {
		return
	}
	k := s.cfg.Kafka
	s.watcher.Go(func() {
		if err := topics.Check(ctx, s.cl, k, s.log, topics.Events(k.TopicPrefix)...); err != nil && ctx.Err() == nil {
			s.log.Warn("the topics' settings could not be checked", "err", err)
		}
	})
}

func discarding(cfg config.Config, log *slog.Logger, sources []ingress.Source) (*Service, error) {
	enc, err := schemas.NewSingleObject()
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: log, metrics: ingress.NewMetrics(), dedup: newDedup(cfg, log, false)}
	s.ready.Store(&ingress.Readiness{Ready: true})
	s.dedup.start(nil, "")
	s.server = s.ingress(sources, enc, &producer.Discard{})
	log.Warn("discarding records: nothing this bridge accepts is stored (benchmark baseline)")
	return s, nil
}

func (s *Service) ingress(sources []ingress.Source, enc schemas.Encoder, p ingress.Producer) *ingress.Server {
	h := s.cfg.HTTP
	s.dedup.register(s.metrics.Registry)
	s.registerReady(s.metrics.Registry)
	var sp ingress.Spooler
	if s.spool != nil {
		sp = s.spool.sp
	}
	return ingress.New(ingress.Options{
		Sources: sources, TopicPrefix: s.cfg.Kafka.TopicPrefix, MaxBodyBytes: h.MaxBodyBytes,
		MaxHeaderBytes: h.MaxHeaderBytes, MaxBodyBytesInFlight: h.MaxBodyBytesInFlight, MaxRequestsInFlight: h.MaxRequestsInFlight,
		ReadTimeout: h.ReadTimeout.D(), WriteTimeout: h.WriteTimeout.D(), IdleTimeout: h.IdleTimeout.D(),
		DedupWait: s.cfg.Kafka.ProduceTimeout.D(), Encoder: enc, Producer: p, Dedup: s.dedup.store,
		Metrics: s.metrics, Log: s.log, Ready: s.isReady,
		Admin: h.AdminListen != "", Pprof: h.AdminPprof, Spool: sp,
		Tracing: ingress.Tracing{Provider: telemetry.Provider(), Sender: h.SenderTraceparent},
	})
}

func (s *Service) encoder(ctx context.Context) (schemas.Encoder, error) {
	r := s.cfg.SchemaRegistry
	if r.URL == "" {
		return schemas.NewSingleObject()
	}
	base, _, _ := r.Endpoint() // credentials never reach an error's URL
	rc, err := kafkaconn.Registry(r)
	if err != nil {
		return nil, err
	}
	var enc schemas.Encoder
	err = withTimeout(ctx, func(ctx context.Context) (err error) {
		enc, err = schemas.NewRegistry(ctx, rc, s.cfg.Kafka.TopicPrefix, schemas.RegistryOptions{LookUp: !r.Register})
		return err
	})
	if err != nil {
		if !r.Register {
			err = fmt.Errorf("%w (schema_registry.register is false: the schemas must be registered already)", err)
		}
		return nil, fmt.Errorf("schema registry at %s: %w", base, err)
	}
	return enc, nil
}

func keyedSources(cfg config.Config) ([]ingress.Source, error) {
	out := make([]ingress.Source, 0, len(cfg.Sources))
	for _, c := range cfg.Sources {
		p, err := providers.New(c.Provider, c.Settings())
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", c.Name, err)
		}
		src := ingress.Source{Name: c.Name, Provider: c.Provider, Preset: p, MaxAge: cfg.MaxAgeOf(c), Spool: cfg.Spools(c)}
		for i, secret := range c.Secrets {
			key, err := p.Key(secret)
			if err != nil {
				return nil, fmt.Errorf("source %s: secrets[%d]: %w", c.Name, i, err)
			}
			src.Keys = append(src.Keys, key)
		}
		out = append(out, src)
	}
	return out, nil
}

func withTimeout(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	return f(ctx)
}

// Listen binds the configured addresses (HTTPS when http.tls is set; the admin listener
// when http.admin_listen is) and starts serving in the background. Addr and AdminAddr then
// tell the bound addresses.
func (s *Service) Listen() error {
	tlsConfig, err := s.tlsConfig()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	if a := s.cfg.HTTP.AdminListen; a != "" {
		if s.admin, err = net.Listen("tcp", a); err != nil {
			ln.Close()
			return fmt.Errorf("http.admin_listen: %w", err)
		}
		s.serve(func() error { return s.server.ServeAdmin(s.admin) })
	}
	s.ln = ln
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	if s.cl != nil {
		s.watchReadiness(ctx)
		s.checkTopics(ctx)
		s.ensureTopics(ctx)
		s.runPolls(ctx)
		s.runSpool(ctx)
	}
	s.serve(func() error { return s.server.Serve(ln, tlsConfig) })
	return nil
}

func (s *Service) tlsConfig() (*tls.Config, error) {
	t := s.cfg.HTTP.TLS
	if !t.Enabled() {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("http.tls: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func (s *Service) serve(f func() error) {
	go func() {
		if err := f(); err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
}

// Addr is the address the ingress listens on, once Listen has returned.
func (s *Service) Addr() string { return s.ln.Addr().String() }

// AdminAddr is the address of the operator endpoints, once Listen has returned: the
// ingress's own without http.admin_listen.
func (s *Service) AdminAddr() string {
	if s.admin != nil {
		return s.admin.Addr().String()
	}
	return s.Addr()
}

// Shutdown drains (readiness answers 503 for http.drain_period while deliveries are still
// served), stops accepting requests, lets the requests in flight finish, stops the spool's
// drainer, flushes what the producer still holds (whose outcomes the spool may wait for), and
// closes the Kafka client and the spool, all within ctx.
func (s *Service) Shutdown(ctx context.Context) error {
	var errs []error
	if s.ln != nil {
		s.drain(ctx)
		errs = append(errs, s.server.Shutdown(ctx))
		s.stop()
		s.watcher.Wait()
	}
	s.dedup.stop()
	if s.cl != nil {
		if err := s.cl.Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush: %w", err))
		}
		s.cl.Close()
	}
	if err := s.closeSpool(ctx); err != nil {
		errs = append(errs, fmt.Errorf("spool: %w", err))
	}
	if err := s.dedup.close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("dedup: %w", err))
	}
	return errors.Join(errs...)
}

// drain tells load balancers to go elsewhere, through /readyz and by closing connections
// after their answers, for http.drain_period (or until ctx ends) before the listener closes.
func (s *Service) drain(ctx context.Context) {
	d := s.cfg.HTTP.DrainPeriod.D()
	if d <= 0 {
		return
	}
	s.draining.Store(true)
	s.server.Drain()
	s.log.Info("draining before shutdown", "drain_period", d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Run serves cfg until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, o Options) error {
	s, err := New(ctx, cfg, log, o)
	if err != nil {
		return err
	}
	if err := s.Listen(); err != nil {
		_ = s.Shutdown(context.Background()) // the listener's error is the one to report
		return err
	}
	scheme := "http"
	if cfg.HTTP.TLS.Enabled() {
		scheme = "https"
	}
	log.Info("bridge listening", "addr", scheme+"://"+s.Addr(), "sources", len(cfg.Sources), "brokers", cfg.Kafka.Brokers)
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := shutdownContext(cfg.HTTP)
	defer cancel()
	return s.Shutdown(sctx)
}

// shutdownContext bounds a graceful stop by http.shutdown_timeout.
func shutdownContext(h config.HTTP) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), h.ShutdownTimeout.D())
}
