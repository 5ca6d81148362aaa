package testenv

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestThrowawayServerWhenNoneAnswers: with no server to use, the tests get
// a cluster started from PostgreSQL's binaries, on which they can create
// databases; a second call reuses it.
func TestThrowawayServerWhenNoneAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	if _, err := exec.LookPath("initdb"); err != nil {
		if _, err := os.Stat("/usr/lib/postgresql"); err != nil {
			t.Skip("no PostgreSQL server binaries on this machine")
		}
	}
	dir, err := os.MkdirTemp("", "tw-testenv-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the postgres OS user runs the cluster when we are root
		t.Fatal(err)
	}
	res, err := throwawayServer(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = res.Stop(context.Background()) })
	again, err := throwawayServer(dir)
	if err != nil || again.URL != res.URL {
		t.Fatalf("second call: %v, URL %q want %q", err, again.URL, res.URL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := adminExec(ctx, res.URL, "CREATE DATABASE tw_fallback_probe"); err != nil {
		t.Fatalf("create a test database on the throwaway cluster: %v", err)
	}
	conn, err := pgx.Connect(ctx, mustWithDatabase(t, res.URL, "tw_fallback_probe"))
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(ctx)
}

func mustWithDatabase(t *testing.T, server, name string) string {
	t.Helper()
	u, err := withDatabase(server, name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
