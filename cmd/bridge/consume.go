package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers/alerts"
)

func consumeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "consume GROUP --config FILE",
		Short: "Run a reference consumer group of the bridge's topics",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		groupCommand("retries", "Retry failed posts through delay topics, then a dead-letter topic", config.RetriesGroup, runRetries),
		groupCommand("alerts", "Post token expiries to Slack, once per profile per cool-down", config.AlertsGroup, alerts.Run),
		consumeAnalyticsCommand(),
	)
	return cmd
}

// groupCommand is `bridge consume NAME --config FILE`: it loads the part of the file (the
// same one `bridge serve` reads) that scope names, and runs the group until SIGINT or SIGTERM.
func groupCommand(name, short string, scope config.Scope, run func(context.Context, config.Config, *slog.Logger) error) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   name + " --config FILE",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return fmt.Errorf("consume %s needs --config FILE: %w", name, errUsage)
			}
			cfg, err := config.LoadFor(path, scope)
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log, cmd.ErrOrStderr()).With("consumer", name)
			log.Info("starting", "version", version(), "config", cfg.Redacted())
			stopTracing, err := startTracing(cmd.Context(), "bridge-"+name, log)
			if err != nil {
				return err
			}
			defer stopTracing()
			return run(cmd.Context(), cfg, log)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "the configuration file (YAML)")
	return cmd
}
