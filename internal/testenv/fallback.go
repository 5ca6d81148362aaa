package testenv

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/internal/pgboot"
)

// testClusterDir holds the throwaway PostgreSQL cluster `make test` starts
// on a machine with no server (shared by every test package of a run and
// by later runs; it keeps running after the tests, like a dev server).
var testClusterDir = filepath.Join(os.TempDir(), "tradewind-test-postgres")

// serverURL is the PostgreSQL server test databases are created on:
// TEST_DATABASE_URL when set; else the default local server when it
// answers; else a throwaway cluster started from PostgreSQL's binaries,
// so that `make test` needs nothing running on a fresh machine.
func serverURL() (string, error) {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, DefaultTestDatabaseURL); err == nil {
		_ = conn.Close(ctx)
		return DefaultTestDatabaseURL, nil
	}
	res, err := throwawayServer(testClusterDir)
	if err != nil {
		return "", err
	}
	return res.URL, nil
}

// reachableServerURL is TEST_DATABASE_URL, else DefaultTestDatabaseURL,
// when a connection to it succeeds within 3 seconds.
func reachableServerURL() (string, error) {
	u := os.Getenv("TEST_DATABASE_URL")
	if u == "" {
		u = DefaultTestDatabaseURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return "", fmt.Errorf("no PostgreSQL at %s", pgboot.Redact(u))
	}
	_ = conn.Close(ctx)
	return u, nil
}

// throwawayServer starts (or reuses) the shared test cluster. Test binaries
// run in parallel, so a file lock makes one of them start it.
func throwawayServer(dir string) (*pgboot.Result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := pgboot.Resolve(ctx, pgboot.Options{
		DataDir: dir, DBName: "postgres",
		// The default server did not answer: go straight to the cluster.
		LocalAddr: "127.0.0.1:1",
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, fmt.Errorf("no PostgreSQL for the tests (set TEST_DATABASE_URL, run a server on 127.0.0.1:5432 that trusts the postgres role, or install PostgreSQL's server binaries): %w", err)
	}
	return res, nil
}
