package app

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/natsauth"
	"github.com/tradewind/tradewind/internal/store"
	"github.com/tradewind/tradewind/internal/testenv"
)

// lockedBuffer is a log sink read while Serve writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestEmbeddedNATSAcceptsOnlyItsUsers: serve with the embedded server
// generates every user's password into the data directory (owner-only),
// refuses a client without credentials, hands ops to the CLI through the
// state file, and runs its roles (the gateway, the relay, the WebSocket
// fan-out) without a single permission violation from start to shutdown.
func TestEmbeddedNATSAcceptsOnlyItsUsers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cfg config.Config
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	cfg.Bind(fs)
	dataDir := t.TempDir()
	natsAddr := testenv.FreeAddr(t)
	if err := fs.Parse([]string{
		"--database-url", testenv.DatabaseURL(t), "--data-dir", dataDir, "--http-addr", testenv.FreeAddr(t),
		"--nats-listen", natsAddr, "--nats-url", "", "--roles", "api,ws,relay",
	}); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	started := make(chan State, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), Hooks{Started: func(s State) { started <- s }})
	}()
	var st State
	select {
	case st = <-started:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not start")
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
	}
	defer stop()

	dir := filepath.Join(dataDir, natsauth.DirName)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("credentials directory: %v %v, want mode 0700", fi, err)
	}
	for _, user := range []string{natsauth.UserOps, "api_relay_ws", "relay", natsauth.ProducerPrefix + "orders"} {
		fi, err := os.Stat(filepath.Join(dir, user))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("password of %s: %v %v, want mode 0600", user, fi, err)
		}
	}

	if _, err := nats.Connect("nats://"+natsAddr, nats.NoReconnect()); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("a client without credentials: %v, want an authorization violation", err)
	}
	if !strings.Contains(st.NATSURL, "ops:") {
		t.Fatalf("state nats_url has no ops user")
	}
	nc, err := broker.Connect(st.NATSURL, "ops")
	if err != nil {
		t.Fatalf("ops through the state file: %v", err)
	}
	defer nc.Close()
	// The gateway publishes a command under the process's user.
	pool, err := store.Open(ctx, testenv.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	keys, _ := auth.NewKeys(pool)
	key, _, err := keys.Create(ctx, auth.NewKeyInput{Name: "natsauth", Scopes: []string{auth.ScopeAll}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, st.HTTPURL+"/v1/customers",
		strings.NewReader(`{"customer_id":"c-natsauth","name":"N. Auth","email":"n@example.com"}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "natsauth-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/customers: %d %s", resp.StatusCode, body)
	}
	// ops reads it in COMMANDS.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, broker.StreamCommands)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := stream.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Fatalf("COMMANDS as ops: %+v %v, want the one command", info, err)
	}

	stop()
	if strings.Contains(logs.String(), "NATS error") {
		t.Errorf("permission violations or other NATS errors logged:\n%s", logs.String())
	}
}
