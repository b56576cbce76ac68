package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers/analytics"
)

func consumeAnalyticsCommand() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "analytics --config FILE",
		Short: "Keep hourly post-outcome aggregates in SQLite or PostgreSQL, exactly once, and serve the dashboard",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return fmt.Errorf("consume analytics needs --config FILE: %w", errUsage)
			}
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log, cmd.ErrOrStderr())
			log.Info("starting analytics consumer", "version", version(), "config", cfg.Redacted())
			return analytics.Run(cmd.Context(), cfg, log)
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "the configuration file (YAML)")
	return cmd
}
