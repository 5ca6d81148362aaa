package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/internal/pgboot"
	"github.com/tradewind/tradewind/internal/store"
)

// newAnalystRoleCmd builds the `analyst-role` subcommand.
func newAnalystRoleCmd() *cobra.Command {
	var databaseURL, dataDir string
	cmd := &cobra.Command{
		Use:   "analyst-role NAME",
		Short: "Create (or refresh) a read-only PostgreSQL role for analysts",
		Long: `Create the PostgreSQL role NAME if it does not exist and let it read the
read models and nothing else: SELECT on every view of schema public and on
projection_checkpoints and projection_rejects; no access to core (saga
state), auth or proj, no writes. Run it again after an upgrade that adds
read models.

The role can log in only when TRADEWIND_ANALYST_PASSWORD is set (read from
the environment, never a flag, so it does not show in the process list);
otherwise it is NOLOGIN, for granting to personal roles
(GRANT NAME TO alice). The database comes from --database-url /
DATABASE_URL, else a running system's state file, else localhost:5432; its
user must be allowed to create roles.`,
		Example: `  TRADEWIND_ANALYST_PASSWORD=… tradewind analyst-role analyst
  psql "postgres://analyst:…@localhost:5432/tradewind" -c 'SELECT * FROM sales_daily'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			res, err := resolveDatabase(ctx, databaseURL, dataDir)
			if err != nil {
				return err
			}
			defer func() { _ = res.Stop(ctx) }()
			pool, err := store.Open(ctx, res.URL)
			if err != nil {
				return err
			}
			defer pool.Close()
			password := os.Getenv("TRADEWIND_ANALYST_PASSWORD")
			views, err := store.GrantAnalyst(ctx, pool, args[0], password)
			if err != nil {
				return err
			}
			login := "NOLOGIN (set TRADEWIND_ANALYST_PASSWORD to let it log in)"
			if password != "" {
				login = "LOGIN with the password from TRADEWIND_ANALYST_PASSWORD"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "role %s reads %d views and %d tables of %s; %s\n",
				args[0], views, len(store.AnalystTables), pgboot.Redact(res.URL), login)
			return nil
		},
	}
	cmd.Flags().StringVar(&databaseURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (env DATABASE_URL)")
	cmd.Flags().StringVar(&dataDir, "data-dir", envOr("TRADEWIND_DATA_DIR", "./.tradewind"), "data directory (env TRADEWIND_DATA_DIR)")
	return cmd
}
