package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/internal/app"
	"github.com/tradewind/tradewind/internal/config"
)

// newServeCmd builds the `serve` subcommand.
func newServeCmd() *cobra.Command {
	var cfg config.Config
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run Tradewind (all roles in one process by default)",
		Long: `Run the configured roles. Without NATS_URL an embedded NATS JetStream
server starts (store under the data directory). PostgreSQL comes from
DATABASE_URL, else a server on localhost:5432, else a throwaway cluster
from PostgreSQL's binaries. Migrations are applied at start.

Development mode (every listen address on loopback, as with 'make run', or
--dev): without TRADEWIND_JWT_SECRET a token key is generated in the data
directory and an all-scope API key and a demo token are printed.
Production mode (any other address): the api and ws roles refuse to start
without TRADEWIND_JWT_SECRET_FILE, TRADEWIND_JWT_SECRET or
TRADEWIND_IDP_JWKS_URL, and no key is generated or printed
(docs/security.md).

Every flag has an environment variable; see docs/configuration.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Validate(); err != nil {
				return err
			}
			log := app.NewLogger(os.Stderr, cfg.LogFormat, cfg.LogLevel)
			app.TuneGC(cfg.Roles)
			return app.Serve(cmd.Context(), cfg, log, app.Hooks{})
		},
	}
	cfg.Bind(cmd.Flags())
	return cmd
}
