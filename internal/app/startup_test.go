package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"

	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/testenv"
)

// retryLine is what a start-up step logs while it waits.
const retryLine = "start-up: dependency unreachable; retrying"

// serveConfig binds a configuration from flags, as the CLI does.
func serveConfig(t *testing.T, args ...string) config.Config {
	t.Helper()
	var cfg config.Config
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	cfg.Bind(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// get returns the status of GET url (0 when nothing answers).
func get(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeWaitsForNATS: a serve started while its NATS server is down
// (restarting, say) does not exit: it answers /healthz, says "not ready"
// on /readyz, logs that it waits for NATS, and once NATS comes up it
// turns ready, writes its state file and handles a command end to end.
func TestServeWaitsForNATS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	natsAddr := testenv.FreeAddr(t) // nothing listens there yet
	httpAddr, opsAddr, dataDir := testenv.FreeAddr(t), testenv.FreeAddr(t), t.TempDir()
	dbURL := testenv.FreshDatabaseURL(t)
	cfg := serveConfig(t, "--database-url", dbURL, "--data-dir", dataDir, "--http-addr", httpAddr,
		"--ops-addr", opsAddr, "--nats-url", "nats://"+natsAddr, "--roles", "api,orders,projections,relay")

	var logs lockedBuffer
	started := make(chan State, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), Hooks{Started: func(s State) { started <- s }})
	}()
	exited := func() bool { return len(done) > 0 }
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	testenv.Eventually(t, 30*time.Second, "the NATS step to log a retry (or serve to exit)", func() bool {
		return exited() || strings.Contains(logs.String(), retryLine) && strings.Contains(logs.String(), "step=NATS")
	})
	if exited() {
		t.Fatalf("serve exited while NATS was down; log:\n%s", logs.String())
	}
	if code := get("http://" + httpAddr + "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while NATS is down: %d, want 200", code)
	}
	if code := get("http://" + opsAddr + "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while NATS is down: %d, want 503", code)
	}
	if _, err := os.Stat(filepath.Join(dataDir, StateFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file while NATS is down: %v, want none", err)
	}

	// NATS comes up on the address serve waits for.
	host, portStr, _ := net.SplitHostPort(natsAddr)
	port, _ := strconv.Atoi(portStr)
	emb, err := broker.StartEmbedded(broker.EmbeddedConfig{Dir: t.TempDir(), Host: host, Port: port})
	if err != nil {
		t.Fatalf("start NATS on %s: %v", natsAddr, err)
	}
	defer emb.Shutdown()

	testenv.Eventually(t, 60*time.Second, "serve to start (or exit) once NATS is up", func() bool {
		return len(started) > 0 || exited()
	})
	if exited() {
		t.Fatalf("serve exited; log:\n%s", logs.String())
	}
	testenv.Eventually(t, 30*time.Second, "/readyz to turn 200", func() bool {
		return get("http://"+opsAddr+"/readyz") == http.StatusOK
	})
	if _, err := ReadState(dataDir); err != nil {
		t.Errorf("state file once running: %v", err)
	}

	// A command placed now is handled: the order reaches the read model.
	id, token, key := placeOrder(t, ctx, dbURL, httpAddr, "c-startup")
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/v1/orders/%s?after=%s", httpAddr, id, token), nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), id) {
		t.Fatalf("read the placed order: %d %s", resp.StatusCode, body)
	}
}

// TestServeWaitsForPostgreSQL: a serve started while PostgreSQL does not
// answer (failing over, say) waits, saying so, and runs once it does.
// PostgreSQL "comes back" as a TCP proxy to the test server, started on
// the address serve was given.
func TestServeWaitsForPostgreSQL(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	emb := testenv.NATS(t)
	u, err := url.Parse(testenv.FreshDatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	server, proxyAddr := u.Host, testenv.FreeAddr(t) // nothing listens there yet
	u.Host = proxyAddr
	opsAddr := testenv.FreeAddr(t)
	cfg := serveConfig(t, "--database-url", u.String(), "--data-dir", t.TempDir(), "--http-addr", testenv.FreeAddr(t),
		"--ops-addr", opsAddr, "--nats-url", emb.URL, "--roles", "api,relay")
	var logs lockedBuffer
	done := make(chan error, 1)
	started := make(chan State, 1)
	go func() {
		done <- Serve(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), Hooks{Started: func(s State) { started <- s }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	testenv.Eventually(t, 30*time.Second, "the PostgreSQL step to log a retry (or serve to exit)", func() bool {
		return len(done) > 0 || strings.Contains(logs.String(), retryLine) && strings.Contains(logs.String(), "step=PostgreSQL")
	})
	if len(done) > 0 {
		t.Fatalf("serve exited while PostgreSQL was down; log:\n%s", logs.String())
	}
	if code := get("http://" + opsAddr + "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while PostgreSQL is down: %d, want 503", code)
	}

	proxy(t, proxyAddr, server)
	testenv.Eventually(t, 60*time.Second, "serve to start (or exit) once PostgreSQL answers", func() bool {
		return len(started) > 0 || len(done) > 0
	})
	if len(started) == 0 {
		t.Fatalf("serve exited; log:\n%s", logs.String())
	}
	testenv.Eventually(t, 30*time.Second, "/readyz to turn 200", func() bool {
		return get("http://"+opsAddr+"/readyz") == http.StatusOK
	})
}

// proxy forwards every connection to addr to target until the test ends.
func proxy(t *testing.T, addr, target string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				go func() { _, _ = io.Copy(s, c) }()
				_, _ = io.Copy(c, s)
			}()
		}
	}()
}

// TestServeFailsFastOnARefusedNATSUser: a wrong or missing NATS password
// is not an outage to wait out: serve exits at once with what to set.
func TestServeFailsFastOnARefusedNATSUser(t *testing.T) {
	secure := testenv.NATSWithAuth(t)
	cfg := serveConfig(t, "--database-url", testenv.DatabaseURL(t), "--data-dir", t.TempDir(),
		"--http-addr", testenv.FreeAddr(t), "--ops-addr", testenv.FreeAddr(t), "--nats-url", secure.URL, "--roles", "api")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var logs lockedBuffer
	err := Serve(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), Hooks{})
	if ctx.Err() != nil {
		t.Fatalf("serve waited for a NATS that refuses its user; log:\n%s", logs.String())
	}
	if !errors.Is(err, nats.ErrAuthorization) || !strings.Contains(err.Error(), "TRADEWIND_NATS_CREDENTIALS") {
		t.Fatalf("serve: %v, want an authorization violation saying what to set", err)
	}
	if strings.Contains(logs.String(), retryLine) {
		t.Errorf("the refused user was retried:\n%s", logs.String())
	}
}

// TestUnreachable: what a start-up step waits out, and what ends it.
func TestUnreachable(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"no NATS server", fmt.Errorf("connect: %w", nats.ErrNoServers), true},
		{"JetStream request timed out", fmt.Errorf("watch flags: %w", context.DeadlineExceeded), true},
		{"no JetStream responders", fmt.Errorf("stream: %w", nats.ErrNoResponders), true},
		{"JetStream without a leader", &jetstream.APIError{Code: 503, Description: "JetStream system temporarily unavailable"}, true},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{"PostgreSQL starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"PostgreSQL standby during fail-over", &pgconn.PgError{Code: "25006"}, true},
		{"PostgreSQL connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"NATS authorization", fmt.Errorf("connect: %w", nats.ErrAuthorization), false},
		{"PostgreSQL password", &pgconn.PgError{Code: "28P01"}, false},
		{"stream layout", &jetstream.APIError{Code: 400, Description: "subjects overlap"}, false},
		{"anything else", errors.New("role api: bad configuration"), false},
	} {
		if got := unreachable(c.err); got != c.want {
			t.Errorf("%s (%v): unreachable %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
