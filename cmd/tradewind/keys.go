package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/internal/app"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/pgboot"
	"github.com/tradewind/tradewind/internal/store"
)

// dbFlags find the database as `migrate` does.
type dbFlags struct{ url, dataDir string }

func (f *dbFlags) bind(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.url, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (env DATABASE_URL; default: the running system's state file, else localhost:5432)")
	cmd.PersistentFlags().StringVar(&f.dataDir, "data-dir", envOr("TRADEWIND_DATA_DIR", "./.tradewind"), "data directory of the running system (env TRADEWIND_DATA_DIR)")
}

// keys opens the API key store; call the returned function when done.
func (f *dbFlags) keys(ctx context.Context) (*auth.Keys, func(), error) {
	url := f.url
	if url == "" {
		if st, err := app.ReadState(f.dataDir); err == nil {
			url = st.DatabaseURL
		}
	}
	res, err := pgboot.Resolve(ctx, pgboot.Options{DatabaseURL: url, DataDir: f.dataDir, Logger: quietLog()})
	if err != nil {
		return nil, nil, err
	}
	if err := store.Migrate(ctx, res.URL); err != nil {
		_ = res.Stop(ctx)
		return nil, nil, err
	}
	pool, err := store.Open(ctx, res.URL)
	if err != nil {
		_ = res.Stop(ctx)
		return nil, nil, err
	}
	keys, err := auth.NewKeys(pool)
	if err != nil {
		pool.Close()
		_ = res.Stop(ctx)
		return nil, nil, err
	}
	return keys, func() { pool.Close(); _ = res.Stop(context.WithoutCancel(ctx)) }, nil
}

// newKeysCmd builds the `keys` subcommand.
func newKeysCmd() *cobra.Command {
	var db dbFlags
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage producer services' API keys (create, list, revoke)",
	}
	db.bind(cmd)

	var name string
	var scopes []string
	var rate float64
	var burst int
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API key and print it once",
		Long: `Create an API key for a producer service. The key is printed once and
only its hash is stored: keep it in the service's secret store.

Scopes name the commands the key may send: ` + strings.Join(auth.KnownScopes, ", ") + `.`,
		Example: `  tradewind keys create --name storefront --scopes orders:write
  tradewind keys create --name erp --scopes catalog:write,inventory:write --rate 500 --burst 1000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, done, err := db.keys(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			plain, k, err := keys.Create(cmd.Context(), auth.NewKeyInput{Name: name, Scopes: scopes, RatePerSecond: rate, Burst: burst})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "created key %s (%s) with scopes %s; it is shown once:\n", k.ID, k.Name, strings.Join(k.Scopes, ","))
			fmt.Fprintln(cmd.OutOrStdout(), plain)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "who the key is for (required)")
	create.Flags().StringSliceVar(&scopes, "scopes", nil, "scopes, comma-separated (required)")
	create.Flags().Float64Var(&rate, "rate", 0, "this key's requests per second per route class (default: TRADEWIND_RATE_LIMIT)")
	create.Flags().IntVar(&burst, "burst", 0, "this key's burst (with --rate)")
	_ = create.MarkFlagRequired("name")
	_ = create.MarkFlagRequired("scopes")

	list := &cobra.Command{
		Use:   "list",
		Short: "List API keys (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, done, err := db.keys(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			all, err := keys.List(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tLIMIT\tCREATED\tREVOKED")
			for _, k := range all {
				limit, revoked := "default", ""
				if k.RatePerSecond > 0 {
					limit = fmt.Sprintf("%g/s burst %d", k.RatePerSecond, k.Burst)
				}
				if k.RevokedAt != nil {
					revoked = k.RevokedAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), limit, k.CreatedAt.Format(time.RFC3339), revoked)
			}
			return tw.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke KEY_ID",
		Short: "Revoke an API key (every gateway refuses it within 10 seconds)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, done, err := db.keys(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if err := keys.Revoke(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "revoked", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
