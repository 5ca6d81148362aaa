// Package pgboot finds a PostgreSQL server for Tradewind to use.
//
// Resolve tries, in order:
//
//  1. DATABASE_URL (Options.DatabaseURL), used as is;
//  2. a server answering on localhost:5432 with trust authentication for the
//     current OS user or for "postgres";
//  3. a private throwaway cluster under DataDir/postgres, created with
//     PostgreSQL's own initdb and started with pg_ctl;
//
// and otherwise fails with an error wrapping ErrNoPostgres. In every case the
// Tradewind database exists when Resolve returns.
package pgboot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/user"
	"time"
)

// Sources reported in Result.Source.
const (
	SourceDatabaseURL = "DATABASE_URL"
	SourceLocalServer = "local server"
	SourceCluster     = "throwaway cluster"
)

const (
	defaultDBName    = "tradewind"
	defaultLocalAddr = "127.0.0.1:5432"
	probeTimeout     = 2 * time.Second
)

// ErrNoPostgres is returned (wrapped) by Resolve when no PostgreSQL could be
// found or started.
var ErrNoPostgres = errors.New("no PostgreSQL server available; do one of: " +
	"set DATABASE_URL to a PostgreSQL connection string, " +
	"run a PostgreSQL server on localhost:5432 that trusts the current OS user or the \"postgres\" role, " +
	"or install PostgreSQL's server binaries (initdb, pg_ctl), e.g. `apt-get install postgresql`, " +
	"so that a throwaway cluster can be started in the data directory")

// Options configures Resolve.
type Options struct {
	// DatabaseURL comes from DATABASE_URL; when set it is used as is (after
	// EnsureDatabase).
	DatabaseURL string
	// DataDir is Tradewind's data directory; the throwaway cluster lives in
	// DataDir/postgres.
	DataDir string
	// DBName is the Tradewind database name; default "tradewind".
	DBName string
	// Logger receives progress messages; nil means slog.Default().
	Logger *slog.Logger
	// LocalAddr is the address probed for a local server; default
	// "127.0.0.1:5432".
	LocalAddr string
}

// Result describes the PostgreSQL server Resolve settled on.
type Result struct {
	// URL is a connection string to the Tradewind database, which exists.
	URL string
	// Source is one of SourceDatabaseURL, SourceLocalServer, SourceCluster.
	Source string
	// Stop stops the throwaway cluster (pg_ctl stop -m fast); it is a no-op
	// for the other sources. It is never nil.
	Stop func(context.Context) error
}

func noStop(context.Context) error { return nil }

func (o Options) withDefaults() Options {
	if o.DBName == "" {
		o.DBName = defaultDBName
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LocalAddr == "" {
		o.LocalAddr = defaultLocalAddr
	}
	return o
}

// Resolve finds (or starts) a PostgreSQL server and makes sure the Tradewind
// database exists on it. See the package documentation for the order.
func Resolve(ctx context.Context, o Options) (*Result, error) {
	o = o.withDefaults()
	log := o.Logger

	// 1. DATABASE_URL.
	if o.DatabaseURL != "" {
		if err := EnsureDatabase(ctx, o.DatabaseURL); err != nil {
			return nil, fmt.Errorf("pgboot: using DATABASE_URL %s: %w", Redact(o.DatabaseURL), err)
		}
		log.Info("postgres: using DATABASE_URL", "url", Redact(o.DatabaseURL))
		return &Result{URL: o.DatabaseURL, Source: SourceDatabaseURL, Stop: noStop}, nil
	}

	// 2. A server on localhost:5432.
	dbURL, localErr := probeLocal(ctx, o)
	if localErr == nil {
		log.Info("postgres: using local server", "url", Redact(dbURL))
		return &Result{URL: dbURL, Source: SourceLocalServer, Stop: noStop}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pgboot: %w", err)
	}
	log.Info("postgres: no usable local server", "addr", o.LocalAddr, "reason", localErr.Error())

	// 3. A throwaway cluster from PostgreSQL's own binaries.
	bins, tried := findBinaries(ctx)
	if len(bins) == 0 {
		return nil, fmt.Errorf("%w (local server on %s: %v; no initdb and pg_ctl found in %v)",
			ErrNoPostgres, o.LocalAddr, localErr, tried)
	}
	res, err := startCluster(ctx, o, bins)
	if err != nil {
		return nil, fmt.Errorf("pgboot: throwaway cluster: %w", err)
	}
	return res, nil
}

// probeLocal looks for a server on o.LocalAddr that trusts the current OS
// user or "postgres", makes sure o.DBName exists there and returns its URL.
func probeLocal(ctx context.Context, o Options) (string, error) {
	d := net.Dialer{Timeout: probeTimeout}
	c, err := d.DialContext(ctx, "tcp", o.LocalAddr)
	if err != nil {
		return "", fmt.Errorf("nothing answers: %w", err)
	}
	_ = c.Close()

	var errs []error
	for _, u := range probeUsers() {
		dbURL := buildURL(u, o.LocalAddr, o.DBName)
		pctx, cancel := context.WithTimeout(ctx, 4*probeTimeout)
		err := EnsureDatabase(pctx, dbURL+"&connect_timeout=2")
		cancel()
		if err == nil {
			return dbURL, nil
		}
		errs = append(errs, fmt.Errorf("as user %q: %w", u, err))
		if ctx.Err() != nil {
			break
		}
	}
	return "", errors.Join(errs...)
}

// probeUsers returns the roles tried on the local server: the current OS
// user, then "postgres".
func probeUsers() []string {
	var users []string
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	if name != "" {
		users = append(users, name)
	}
	if name != "postgres" {
		users = append(users, "postgres")
	}
	return users
}

// buildURL returns postgres://USER@ADDR/DB?sslmode=disable.
func buildURL(userName, addr, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(userName),
		Host:     addr,
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}
