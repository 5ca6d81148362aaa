package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/tradewind/tradewind/internal/auth"
	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/store"
	"github.com/tradewind/tradewind/internal/testenv"
)

// TestCommandTokenGivesReadYourWrites: the position token of a 202 from
// the gateway, passed back to the read API, returns the order the command
// placed — never a 404 because the projection lags.
func TestCommandTokenGivesReadYourWrites(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cfg config.Config
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	cfg.Bind(fs)
	dbURL := testenv.FreshDatabaseURL(t) // each run its own: a new stream (-count=N)
	httpAddr := testenv.FreeAddr(t)
	if err := fs.Parse([]string{
		"--database-url", dbURL, "--data-dir", t.TempDir(), "--http-addr", httpAddr,
		"--nats-listen", testenv.FreeAddr(t), "--nats-url", "", "--roles", "api,orders,projections,relay",
	}); err != nil {
		t.Fatal(err)
	}
	started := make(chan State, 1)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Hooks{Started: func(s State) { started <- s }})
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not start")
	}
	defer func() { cancel(); <-done }()

	pool, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	keys, _ := auth.NewKeys(pool)
	key, _, err := keys.Create(ctx, auth.NewKeyInput{Name: "ryw", Scopes: []string{auth.ScopeAll}})
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+httpAddr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "ryw-"+path)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.NewDecoder(bytes.NewReader(b)).Decode(&m)
		return resp, m
	}
	resp, acc := do(http.MethodPost, "/v1/orders", `{"customer_id":"c-ryw","currency":"EUR","lines":[{"sku":"SKU-1","quantity":1,"unit_price":700}]}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("place order: %d %v", resp.StatusCode, acc)
	}
	token, _ := acc["position"].(string)
	id, _ := acc["id"].(string)
	if !strings.HasPrefix(token, "COMMANDS:") || id == "" {
		t.Fatalf("202 body %v: want an id and a COMMANDS position", acc)
	}
	resp, order := do(http.MethodGet, "/v1/orders/"+id+"?after="+token, "")
	if resp.StatusCode != http.StatusOK || order["order_id"] != id {
		t.Fatalf("read with the token: %d %v", resp.StatusCode, order)
	}
	if resp.Header.Get("Tradewind-Position") == "" {
		t.Error("read answer does not say which position it reflects")
	}

	// A token of a command that never existed cannot be waited for.
	resp, prob := do(http.MethodGet, "/v1/orders/"+id+"?after=COMMANDS:999999", "")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("unknown command token: %d %v, want 503 with Retry-After", resp.StatusCode, prob)
	}
	resp, _ = do(http.MethodGet, "/v1/orders/"+id+"?after=COMMANDS:x", "")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed token: %d, want 400", resp.StatusCode)
	}
}
