// Command saga is `make bench-saga` and `make soak`: Tradewind's order saga
// measured end to end on this machine, driven only through the binary
// (`tradewind serve`, `tradewind load`, `tradewind check`), with the
// baselines a user would otherwise pick and the machine's own limit
// measured in the same run, so every figure is read as a ratio against
// numbers taken under the same load of a shared machine.
//
// bench (the default):
//  1. Tradewind: nats-server (built from the nats-server module Tradewind
//     depends on), a fresh database, `tradewind serve` with every role;
//     then `tradewind load` phases with the system at rest before each:
//     a probe, p50/p99 at 100 and at 1,000 orders/s (happy=100), and the
//     maximum completed orders/s with happy=100 and with the default mix,
//     CPU ms per order of serve, nats-server and the database's PostgreSQL
//     backends from /proc, peak RSS; `tradewind check` must report no
//     violation or the run is invalid and is not kept.
//  2. The machine's limit: JetStream publish and consume rates and a COPY
//     of rows as wide and as many per order as Tradewind wrote, giving a
//     ceiling in orders/s.
//  3. Baselines: the PlaceOrder slice on a plain Watermill router
//     (internal/runner BenchmarkPlaceOrderSlice) and the saga as DBOS
//     Transact durable workflows (deploy/bench/saga/dbos).
//
// It prints one table, appends it to docs/performance.md and redraws
// docs/performance/bench-saga.svg from the kept runs in
// docs/performance/bench-saga.json.
//
// soak: see soak.go.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	bin, natsServer, dbosBin string
	pgBase                   string
	docs                     string
	quick, record, keep      bool
	skipWatermill, skipDBOS  bool

	latencyFor   time.Duration // length of the fixed-rate phases
	maxFor       time.Duration // target length of the maximum-rate phases
	dbosFor      time.Duration
	dbosInFlight []int

	soak         bool
	soakFor      time.Duration
	soakRate     float64
	soakMix      string
	soakInterval time.Duration
}

func main() {
	cfg := &config{}
	var inflight string
	flag.StringVar(&cfg.bin, "bin", "bin/tradewind", "the tradewind binary")
	flag.StringVar(&cfg.natsServer, "nats-server", "bin/nats-server", "the nats-server binary")
	flag.StringVar(&cfg.dbosBin, "dbos", "bin/saga-dbos", "the DBOS baseline binary (deploy/bench/saga/dbos)")
	flag.StringVar(&cfg.pgBase, "pg", envOr("BENCH_PG", "postgres://postgres@127.0.0.1:5432"), "PostgreSQL server (env BENCH_PG); each part gets a fresh database")
	flag.StringVar(&cfg.docs, "docs", "docs", "where performance.md and performance/ live")
	flag.BoolVar(&cfg.quick, "quick", false, "a short validation run (small phases; not recorded unless -record)")
	flag.BoolVar(&cfg.record, "record", true, "append the table to docs/performance.md and redraw the chart")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temp directories and databases")
	flag.BoolVar(&cfg.skipWatermill, "skip-watermill", false, "skip the Watermill router baseline")
	flag.BoolVar(&cfg.skipDBOS, "skip-dbos", false, "skip the DBOS baseline")
	flag.DurationVar(&cfg.latencyFor, "latency-for", 20*time.Second, "length of the fixed-rate phases (100/s and 1,000/s)")
	flag.DurationVar(&cfg.maxFor, "max-for", 30*time.Second, "target length of the maximum-rate phases")
	flag.DurationVar(&cfg.dbosFor, "dbos-for", 20*time.Second, "length of each DBOS run")
	flag.StringVar(&inflight, "dbos-inflight", "16,64", "DBOS workflows in flight, one run each; the best counts")
	flag.BoolVar(&cfg.soak, "soak", false, "run the soak instead of the bench")
	flag.DurationVar(&cfg.soakFor, "soak-for", 30*time.Minute, "soak length")
	flag.Float64Var(&cfg.soakRate, "soak-rate", 0, "soak orders/s (0: half the maximum a probe finds)")
	flag.StringVar(&cfg.soakMix, "soak-mix", "happy=100", "soak mix")
	flag.DurationVar(&cfg.soakInterval, "soak-interval", 10*time.Second, "soak sampling interval")
	flag.Parse()
	cfg.dbosInFlight = parseInts(inflight)
	if cfg.quick {
		cfg.latencyFor, cfg.maxFor, cfg.dbosFor = 5*time.Second, 8*time.Second, 5*time.Second
		if !flagSet("record") {
			cfg.record = false
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if cfg.soak {
		err = soak(ctx, cfg)
	} else {
		err = bench(ctx, cfg)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-saga:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func parseInts(s string) []int {
	var out []int
	var cur, digits int
	for _, r := range s + "," {
		switch {
		case r >= '0' && r <= '9':
			cur = cur*10 + int(r-'0')
			digits++
		case digits > 0:
			out = append(out, cur)
			cur, digits = 0, 0
		}
	}
	return out
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// loadAvg is /proc/loadavg's first figure: how shared the machine was.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	var one string
	if _, err := fmt.Sscan(string(b), &one); err != nil {
		return "?"
	}
	return one
}

func cores() int { return runtime.NumCPU() }
