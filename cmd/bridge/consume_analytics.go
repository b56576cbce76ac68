package main

import (
	"context"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/socialbridge/bridge/config"
	"github.com/socialbridge/bridge/consumers/analytics"
)

// consumeAnalyticsCommand is `bridge consume analytics --config FILE`.
func consumeAnalyticsCommand() *cobra.Command {
	return groupCommand("analytics", "Keep hourly post-outcome aggregates in SQLite or PostgreSQL, exactly once, and serve the dashboard", config.AnalyticsGroup,
		func(ctx context.Context, cfg config.Config, log *slog.Logger) error {
			return analytics.Run(ctx, cfg, log)
		})
}
