package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"

	"github.com/socialbridge/bridge/bridge/service"
	"github.com/socialbridge/bridge/config"
)

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the configuration file (YAML)")
	pprofAddr := fs.String("pprof", "", "serve Go's profiler on this loopback host:port")
	discard := fs.Bool("discard-records", false, "benchmark baseline only: run the request path but store nothing, without Kafka")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *path == "" {
		return fmt.Errorf("serve needs --config FILE: %w", errUsage)
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	log.Info("starting", "version", version(), "config", cfg.Redacted())
	if *pprofAddr != "" {
		stop, err := servePprof(*pprofAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	var opts []service.Option
	if *discard {
		opts = append(opts, service.DiscardRecords())
	}
	return service.Run(ctx, cfg, log, opts...)
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

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
