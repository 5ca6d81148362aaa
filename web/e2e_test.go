package web_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/app"
	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/web"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const e2eKey = "e2e-test-key-0123456789abcdef012345"

// chromium finds the browser and the Node.js driver, or skips: locally
// they may be missing; .ci/run installs both.
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no Chromium at %s (apt-get install chromium, or set CHROMIUM): browser test skipped", path)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("no node on PATH: browser test skipped")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core")); err != nil {
		t.Skip("web/node_modules missing (run npm ci in web/): browser test skipped")
	}
	return path
}

func baseConfig(t *testing.T, natsURL string, roles ...string) config.Config {
	t.Helper()
	var cfg config.Config
	fs := pflag.NewFlagSet("e2e", pflag.ContinueOnError)
	cfg.Bind(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	cfg.NATSURL = natsURL
	// A database of its own for the test's new NATS: the package's would
	// carry a previous run's checkpoints into a stream that does not hold
	// their events (go test -count=N).
	cfg.DatabaseURL = testenv.FreshDatabaseURL(t)
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Roles = roles
	cfg.JWTSecret = e2eKey
	cfg.LogLevel = "warn"
	return cfg
}

// serve runs app.Serve until the returned stop is called.
func serve(t *testing.T, cfg config.Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- app.Serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Hooks{Started: func(app.State) { close(started) }})
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("serve %v: %v", cfg.Roles, err)
	case <-time.After(60 * time.Second):
		t.Fatalf("serve %v did not start", cfg.Roles)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestBrowserSeesOrdersNotifiedAcrossAWebSocketServerRestart(t *testing.T) {
	browser := chromium(t)
	emb := testenv.NATS(t)
	// The page orders through the gateway (POST /v1/orders on its own
	// origin: the api role beside ws), which prices the order from the
	// catalog read model (the projections role): the demo's product must
	// be in it. Both processes share the test's fresh database.
	cfg := baseConfig(t, emb.URL, "orders", "notifier", "relay", "projections")
	pool := testenv.PoolOn(t, cfg.DatabaseURL)
	serve(t, cfg)
	_, js := testenv.Connect(t, emb.URL)
	product, err := events.New(events.ProductUpsertedV1, web.DemoSKU, events.Product{SKU: web.DemoSKU, Name: "Kite", Price: 1250, Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := broker.Publish(context.Background(), js, product); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the demo product in the catalog read model", func() bool {
		var n int
		_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM public.product_search WHERE sku = $1 AND price = 1250`, web.DemoSKU).Scan(&n)
		return n == 1
	})
	wsCfg := baseConfig(t, emb.URL, "ws", "api")
	wsCfg.DatabaseURL = cfg.DatabaseURL
	wsCfg.HTTPAddr = testenv.FreeAddr(t)
	stopWS := serve(t, wsCfg)

	token, _, err := auth.Issue([]byte(e2eKey), "e2e-"+time.Now().Format("150405.000"), auth.RoleCustomer, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "e2e/run.mjs", "http://"+wsCfg.HTTPAddr+"/demo#token="+token)
	cmd.Env = append(os.Environ(), "CHROMIUM="+browser)
	cmd.Stderr = testWriter{t}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var result string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		t.Log("driver:", line)
		switch {
		case line == "restart":
			stopWS() // closes every socket with 1012; the page reconnects
			serve(t, wsCfg)
			_, _ = io.WriteString(stdin, "go\n")
		case strings.HasPrefix(line, "PASS"), strings.HasPrefix(line, "FAIL"):
			result = line
		}
	}
	_ = cmd.Wait()
	if !strings.HasPrefix(result, "PASS") {
		t.Fatalf("browser check: %q", result)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
