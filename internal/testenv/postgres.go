package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tradewind/tradewind/internal/pgboot"
	"github.com/tradewind/tradewind/internal/store"
)

// DefaultTestDatabaseURL is the server used when TEST_DATABASE_URL is unset.
const DefaultTestDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// maxIdentifier is PostgreSQL's NAMEDATALEN-1.
const maxIdentifier = 63

// packageDatabaseURL is set by Main for the tests of this test binary;
// packageServerURL is the server it lives on.
var packageDatabaseURL, packageServerURL string

// noDatabase, when set, is why there is no package database (-short and no
// server): tests that need one skip with it.
var noDatabase string

// Main is called from a package's TestMain: it creates a fresh database
// named tw_<pkg>_<random> on the server from TEST_DATABASE_URL (else
// DefaultTestDatabaseURL when it answers, else a throwaway cluster: see
// serverURL), applies migrations with store.Migrate, runs the
// tests, drops the database (WITH (FORCE)) and exits with m.Run's code.
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse() // testing.Short needs the flags; m.Run does not parse again
	if testing.Short() {
		// Unit tests only: no throwaway cluster. Without a reachable
		// server the tests that need PostgreSQL skip, saying so.
		server, err := reachableServerURL()
		if err != nil {
			noDatabase = "needs PostgreSQL, skipped under -short: " + err.Error() +
				" (run PostgreSQL on 127.0.0.1:5432 or set TEST_DATABASE_URL)"
			return m.Run()
		}
		return runWithDatabase(m, server)
	}
	server, err := serverURL()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		return 1
	}
	return runWithDatabase(m, server)
}

// runWithDatabase creates, migrates and finally drops the package's
// database on server around m.Run.
func runWithDatabase(m *testing.M, server string) int {
	name, err := packageDatabaseName(os.Args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		return 1
	}
	dbURL, err := withDatabase(server, name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: TEST_DATABASE_URL %s: %v\n", pgboot.Redact(server), err)
		return 1
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	err = adminExec(ctx, server, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: create test database %s on %s (set TEST_DATABASE_URL to a PostgreSQL server that lets you create databases): %v\n",
			name, pgboot.Redact(server), err)
		return 1
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := adminExec(ctx, server, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: drop test database %s: %v\n", name, err)
		}
	}()

	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	err = store.Migrate(ctx, dbURL)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: migrate test database %s: %v\n", name, err)
		return 1
	}

	packageDatabaseURL, packageServerURL = dbURL, server
	return m.Run()
}

// DatabaseURL returns the URL of the package's database; it fails the test
// when the package's TestMain does not call Main.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	if packageDatabaseURL == "" && noDatabase != "" {
		t.Skip(noDatabase)
	}
	if packageDatabaseURL == "" {
		t.Fatal("testenv: no test database: this package needs `func TestMain(m *testing.M) { testenv.Main(m) }`")
	}
	return packageDatabaseURL
}

// FreshDatabaseURL creates a database of the test's own, migrated, and
// dropped when the test ends. Tests that run a whole system (serve, the
// saga, projections) against a new NATS server use it: the package's
// database would carry the previous run's stock, inbox and checkpoints
// into a stream that does not hold their events (go test -count=N).
func FreshDatabaseURL(t testing.TB) string {
	t.Helper()
	DatabaseURL(t) // fails without Main
	name, err := packageDatabaseName(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	dbURL, err := withDatabase(packageServerURL, name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := adminExec(ctx, packageServerURL, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := adminExec(ctx, packageServerURL, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("testenv: drop database %s: %v", name, err)
		}
	})
	if err := store.Migrate(ctx, dbURL); err != nil {
		t.Fatalf("testenv: migrate %s: %v", name, err)
	}
	return dbURL
}

// PoolOn returns a pgxpool.Pool on dbURL, closed when the test ends.
func PoolOn(t testing.TB, dbURL string) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatalf("testenv: pool on %s: %v", pgboot.Redact(dbURL), err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Pool returns a pgxpool.Pool on the package's database, closed when the
// test ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dbURL := DatabaseURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatalf("testenv: pool on %s: %v", pgboot.Redact(dbURL), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		t.Fatalf("testenv: ping %s: %v", pgboot.Redact(dbURL), err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// packageDatabaseName returns tw_<pkg>_<random> for the test binary at
// path argv0 ("/tmp/go-build.../outbox.test" gives tw_outbox_1a2b3c4d5e6f).
func packageDatabaseName(argv0 string) (string, error) {
	base := strings.ToLower(filepath.Base(argv0))
	base = strings.TrimSuffix(base, ".exe")
	base = strings.TrimSuffix(base, ".test")
	pkg := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, base)
	if strings.Trim(pkg, "_") == "" {
		pkg = "pkg"
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random database name: %w", err)
	}
	suffix := "_" + hex.EncodeToString(b)
	if room := maxIdentifier - len("tw_") - len(suffix); len(pkg) > room {
		pkg = pkg[:room]
	}
	return "tw_" + pkg + suffix, nil
}

// withDatabase returns the connection string server with its database
// replaced by name; server is a URL or a key/value string.
func withDatabase(server, name string) (string, error) {
	if !strings.Contains(server, "://") {
		return server + " dbname='" + name + "'", nil // name is [a-z0-9_]
	}
	u, err := url.Parse(server)
	if err != nil {
		return "", fmt.Errorf("parse: %w", err)
	}
	u.Path = "/" + name
	u.RawPath = ""
	q := u.Query()
	if q.Has("dbname") || q.Has("database") {
		q.Del("dbname")
		q.Del("database")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// adminExec runs one statement on the server's maintenance database.
func adminExec(ctx context.Context, server, sql string) error {
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	_, err = conn.Exec(ctx, sql)
	return err
}
