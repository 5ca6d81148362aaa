package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/provider"
)

// startPaymentProvider starts the payment provider simulator in this
// process when no real provider is configured (TRADEWIND_PAYMENT_URL
// empty) and this process runs the payments role, so that `make run`
// needs nothing else. Its ledger is journaled under
// <data dir>/provider, and its memory bounded (provider.DefaultMaxInMemory
// authorizations; the rest is read back from the journal). It returns the provider's base URL (the configured
// one when set) and a function that stops the simulator.
func startPaymentProvider(cfg config.Config, log *slog.Logger) (string, func(), error) {
	if cfg.PaymentURL != "" || !cfg.HasRole("payments") {
		// A configured provider, or a process that makes no payments (in
		// a split deployment only the payments role talks to it).
		return cfg.PaymentURL, func() {}, nil
	}
	sim, err := provider.NewServer(provider.Options{DataDir: filepath.Join(cfg.DataDir, "provider"), Log: log})
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", cfg.ProviderListen)
	if err != nil {
		// The port is taken (another system, a stale simulator): any free port.
		host, _, _ := net.SplitHostPort(cfg.ProviderListen)
		if ln, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err != nil {
			_ = sim.Close()
			return "", nil, fmt.Errorf("payment provider simulator: listen on TRADEWIND_PROVIDER_LISTEN %s: %w", cfg.ProviderListen, err)
		}
	}
	srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("payment provider simulator stopped", "err", err)
		}
	}()
	url := "http://" + ln.Addr().String()
	log.Info("payment provider simulator started in-process", "url", url, "ledger", filepath.Join(cfg.DataDir, "provider", provider.JournalFile))
	return url, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = sim.Close()
	}, nil
}
