package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/internal/app"
	"github.com/tradewind/tradewind/internal/loadgen"
)

// newLoadCmd builds the `load` subcommand.
func newLoadCmd() *cobra.Command {
	var (
		nf         natsFlags
		cfg        loadgen.Config
		mix        string
		paymentURL string
		asJSON     bool
		quiet      bool
	)
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Generate load as producer services would: seed a catalogue, then place orders with a mix of paths",
		Long: `Seed categories, products, stock and customers, then place orders at --rate
(0: as fast as possible) until --orders have been placed or --duration has
passed, and wait for every order's terminal event (orders.confirmed or
orders.cancelled on the EVENTS stream).

The mix weighs the paths an order is meant to take:
  happy    in-stock SKUs: confirmed
  oos      more of a scarce SKU than was restocked: cancelled out_of_stock
  decline  the provider's deterministic declines (customer id with "decline",
           total ending in 51): cancelled payment_declined
  cancel   the customer cancels shortly after placing: cancelled customer
  outage   placed during a short provider outage (503s): confirmed once it ends
  timeout  placed while the provider hangs, after all other orders:
           cancelled timeout (takes the order deadline, 30s by default)
outage and timeout switch the payment provider simulator's /admin/faults
(--payment-url, default the running system's); without it they are placed
as happy orders.

A progress bar runs on stderr; the summary (orders/s accepted and completed,
latency percentiles from publish to terminal event, outcomes by reason and
by class) goes to stdout, as JSON with --json. Run 'tradewind check' after
it to prove the saga's invariants.`,
		Example: `  tradewind load --orders 5000
  tradewind load --duration 1m --rate 200 --mix happy=90,cancel=10 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := loadgen.ParseMix(mix)
			if err != nil {
				return err
			}
			cfg.Mix = m
			cfg.PaymentURL = paymentURL
			if cfg.PaymentURL == "" {
				cfg.PaymentURL = statePaymentURL(nf.dataDir)
			}
			if !quiet {
				cfg.Progress = cmd.ErrOrStderr()
				cfg.Log = app.NewLogger(cmd.ErrOrStderr(), "text", "warn")
			}
			nc, js, err := nf.connect("tradewind-load")
			if err != nil {
				return err
			}
			defer nc.Close()
			gen, err := loadgen.New(cfg, js)
			if err != nil {
				return err
			}
			sum, runErr := gen.Run(cmd.Context())
			if sum != nil {
				if asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					if err := enc.Encode(sum); err != nil {
						return err
					}
				} else {
					sum.Print(cmd.OutOrStdout())
				}
			}
			if runErr != nil {
				return runErr
			}
			if sum.Failed > 0 || sum.Pending > 0 {
				return fmt.Errorf("%d orders not accepted and %d without a terminal event", sum.Failed, sum.Pending)
			}
			return nil
		},
	}
	nf.bind(cmd)
	f := cmd.Flags()
	f.IntVar(&cfg.Orders, "orders", 0, "orders to place (default: until --duration has passed)")
	f.DurationVar(&cfg.Duration, "duration", 0, "how long to place orders when --orders is not given")
	f.Float64Var(&cfg.Rate, "rate", 0, "orders per second (0: as fast as possible)")
	f.StringVar(&mix, "mix", loadgen.DefaultMix, "weights of the paths: happy, oos, decline, cancel, timeout, outage")
	f.IntVar(&cfg.Concurrency, "concurrency", 32, "publishes in flight")
	f.DurationVar(&cfg.Wait, "wait", 2*time.Minute, "how long to wait for terminal events after the last order")
	f.DurationVar(&cfg.OutageFor, "outage-for", 3*time.Second, "length of one provider outage window (keep it below the order deadline)")
	f.IntVar(&cfg.SKUs, "skus", 50, "in-stock SKUs to seed")
	f.IntVar(&cfg.Customers, "customers", 100, "customers to seed")
	f.Uint64Var(&cfg.Seed, "seed", 0, "random seed (0: random)")
	f.StringVar(&paymentURL, "payment-url", os.Getenv("TRADEWIND_PAYMENT_URL"), "payment provider simulator URL for outage/timeout windows (env TRADEWIND_PAYMENT_URL; default: the running system's state file)")
	f.BoolVar(&asJSON, "json", false, "print the summary as JSON")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar and no warnings on stderr")
	return cmd
}

// statePaymentURL is the payment provider URL the running system wrote in
// its state file, "" when there is none.
func statePaymentURL(dataDir string) string {
	st, err := app.ReadState(dataDir)
	if err != nil {
		return ""
	}
	return st.PaymentURL
}
