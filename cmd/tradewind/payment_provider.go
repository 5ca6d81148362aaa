package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/internal/provider"
)

// newPaymentProviderCmd builds the `payment-provider` subcommand.
func newPaymentProviderCmd() *cobra.Command {
	var (
		listen, dataDir, outage string
		latency, jitter         time.Duration
		declineRate             float64
		seed                    uint64
		maxInMemory             int
	)
	cmd := &cobra.Command{
		Use:   "payment-provider",
		Short: "Run the payment provider simulator (authorize, capture, void, refund)",
		Long: `Run a realistic payment provider simulator over HTTP, the one 'serve' starts
in-process when TRADEWIND_PAYMENT_URL is empty. Point Tradewind at a
separate one with TRADEWIND_PAYMENT_URL=http://<listen>.

  POST /v1/authorizations, /v1/authorizations/{id}/capture|void|refund
       (Idempotency-Key required: same key and body replays, a different body is 422)
  GET  /v1/ledger             every authorization and what happened to it
  GET  /admin/faults, PUT /admin/faults {"outage":"error"|"timeout"|"off", "latency":"20ms", ...}

An amount ending in 51 (minor units) is declined insufficient_funds; a customer
id containing "decline" is declined card_declined. The ledger is journaled
to <data-dir>/ledger.jsonl and survives restarts; memory holds only the
--max-in-memory most recently used authorizations and idempotency records,
the rest is read back from the journal when needed. With --data-dir ""
nothing is evicted: memory grows with every request (tests, short runs).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			sim, err := provider.NewServer(provider.Options{
				DataDir: dataDir, MaxInMemory: maxInMemory, Seed: seed, Log: log,
				Faults: provider.Faults{Outage: outage, Latency: provider.Duration(latency),
					Jitter: provider.Duration(jitter), DeclineRate: declineRate},
			})
			if err != nil {
				return err
			}
			defer func() { _ = sim.Close() }()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			srv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			log.Info("payment provider simulator listening", "url", "http://"+ln.Addr().String())
			select {
			case <-cmd.Context().Done():
			case err := <-errc:
				if !errors.Is(err, http.ErrServerClosed) {
					return err
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8090", "HTTP listen address")
	f.StringVar(&dataDir, "data-dir", "./.tradewind/provider", `ledger journal directory ("" keeps the ledger in memory)`)
	f.StringVar(&outage, "outage", provider.OutageOff, "initial outage mode: off, error (503) or timeout (no answer)")
	f.DurationVar(&latency, "latency", 0, "added to every payment request")
	f.DurationVar(&jitter, "jitter", 0, "random extra latency, up to this much")
	f.Float64Var(&declineRate, "decline-rate", 0, "share of authorizations declined at random (0..1)")
	f.Uint64Var(&seed, "seed", 0, "random seed for declines and jitter (0: random)")
	f.IntVar(&maxInMemory, "max-in-memory", provider.DefaultMaxInMemory,
		"authorizations and idempotency records kept in memory; the rest is read back from the journal (needs --data-dir)")
	return cmd
}
