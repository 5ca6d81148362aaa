package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tradewind/tradewind/internal/testenv"
)

// tourBlock returns the fenced code block after README.md's marker
// "<!-- tour:<name>".
func tourBlock(t *testing.T, readme, name string) string {
	t.Helper()
	i := strings.Index(readme, "<!-- tour:"+name)
	if i < 0 {
		t.Fatalf("README.md has no <!-- tour:%s --> block", name)
	}
	rest := readme[i:]
	open := strings.Index(rest, "```sh\n")
	if open < 0 {
		t.Fatalf("tour:%s: no ```sh block after the marker", name)
	}
	rest = rest[open+len("```sh\n"):]
	end := strings.Index(rest, "\n```")
	if end < 0 {
		t.Fatalf("tour:%s: unterminated block", name)
	}
	return rest[:end+1]
}

// TestReadmeTourRunsAsWritten extracts the five-minute tour's commands
// from README.md (so the README cannot drift from what works) and replays
// them with bash against `make run`'s binary in a fresh directory: the
// watcher block in the background, then the main block under set -euo
// pipefail, which ends in `load && check`. The one liberty taken: load
// places fewer orders than the README's 1000 (TOUR_ORDERS, default 200),
// to bound the test's time on a shared machine.
func TestReadmeTourRunsAsWritten(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole tour, load and check included")
	}
	for _, tool := range []string{"bash", "curl", "jq", "psql"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the tour needs %s", tool)
		}
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	watch, tour := tourBlock(t, readme, "watch"), tourBlock(t, readme, "main")
	orders := os.Getenv("TOUR_ORDERS")
	if orders == "" {
		orders = "200"
	}
	load := regexp.MustCompile(`load --orders [0-9]+`)
	if !load.MatchString(tour) {
		t.Fatal("the tour no longer ends in load --orders N")
	}
	tour = load.ReplaceAllString(tour, "load --orders "+orders)

	// A fresh directory laid out as the repository's root after make run.
	dir := t.TempDir()
	bin := testenv.BuildTradewind(t)
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(dir, "bin", "tradewind")); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "TRADEWIND_JWT_SECRET", "TRADEWIND_DATA_DIR", "NATS_URL", "DATABASE_URL", "TRADEWIND_PAYMENT_URL":
			continue // make run's defaults
		}
		env = append(env, kv)
	}
	serveEnv := append(env, "DATABASE_URL="+testenv.FreshDatabaseURL(t),
		"TRADEWIND_HTTP_ADDR="+testenv.FreeAddr(t), "TRADEWIND_NATS_LISTEN="+testenv.FreeAddr(t))
	serve := exec.Command("./bin/tradewind", "serve")
	serve.Dir, serve.Env, serve.Stderr = dir, serveEnv, &testWriter{t: t}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = serve.Process.Signal(os.Interrupt); _ = serve.Wait() })
	testenv.Eventually(t, 90*time.Second, "make run's state file and development key", func() bool {
		_, e1 := os.Stat(filepath.Join(dir, ".tradewind", "state.json"))
		_, e2 := os.Stat(filepath.Join(dir, ".tradewind", "dev-api-key"))
		return e1 == nil && e2 == nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watcher := exec.CommandContext(ctx, "bash", "-c", watch)
	watcher.Dir, watcher.Env = dir, env
	watched, watchLog := &lockedBuffer{t: t}, &lockedBuffer{t: t}
	watcher.Stdout, watcher.Stderr = watched, watchLog
	if err := watcher.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = watcher.Wait() })
	testenv.Eventually(t, 30*time.Second, "the watcher subscribed", func() bool {
		return strings.Contains(watchLog.String(), "watching EVENTS")
	})

	run := exec.Command("bash", "-c", "set -euo pipefail\n"+tour)
	run.Dir, run.Env = dir, env
	out := &lockedBuffer{t: t}
	run.Stdout, run.Stderr = out, out
	start := time.Now()
	if err := run.Run(); err != nil {
		t.Fatalf("the README tour failed after %s: %v", time.Since(start).Round(time.Second), err)
	}
	t.Logf("the README tour passed in %s", time.Since(start).Round(time.Second))
	for _, want := range []string{`"status": "pending"`, "order_id=", "position=COMMANDS:"} {
		if !strings.Contains(out.String(), want) && (want != `"status": "pending"` || !strings.Contains(out.String(), `"status": "confirmed"`)) {
			t.Errorf("the tour's output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "postgres: using") {
		t.Errorf("a CLI command logged how it found PostgreSQL")
	}
	testenv.Eventually(t, 30*time.Second, "the watcher shows the saga's events", func() bool {
		return strings.Contains(watched.String(), "com.tradewind.orders.confirmed")
	})
}
