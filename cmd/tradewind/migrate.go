package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/internal/app"
	"github.com/tradewind/tradewind/internal/pgboot"
	"github.com/tradewind/tradewind/internal/store"
)

// newMigrateCmd builds the `migrate` subcommand.
func newMigrateCmd() *cobra.Command {
	var databaseURL, dataDir string
	var down, status bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations (or roll back one with --down)",
		Long: `Apply every pending migration to the Tradewind database, creating the
database if it is missing. The database comes from --database-url /
DATABASE_URL, else a running system's state file, else localhost:5432.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			res, err := resolveDatabase(ctx, databaseURL, dataDir)
			if err != nil {
				return err
			}
			defer func() { _ = res.Stop(ctx) }()
			out := cmd.OutOrStdout()
			switch {
			case status:
				st, err := store.Status(ctx, res.URL)
				if err != nil {
					return err
				}
				for _, s := range st {
					fmt.Fprintf(out, "%05d  %-8s  %s\n", s.Source.Version, s.State, s.Source.Path)
				}
				return nil
			case down:
				if err := store.MigrateDown(ctx, res.URL); err != nil {
					return err
				}
				fmt.Fprintln(out, "rolled back one migration on", pgboot.Redact(res.URL))
				return nil
			}
			if err := store.Migrate(ctx, res.URL); err != nil {
				return err
			}
			fmt.Fprintln(out, "migrations applied to", pgboot.Redact(res.URL))
			return nil
		},
	}
	cmd.Flags().StringVar(&databaseURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (env DATABASE_URL)")
	cmd.Flags().StringVar(&dataDir, "data-dir", envOr("TRADEWIND_DATA_DIR", "./.tradewind"), "data directory (env TRADEWIND_DATA_DIR)")
	cmd.Flags().BoolVar(&down, "down", false, "roll back the newest migration")
	cmd.Flags().BoolVar(&status, "status", false, "list migrations and whether each is applied")
	return cmd
}

// resolveDatabase finds the database a command works on: databaseURL
// (--database-url / DATABASE_URL), else a running system's state file,
// else localhost:5432 (pgboot.Resolve). The caller stops the result.
func resolveDatabase(ctx context.Context, databaseURL, dataDir string) (*pgboot.Result, error) {
	if databaseURL == "" {
		if st, err := app.ReadState(dataDir); err == nil {
			databaseURL = st.DatabaseURL
		}
	}
	return pgboot.Resolve(ctx, pgboot.Options{DatabaseURL: databaseURL, DataDir: dataDir})
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}
