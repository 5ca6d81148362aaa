package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/user"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/internal/app"
	"github.com/tradewind/tradewind/internal/pgboot"
)

// newResetCmd is `make clean`'s local state half: the data directory and
// the database go together, since the database's checkpoints, inbox and
// stock refer to the stream in the data directory's NATS store. Removing
// one and keeping the other leaves a read side that refers to a stream
// that is gone (which serve then refuses: see projector.CheckStream).
func newResetCmd() *cobra.Command {
	var dbURL, dataDir string
	var yes bool
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Remove local state: the data directory and the tradewind database (development)",
		Long: `Remove what a 'make run' system left behind, so that the next one starts
empty: the data directory (the embedded NATS store, a throwaway PostgreSQL
cluster, the development keys) and the Tradewind database on the server
serve would use (DATABASE_URL, else localhost:5432). A database is dropped
only when it holds Tradewind's tables. Refuses while a system is running.`,
		Example: `  tradewind reset --yes   # what 'make clean' runs`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if st, err := app.ReadState(dataDir); err == nil {
				return fmt.Errorf("a system is running (pid %d, %s): stop it first", st.PID, st.HTTPURL)
			}
			if !yes {
				return errors.New("this deletes local data; run again with --yes")
			}
			ctx := cmd.Context()
			if err := dropDatabase(ctx, out, dbURL); err != nil {
				return err
			}
			if _, err := os.Stat(dataDir); err == nil {
				if err := os.RemoveAll(dataDir); err != nil {
					return fmt.Errorf("remove %s: %w", dataDir, err)
				}
				fmt.Fprintf(out, "removed %s (embedded NATS store, throwaway PostgreSQL cluster, development keys)\n", dataDir)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dbURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (env DATABASE_URL; default: localhost:5432, database tradewind)")
	cmd.Flags().StringVar(&dataDir, "data-dir", envOr("TRADEWIND_DATA_DIR", "./.tradewind"), "data directory (env TRADEWIND_DATA_DIR)")
	cmd.Flags().BoolVar(&yes, "yes", false, "really delete")
	return cmd
}

// dropDatabase drops the database serve would use (DATABASE_URL, else
// tradewind on localhost:5432) when it holds Tradewind's tables. A
// throwaway cluster lives in the data directory: it goes with it. Nothing
// is created on the way (pgboot.Resolve would create the database).
func dropDatabase(ctx context.Context, out io.Writer, dbURL string) error {
	candidates := []string{dbURL}
	if dbURL == "" {
		candidates = nil
		if u, err := user.Current(); err == nil {
			candidates = append(candidates, "postgres://"+url.PathEscape(u.Username)+"@127.0.0.1:5432/tradewind?sslmode=disable")
		}
		candidates = append(candidates, "postgres://postgres@127.0.0.1:5432/tradewind?sslmode=disable")
	}
	var errs []error
	for _, c := range candidates {
		cfg, err := pgx.ParseConfig(c)
		if err != nil {
			return fmt.Errorf("database URL: %w", err)
		}
		cfg.ConnectTimeout = 3 * time.Second
		name := cfg.Database
		admin := cfg.Copy()
		admin.Database = "postgres"
		conn, err := pgx.ConnectConfig(ctx, admin)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
			return fmt.Errorf("look for database %s: %w", name, err)
		}
		where := fmt.Sprintf("%s on %s:%d", name, cfg.Host, cfg.Port)
		if !exists {
			fmt.Fprintf(out, "no database %s: nothing to drop\n", where)
			return nil
		}
		db, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return fmt.Errorf("connect %s: %w", pgboot.Redact(c), err)
		}
		var ours bool
		err = db.QueryRow(ctx, `SELECT to_regclass('core.inbox') IS NOT NULL AND to_regclass('public.projection_checkpoints') IS NOT NULL`).Scan(&ours)
		_ = db.Close(ctx)
		if err != nil {
			return fmt.Errorf("inspect %s: %w", where, err)
		}
		if !ours {
			fmt.Fprintf(out, "database %s holds no Tradewind tables: left alone\n", where)
			return nil
		}
		if _, err := conn.Exec(ctx, `DROP DATABASE `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			return fmt.Errorf("drop database %s: %w (drop it by hand: psql -d postgres -c 'DROP DATABASE %s WITH (FORCE)')", where, err, name)
		}
		fmt.Fprintf(out, "dropped database %s (read models, inbox, outbox, stock, API keys)\n", where)
		return nil
	}
	if dbURL != "" {
		return fmt.Errorf("connect to DATABASE_URL %s: %w", pgboot.Redact(dbURL), errors.Join(errs...))
	}
	fmt.Fprintln(out, "no PostgreSQL server on localhost:5432: no database to drop (a throwaway cluster lives in the data directory)")
	return nil
}
