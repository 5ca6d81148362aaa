package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tradewind/tradewind/internal/app"
	"github.com/tradewind/tradewind/internal/checker"
	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/retry"
	"github.com/tradewind/tradewind/internal/store"
)

// errViolations makes `check` exit non-zero after printing its report.
var errViolations = errors.New("invariants violated")

// newCheckCmd builds the `check` subcommand.
func newCheckCmd() *cobra.Command {
	var (
		nf                  natsFlags
		dbURL, paymentURL   string
		noStream, noLedger  bool
		slack, settle, wait time.Duration
		asJSON, list        bool
		noWait              bool
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the order saga's invariants; exit status 1 on any violation",
		Long: `Check the saga's invariants over PostgreSQL's core tables, the EVENTS stream
and the payment provider's ledger, in one database snapshot, and print every
violation with the order or SKU at fault (--list names the checks).

A live system is never quite at rest: checks that need an order at rest
skip orders that changed less than --settle ago, and right after a load run
orders are still in flight and their follow-up effects (captures retried
behind the payment breaker, stock commits and releases) still settling. So
check waits by default: while it finds violations it re-runs the checks
every 2 s, for up to --wait (default 2m), and reports the last run. Give
--no-wait to check once, as things are (a quiescent system, or a CI step
that must be fast).

PostgreSQL, NATS and the provider are found through flags, their
environment variables, or the running system's state file. --no-stream
and --no-ledger skip what cannot be reached.`,
		Example: `  tradewind load --orders 5000 && tradewind check
  tradewind check --no-wait --json | jq '.violations[] | .subject'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if list {
				for _, r := range checker.Names() {
					fmt.Fprintf(out, "%-20s %s\n", r.Check, r.Doc)
				}
				return nil
			}
			ctx := cmd.Context()
			st, stErr := app.ReadState(nf.dataDir)
			if dbURL == "" && stErr == nil {
				dbURL = st.DatabaseURL
			}
			if paymentURL == "" && stErr == nil {
				paymentURL = st.PaymentURL
			}
			if dbURL == "" {
				return config.ErrNoSystem
			}
			pool, err := store.Open(ctx, dbURL)
			if err != nil {
				return err
			}
			defer pool.Close()
			opts := checker.Options{Pool: pool, Slack: slack, Settle: settle}
			if !noStream {
				nc, js, err := nf.connect("tradewind-check")
				if err != nil {
					return fmt.Errorf("%w (or give --no-stream)", err)
				}
				defer nc.Close()
				opts.JS = js
			}
			if !noLedger && paymentURL != "" {
				opts.Ledger = checker.HTTPLedger{URL: paymentURL}
			}
			c, err := checker.New(opts)
			if err != nil {
				return err
			}
			if noWait {
				wait = 0
			}
			rep, err := runUntilClean(ctx, c, wait, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				rep.Print(out)
			}
			if !rep.OK() {
				return fmt.Errorf("%w: %d violations", errViolations, len(rep.Violations))
			}
			return nil
		},
	}
	nf.bind(cmd)
	f := cmd.Flags()
	f.StringVar(&dbURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (env DATABASE_URL; default: the running system's state file)")
	f.StringVar(&paymentURL, "payment-url", os.Getenv("TRADEWIND_PAYMENT_URL"), "payment provider URL whose /v1/ledger is compared (env TRADEWIND_PAYMENT_URL; default: the state file)")
	f.BoolVar(&noStream, "no-stream", false, "skip the checks that read the EVENTS stream")
	f.BoolVar(&noLedger, "no-ledger", false, "skip the comparison with the provider's ledger")
	f.DurationVar(&slack, "slack", checker.DefaultSlack, "how long past its deadline an order may still be pending")
	f.DurationVar(&settle, "settle", checker.DefaultSettle, "how long after its last change an order counts as at rest")
	f.DurationVar(&wait, "wait", DefaultCheckWait, "while violations are found, re-run the checks until they pass or this much time has passed (in-flight orders settling)")
	f.BoolVar(&noWait, "no-wait", false, "check once, without waiting for in-flight orders to settle")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.BoolVar(&list, "list", false, "list the checks and exit")
	return cmd
}

// DefaultCheckWait bounds check's default wait for in-flight orders and
// their follow-up effects: after `load`'s outage phase, captures retried
// behind the payment breaker settle within seconds; a violation still
// there after two minutes is one.
const DefaultCheckWait = 2 * time.Minute

// runUntilClean runs the checks, again every two seconds while they find
// violations and wait has not passed (saying so on progress); it returns
// the last report.
func runUntilClean(ctx context.Context, c *checker.Checker, wait time.Duration, progress io.Writer) (*checker.Report, error) {
	start := time.Now()
	deadline := start.Add(wait)
	said := false
	for {
		rep, err := c.Run(ctx)
		if err != nil {
			return nil, err
		}
		if rep.OK() || time.Now().After(deadline) {
			if said {
				fmt.Fprintf(progress, "check: %d violations after waiting %s\n", len(rep.Violations), time.Since(start).Round(time.Second))
			}
			return rep, nil
		}
		if !said {
			fmt.Fprintf(progress, "check: %d violations, %d orders pending: waiting up to %s for in-flight orders and their effects to settle (--no-wait checks once)\n",
				len(rep.Violations), rep.PendingOrders, wait)
			said = true
		}
		if !retry.Sleep(ctx, 2*time.Second) {
			return rep, nil
		}
	}
}
