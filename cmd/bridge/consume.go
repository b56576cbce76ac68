package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// consumeCommand groups the reference consumers: `bridge consume GROUP --config FILE`.
func consumeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "consume GROUP",
		Short: "Run a reference consumer of the bridge's topics: analytics",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown consumer group %q: %w", args[0], errUsage)
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(consumeAnalyticsCommand())
	return cmd
}
