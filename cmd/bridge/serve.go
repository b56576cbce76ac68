package main

import (
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/socialbridge/bridge/bridge/service"
	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/internal/redrive"
)

func serveCommand() *cobra.Command {
	var path, pprofAddr string
	var discard bool
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the ingress: verify webhooks and produce them to Kafka",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return fmt.Errorf("serve needs --config FILE: %w", errUsage)
			}
			cfg, err := config.LoadFor(path, config.Ingress)
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log, cmd.ErrOrStderr())
			log.Info("starting", "version", version(), "config", cfg.Redacted())
			stopTracing, err := startTracing(cmd.Context(), "bridge", log)
			if err != nil {
				return err
			}
			defer stopTracing()
			if pprofAddr != "" {
				stop, err := servePprof(pprofAddr, log)
				if err != nil {
					return err
				}
				defer stop()
			}
			// The quarantine's metrics, read from Kafka: not when discarding, which never contacts it.
			o := service.Options{DiscardRecords: discard}
			if !discard {
				o.Collectors = []prometheus.Collector{redrive.NewQuarantineMetrics(cfg.Kafka, log)}
			}
			return service.Run(cmd.Context(), cfg, log, o)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "the configuration file (YAML)")
	cmd.Flags().StringVar(&pprofAddr, "pprof", "", "serve Go's profiler on this loopback host:port")
	cmd.Flags().BoolVar(&discard, "discard-records", false, "benchmark baseline only: run the request path but store nothing, without Kafka")
	return cmd
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// buildVersion is stamped at build time by `make build` and `make image`
// (-ldflags "-X main.buildVersion=…"); empty in a plain `go build`.
var buildVersion string

// version is the stamped version, else the module version Go recorded, else "(devel)".
func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
