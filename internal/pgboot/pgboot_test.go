package pgboot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// These tests use real PostgreSQL: the server named by TEST_DATABASE_URL
// (default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable) and
// PostgreSQL's server binaries for the throwaway cluster.

const defaultTestServerURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

func testServerURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return defaultTestServerURL
}

// requireServer returns a connection to the test server's maintenance
// database. Without a server the test is skipped, except under CI.
func requireServer(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testServerURL())
	if err != nil {
		msg := "no PostgreSQL server at " + Redact(testServerURL()) + " (set TEST_DATABASE_URL): " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func randomName(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// withDatabase returns the test server URL pointing at database name.
func withDatabase(t *testing.T, serverURL, name string) string {
	t.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatalf("parse %s: %v", Redact(serverURL), err)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

func dropDatabase(t *testing.T, admin *pgx.Conn, name string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %q: %v", name, err)
		}
	})
}

func databaseExists(t *testing.T, admin *pgx.Conn, name string) bool {
	t.Helper()
	var exists bool
	err := admin.QueryRow(context.Background(),
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists)
	if err != nil {
		t.Fatal(err)
	}
	return exists
}

// currentDatabase connects to dbURL and returns current_database() after a
// SELECT 1.
func currentDatabase(t *testing.T, dbURL string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect to %s: %v", Redact(dbURL), err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	return db
}

// unusedAddr returns a loopback address nothing listens on.
func unusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}

func TestResolveDatabaseURLCreatesDatabase(t *testing.T) {
	admin := requireServer(t)
	// A name that needs quoting.
	name := randomName(t, `tw_pgboot_URL "q" `)
	dropDatabase(t, admin, name)
	dbURL := withDatabase(t, testServerURL(), name)

	res, err := Resolve(context.Background(), Options{
		DatabaseURL: dbURL,
		DataDir:     t.TempDir(),
		LocalAddr:   unusedAddr(t), // must not matter
		Logger:      testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != SourceDatabaseURL || res.URL != dbURL {
		t.Fatalf("got %q from %q, want %q from %q", Redact(res.URL), res.Source, Redact(dbURL), SourceDatabaseURL)
	}
	if err := res.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !databaseExists(t, admin, name) {
		t.Fatalf("database %q was not created", name)
	}
	if got := currentDatabase(t, res.URL); got != name {
		t.Fatalf("current_database() = %q, want %q", got, name)
	}

	// Again: the database exists now.
	if _, err := Resolve(context.Background(), Options{DatabaseURL: dbURL, Logger: testLogger(t)}); err != nil {
		t.Fatalf("second Resolve: %v", err)
	}
}

func TestEnsureDatabaseConcurrent(t *testing.T) {
	admin := requireServer(t)
	name := randomName(t, "tw_pgboot_conc_")
	dropDatabase(t, admin, name)
	dbURL := withDatabase(t, testServerURL(), name)

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = EnsureDatabase(context.Background(), dbURL) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if !databaseExists(t, admin, name) {
		t.Fatalf("database %q was not created", name)
	}
}

func TestEnsureDatabaseBadServer(t *testing.T) {
	err := EnsureDatabase(context.Background(), "postgres://nobody:s3cret@"+unusedAddr(t)+"/x?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("EnsureDatabase on a closed port succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error shows the password: %v", err)
	}
}

func TestResolveLocalServer(t *testing.T) {
	admin := requireServer(t)
	cfg := admin.Config()
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	if strings.HasPrefix(cfg.Host, "/") {
		t.Skip("TEST_DATABASE_URL names a unix socket; the local server probe uses TCP")
	}
	name := randomName(t, "tw_pgboot_local_")
	dropDatabase(t, admin, name)

	res, err := Resolve(context.Background(), Options{
		DataDir:   t.TempDir(),
		DBName:    name,
		LocalAddr: addr,
		Logger:    testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Source != SourceLocalServer {
		t.Fatalf("Source = %q, want %q (URL %s)", res.Source, SourceLocalServer, Redact(res.URL))
	}
	wantPrefix := "postgres://"
	wantSuffix := "@" + addr + "/" + name + "?sslmode=disable"
	if !strings.HasPrefix(res.URL, wantPrefix) || !strings.HasSuffix(res.URL, wantSuffix) {
		t.Fatalf("URL = %q, want postgres://USER%s", res.URL, wantSuffix)
	}
	if got := currentDatabase(t, res.URL); got != name {
		t.Fatalf("current_database() = %q, want %q", got, name)
	}
	if err := res.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// clusterDataDir returns a fresh data directory that the postgres OS user
// can reach when we run as root (t.TempDir's directories are 0700).
func clusterDataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if isRoot() {
		for _, d := range []string{dir, filepath.Dir(dir)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func TestResolveThrowawayCluster(t *testing.T) {
	ctx := context.Background()
	if bins, tried := findBinaries(ctx); len(bins) == 0 {
		t.Skipf("no PostgreSQL server binaries (initdb, pg_ctl) in %v; install them (apt-get install postgresql) to run this test", tried)
	}
	// A space and a quote exercise the quoting of pg_ctl's -o options.
	dataDir := filepath.Join(clusterDataDir(t), "data dir's")
	o := Options{
		DataDir:   dataDir,
		DBName:    "tw_cluster_test",
		LocalAddr: unusedAddr(t), // force the throwaway cluster
		Logger:    testLogger(t),
	}
	if isRoot() {
		if _, err := lookupRunAsUser(); err != nil {
			_, err := Resolve(ctx, o)
			if err == nil || !strings.Contains(err.Error(), `no non-root OS user "postgres"`) {
				t.Fatalf("as root without a postgres OS user: got %v, want an error saying so", err)
			}
			t.Skipf("running as root without a postgres OS user: Resolve says so (%v)", err)
		}
	}

	begin := time.Now()
	res, err := Resolve(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = res.Stop(context.Background()) })
	t.Logf("first start (initdb + start) took %v", time.Since(begin))
	if res.Source != SourceCluster {
		t.Fatalf("Source = %q, want %q", res.Source, SourceCluster)
	}
	clusterDir := filepath.Join(dataDir, "postgres")
	for _, f := range []string{"PG_VERSION", "tradewind.port", "tradewind.log", "postmaster.pid"} {
		if _, err := os.Stat(filepath.Join(clusterDir, f)); err != nil {
			t.Errorf("after start: %v", err)
		}
	}
	if got := currentDatabase(t, res.URL); got != o.DBName {
		t.Fatalf("current_database() = %q, want %q", got, o.DBName)
	}
	portData, err := os.ReadFile(filepath.Join(clusterDir, "tradewind.port"))
	if err != nil {
		t.Fatal(err)
	}
	port := strings.TrimSpace(string(portData))
	if !strings.Contains(res.URL, "@127.0.0.1:"+port+"/") {
		t.Fatalf("URL %s does not use the remembered port %s", res.URL, port)
	}

	// Leave a mark to recognise the same cluster later.
	conn, err := pgx.Connect(ctx, res.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE marker (id int)"); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(ctx)

	// Resolve while it runs: reuses the running server.
	begin = time.Now()
	running, err := Resolve(ctx, o)
	if err != nil {
		t.Fatalf("Resolve while running: %v", err)
	}
	t.Logf("reuse of the running cluster took %v", time.Since(begin))
	if running.URL != res.URL || running.Source != SourceCluster {
		t.Fatalf("Resolve while running gave %s from %q, want %s", running.URL, running.Source, res.URL)
	}

	begin = time.Now()
	if err := res.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("stop took %v", time.Since(begin))
	if _, err := os.Stat(filepath.Join(clusterDir, "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("postmaster.pid after Stop: %v", err)
	}
	if err := res.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// Resolve after a stop: the same cluster (no initdb), the same port.
	begin = time.Now()
	again, err := Resolve(ctx, o)
	if err != nil {
		t.Fatalf("Resolve after Stop: %v", err)
	}
	t.Cleanup(func() { _ = again.Stop(context.Background()) })
	t.Logf("restart took %v", time.Since(begin))
	if again.URL != res.URL {
		t.Fatalf("restart URL = %s, want %s (same port)", again.URL, res.URL)
	}
	conn, err = pgx.Connect(ctx, again.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM marker").Scan(&n); err != nil {
		t.Fatalf("marker table gone after restart (cluster not reused?): %v", err)
	}
	_ = conn.Close(ctx)
	if err := again.Stop(ctx); err != nil {
		t.Fatalf("Stop after restart: %v", err)
	}
}

// A data directory too deep for a unix socket path: the cluster listens on
// TCP only.
func TestResolveThrowawayClusterLongPath(t *testing.T) {
	ctx := context.Background()
	if bins, tried := findBinaries(ctx); len(bins) == 0 {
		t.Skipf("no PostgreSQL server binaries (initdb, pg_ctl) in %v; install them (apt-get install postgresql) to run this test", tried)
	}
	if isRoot() {
		if _, err := lookupRunAsUser(); err != nil {
			t.Skip("running as root without a postgres OS user (see TestResolveThrowawayCluster)")
		}
	}
	dataDir := filepath.Join(clusterDataDir(t), strings.Repeat("d", 60), strings.Repeat("e", 60))
	res, err := Resolve(ctx, Options{DataDir: dataDir, LocalAddr: unusedAddr(t), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = res.Stop(context.Background()) })
	if got := currentDatabase(t, res.URL); got != "tradewind" {
		t.Fatalf("current_database() = %q, want tradewind", got)
	}
	if err := res.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func TestResolveNoPostgres(t *testing.T) {
	empty := t.TempDir()
	saved := binDirCandidates
	binDirCandidates = func() []string { return []string{empty} }
	t.Cleanup(func() { binDirCandidates = saved })

	_, err := Resolve(context.Background(), Options{
		DataDir:   t.TempDir(),
		LocalAddr: unusedAddr(t),
		Logger:    testLogger(t),
	})
	if !errors.Is(err, ErrNoPostgres) {
		t.Fatalf("err = %v, want one wrapping ErrNoPostgres", err)
	}
	for _, want := range []string{"DATABASE_URL", "localhost:5432", "initdb", "pg_ctl", "apt-get install postgresql"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	t.Log(err)
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"postgres://u:secret@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgres://h/db", "postgres://h/db"},
		{"postgresql://u:p%40ss@h/db", "postgresql://u:xxxxx@h/db"},
		{"postgres://u@h/db?password=secret&sslmode=disable", "postgres://u@h/db?password=xxxxx&sslmode=disable"},
		{"postgres://u:secret@h1:5432,h2:5432/db", "postgres://u:xxxxx@h1:5432,h2:5432/db"},
		{"host=h user=u password=secret dbname=db", "host=h user=u password=xxxxx dbname=db"},
		{"host=h password = 'se cret' dbname=db", "host=h password = xxxxx dbname=db"},
		{"host=h dbname=db", "host=h dbname=db"},
	} {
		got := Redact(tc.in)
		if got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(got, "secret") || strings.Contains(got, "se cret") {
			t.Errorf("Redact(%q) leaks the password: %q", tc.in, got)
		}
	}
}

func TestShellQuote(t *testing.T) {
	if got, want := shellQuote(`/a b/it's`), `'/a b/it'\''s'`; got != want {
		t.Fatalf("shellQuote = %s, want %s", got, want)
	}
}
