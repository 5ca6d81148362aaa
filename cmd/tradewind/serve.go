package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/internal/app"
	"github.com/tradewind/tradewind/internal/config"
)

func init() {
	commands = append(commands, func() *cobra.Command {
		var cfg config.Config
		cmd := &cobra.Command{
			Use:   "serve",
			Short: "Run Tradewind (all roles in one process by default)",
			Long: `Run the configured roles. Without NATS_URL an embedded NATS JetStream
server starts (store under the data directory). PostgreSQL comes from
DATABASE_URL, else a server on localhost:5432, else a throwaway cluster
from PostgreSQL's binaries. Migrations are applied at start.

Every flag has an environment variable; see docs/configuration.md.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if err := cfg.Validate(); err != nil {
					return err
				}
				log := app.NewLogger(os.Stderr, cfg.LogFormat, cfg.LogLevel)
				return app.Serve(cmd.Context(), cfg, log, app.Hooks{})
			},
		}
		cfg.Bind(cmd.Flags())
		return cmd
	})
}
