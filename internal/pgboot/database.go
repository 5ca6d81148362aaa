package pgboot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATE codes EnsureDatabase cares about.
const (
	codeInvalidCatalogName = "3D000" // database does not exist
	codeDuplicateDatabase  = "42P04"
	codeUniqueViolation    = "23505" // concurrent CREATE DATABASE can report this
)

// EnsureDatabase makes sure the database named in databaseURL exists,
// creating it if needed. To create it, it connects to the maintenance
// database ("postgres", falling back to the user's default database) on the
// same server and runs CREATE DATABASE. Concurrent creators are tolerated.
func EnsureDatabase(ctx context.Context, databaseURL string) error {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		// pgconn's parse errors redact the password themselves.
		return fmt.Errorf("parse database URL: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	name := cfg.Database
	if name == "" {
		name = cfg.User // the server's default
	}

	// Fast path, which also works where the maintenance database is off
	// limits: the database already exists.
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		_ = conn.Close(ctx)
		return nil
	}
	if !hasCode(err, codeInvalidCatalogName) {
		return fmt.Errorf("connect to database %q: %w", name, err)
	}

	mconn, err := connectMaintenance(ctx, cfg)
	if err != nil {
		return fmt.Errorf("database %q does not exist; connect to the maintenance database to create it: %w", name, err)
	}
	defer func() { _ = mconn.Close(context.WithoutCancel(ctx)) }()

	_, err = mconn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	switch {
	case err == nil, hasCode(err, codeDuplicateDatabase):
		return nil
	case hasCode(err, codeUniqueViolation):
		// Lost a race with another creator inside the catalog; make sure
		// the winner's database is really there.
		var exists bool
		if qerr := mconn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); qerr == nil && exists {
			return nil
		}
		return fmt.Errorf("create database %q: %w", name, err)
	default:
		return fmt.Errorf("create database %q: %w", name, err)
	}
}

// connectMaintenance connects to "postgres" on cfg's server, or to the
// user's default database when "postgres" does not exist or is refused.
func connectMaintenance(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	var errs []error
	for _, db := range []string{"postgres", ""} {
		if db == "" && cfg.User == "postgres" {
			break // same database as the first try
		}
		mcfg := cfg.Copy()
		mcfg.Database = db
		conn, err := pgx.ConnectConfig(ctx, mcfg)
		if err == nil {
			return conn, nil
		}
		label := db
		if label == "" {
			label = cfg.User + " (the user's default)"
		}
		errs = append(errs, fmt.Errorf("database %s: %w", label, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func hasCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}
