package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/socialbridge/bridge/bridge/service"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/telemetry"
	"github.com/socialbridge/bridge/internal/telemetry/waterfall"
)

// devIngress is where `bridge dev` serves its ingress by default, and so where `bridge
// simulate` sends without --config or --url. A variable only so that a test can point both at
// a dev on a free port while still going through simulate's default (see simulate_test.go).
var devIngress = "127.0.0.1:8080"

// devAddrs are where `bridge dev` serves each part; a port 0 picks a free one.
type devAddrs struct {
	ingress, dashboard, retries, alerts, standins string
}

func devCommand() *cobra.Command {
	var a devAddrs
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole product in one process on an in-process Kafka: ingress, consumers, dashboard, stand-ins",
		Long: `Run the whole product in one process, with no external service: franz-go's in-process
Kafka and schema registry, the ingress with a codivupload source and a dev secret, the
reference consumers (retries, alerts, analytics with its dashboard on a temporary SQLite
file), stand-ins for the retry API and Slack that log what the consumers send them, and
the traces of the last deliveries, drawn as waterfalls beside the dashboard (/traces).
Everything lives in memory or in a temporary directory and is gone at exit.

A port 0 in any address picks a free port; the welcome prints every URL.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return dev(cmd.Context(), a, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&a.ingress, "listen", devIngress, "the address of the ingress")
	fl.StringVar(&a.dashboard, "dashboard-listen", "127.0.0.1:8081", "the address of the analytics dashboard, its API and /metrics")
	fl.StringVar(&a.retries, "retries-listen", "127.0.0.1:8082", "the address of the retries group's /metrics and /healthz")
	fl.StringVar(&a.alerts, "alerts-listen", "127.0.0.1:8083", "the address of the alerts group's /metrics and /healthz")
	fl.StringVar(&a.standins, "standins-listen", "127.0.0.1:8090", "the address of the retry-API and Slack stand-ins")
	return cmd
}

// dev runs the product on franz-go's in-process Kafka (kfake) and schema registry (srfake)
// until ctx ends or a part of it fails, then stops every part within the shutdown timeout.
func dev(ctx context.Context, a devAddrs, stdout, stderr io.Writer) error {
	start := time.Now()
	base, err := startDevBase()
	if err != nil {
		return err
	}
	defer base.Close()

	log := newLogger(config.Default().Log, stderr)
	spans := waterfall.New(devSpans)
	stopTracing, err := startTracingWith(ctx, telemetry.Config{Service: "bridge-dev", Version: version(), Log: log.With("part", "tracing"), Keep: spans})
	if err != nil {
		return err
	}
	defer stopTracing() // after every part stopped
	stand, err := startStandIns(a.standins, true, log.With("part", "standins"))
	if err != nil {
		return fmt.Errorf("--standins-listen: %w", err)
	}
	defer stand.Close() // after the consumers stopped: they may be calling it until then
	cfg, err := devConfig(a, base.cluster.ListenAddrs(), base.registry.URL(), stand, base.dir)
	if err != nil {
		return err
	}
	s, err := service.New(ctx, cfg, log.With("part", "ingress"), service.Options{})
	if err != nil {
		return err
	}
	if err := s.Listen(); err != nil {
		return errors.Join(fmt.Errorf("--listen: %w", err), s.Shutdown(context.Background()))
	}
	if err := s.WaitDedup(ctx); err != nil {
		return errors.Join(err, s.Shutdown(context.Background()))
	}
	running, err := startDevConsumers(ctx, cfg, a.dashboard, spans.Handler(), log)
	if err == nil && running.ctx.Err() == nil {
		printWelcome(stdout, welcome{
			ingress: s.Addr(), broker: base.cluster.ListenAddrs()[0], registry: base.registry.URL(),
			dashboard: running.dashboard, cfg: cfg, stand: stand, took: time.Since(start),
		})
		<-running.ctx.Done() // Ctrl-C, or a part failed
	}
	return errors.Join(err, devShutdown(cfg.HTTP.ShutdownTimeout.D(), s, running))
}

// devSpans is how many spans dev keeps for its traces page: the last few dozen deliveries'.
const devSpans = 600

// devBase is what every part of dev runs on: franz-go's in-process Kafka and schema
// registry, and a temporary directory for files.
type devBase struct {
	cluster  *kfake.Cluster
	registry *srfake.Registry
	dir      string
}

func startDevBase() (*devBase, error) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return nil, fmt.Errorf("in-process kafka: %w", err)
	}
	dir, err := os.MkdirTemp("", "bridge-dev-")
	if err != nil {
		cluster.Close()
		return nil, fmt.Errorf("dev: %w", err)
	}
	return &devBase{cluster: cluster, registry: srfake.New(), dir: dir}, nil
}

// Close stops the Kafka and the registry and removes the directory with what it holds.
func (b *devBase) Close() {
	b.registry.Close()
	b.cluster.Close()
	os.RemoveAll(b.dir)
}

// devShutdown stops the ingress and waits for the consumers (stopped by ctx) to finish
// their batch and leave their groups, all within timeout.
func devShutdown(timeout time.Duration, s *service.Service, running *devConsumers) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := s.Shutdown(ctx)
	if running != nil {
		err = errors.Join(err, running.wait(ctx))
	}
	return err
}

// freePort returns addr, or when its port is 0 an address of the same host with a port free
// right now. For a part that listens by itself: the port could be taken before it does, a
// race a dev tool on loopback can live with (the part then fails to start, saying why).
func freePort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != "0" {
		return addr, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
