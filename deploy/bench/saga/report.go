package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// renderTable is the run as one Markdown table with its context lines.
func renderTable(r *Record) string {
	var b strings.Builder
	status := "valid"
	if !r.Valid {
		status = "INVALID: " + r.Invalid
	}
	if r.Quick {
		status += " (quick validation run)"
	}
	fmt.Fprintf(&b, "### bench-saga %s · %s · %d cores · load average %s at start · %s\n\n", r.Date, r.Commit, r.Cores, r.LoadAvg, status)
	b.WriteString("| system | completed orders/s | p50 ms | p99 ms | CPU ms/order: serve + nats-server + PostgreSQL = total | ratio |\n")
	b.WriteString("|---|---:|---:|---:|---|---|\n")
	dbos := r.bestDBOS()
	row := func(name string, p Phase, ratio string) {
		fmt.Fprintf(&b, "| %s | %.0f | %.1f | %.1f | %.2f + %.2f + %.2f = **%.2f** | %s |\n",
			name, p.CompletedPS, p.Latency.P50, p.Latency.P99, p.CPU.Serve, p.CPU.NATS, p.CPU.Postgres, p.CPU.Total(), ratio)
	}
	ratio := func(a, b float64, what string) string {
		if a <= 0 || b <= 0 {
			return ""
		}
		return fmt.Sprintf("%.2f× %s", a/b, what)
	}
	var vs []string
	if dbos != nil {
		vs = append(vs, ratio(r.MaxDefault.CompletedPS, dbos.CompletedPerSec, "DBOS"))
	}
	if r.WatermillMsgsPerSec > 0 {
		vs = append(vs, ratio(r.MaxDefault.CompletedPS, r.WatermillMsgsPerSec, "Watermill slice"))
	}
	if r.Ceiling.OrdersPerSec > 0 {
		vs = append(vs, fmt.Sprintf("%.0f %% of ceiling", 100*r.MaxDefault.CompletedPS/r.Ceiling.OrdersPerSec))
	}
	row(fmt.Sprintf("Tradewind max, default mix (%d orders)", r.MaxDefault.Orders), r.MaxDefault, strings.Join(vs, ", "))
	vs = nil
	if dbos != nil {
		vs = append(vs, ratio(r.MaxHappy.CompletedPS, dbos.CompletedPerSec, "DBOS"))
	}
	if r.WatermillMsgsPerSec > 0 {
		vs = append(vs, ratio(r.MaxHappy.CompletedPS, r.WatermillMsgsPerSec, "Watermill slice"))
	}
	row(fmt.Sprintf("Tradewind max, happy=100 (%d orders)", r.MaxHappy.Orders), r.MaxHappy, strings.Join(vs, ", "))
	row("Tradewind at rest, 100/s offered", r.At100, r.At100.Note)
	row("Tradewind at rest, 1,000/s offered", r.At1000, r.At1000.Note)
	if q := r.AtQuarter; q != nil {
		row(fmt.Sprintf("Tradewind at rest, %.0f/s offered (a quarter of the maximum)", q.Rate), *q, q.Note)
	}
	if r.WatermillMsgsPerSec > 0 {
		fmt.Fprintf(&b, "| Watermill router, PlaceOrder slice only (msgs/s) | %.0f | | | | Tradewind runner on the slice: %.0f msgs/s = %s |\n",
			r.WatermillMsgsPerSec, r.RunnerMsgsPerSec, ratio(r.RunnerMsgsPerSec, r.WatermillMsgsPerSec, ""))
	}
	for _, d := range r.DBOS {
		fmt.Fprintf(&b, "| DBOS Transact saga, %d in flight | %.0f | %.1f | %.1f | %.2f (app) + %.2f (PostgreSQL) = **%.2f** | %s |\n",
			d.Concurrency, d.CompletedPerSec, d.Latency.P50, d.Latency.P99, d.CPU.App, d.CPU.Postgres, d.CPU.App+d.CPU.Postgres, dbosCheck(d))
	}
	c := r.Ceiling
	fmt.Fprintf(&b, "| machine ceiling: JetStream %.0f publish/s + %.0f consume/s (%d B), COPY %.0f rows/s (%d B) | %.0f | | | | NATS alone %.0f/s, PostgreSQL alone %.0f/s |\n",
		c.PublishPerSec, c.ConsumePerSec, c.MsgBytes, c.CopyRowsPerSec, c.RowBytes, c.OrdersPerSec, c.NATSOrdersPerSec, c.PGOrdersPerSec)
	b.WriteString("\n")
	fmt.Fprintf(&b, "- per completed order Tradewind made %.1f JetStream publishes, %.1f deliveries and wrote %.1f PostgreSQL rows (inserted + updated + deleted, %d B on average); the ceiling is the time those take at the raw rates above, summed (NATS and PostgreSQL share the cores)\n",
		c.PublishesPerOrder, c.DeliveriesPerOrd, c.RowsPerOrder, c.RowBytes)
	if len(c.TopTables) > 0 {
		parts := make([]string, len(c.TopTables))
		for i, t := range c.TopTables {
			parts[i] = fmt.Sprintf("%s %.1f", t.Table, t.RowsPerOrder)
		}
		fmt.Fprintf(&b, "- rows written per order, most first: %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(&b, "- peak RSS: serve %.0f MB, nats-server %.0f MB; not in the totals (max default mix): load generator CPU %.2f ms/order, payment provider simulator (its own process, an external service in production) %.2f ms/order\n",
		r.RSSServeMB, r.RSSNATSMB, r.MaxDefault.LoadCPU, r.MaxDefault.CPU.Provider)
	fmt.Fprintf(&b, "- `tradewind check`: %d violations — `%s`\n", r.Violations, strings.ReplaceAll(lastLines(r.Check, 1), "`", "'"))
	fmt.Fprintf(&b, "- targets: ≥ 2,000/s default mix: %s; ≤ 1 ms CPU/order: %s; p99 ≤ 150 ms at 1,000/s: %s; p50 ≤ 30 ms at 100/s: %s",
		yes(r.MaxDefault.CompletedPS >= 2000), yes(r.MaxDefault.CPU.Total() > 0 && r.MaxDefault.CPU.Total() <= 1),
		yes(r.At1000.Completed > 0 && r.At1000.Latency.P99 <= 150 && r.At1000.CompletedPS >= 900), yes(r.At100.Completed > 0 && r.At100.Latency.P50 <= 30))
	if dbos != nil {
		fmt.Fprintf(&b, "; ≥ 4× DBOS: %s", yes(r.MaxDefault.CompletedPS >= 4*dbos.CompletedPerSec))
	}
	if r.WatermillMsgsPerSec > 0 {
		fmt.Fprintf(&b, "; ≥ 10× Watermill slice: %s", yes(r.MaxDefault.CompletedPS >= 10*r.WatermillMsgsPerSec))
	}
	b.WriteString("\n")
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- note: %s\n", n)
	}
	return b.String()
}

func dbosCheck(d DBOS) string {
	bad := 0
	for _, n := range d.Violations {
		bad += n
	}
	s := fmt.Sprintf("invariants: %d violations", bad)
	if d.Failed > 0 {
		s += fmt.Sprintf(", %d failed", d.Failed)
	}
	return s
}

func yes(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

// recordRun appends the table to performance.md, and for a valid full run
// keeps the record in bench-saga.json and redraws bench-saga.svg.
func recordRun(cfg *config, r *Record, table string) error {
	dir := filepath.Join(cfg.docs, "performance")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	md := filepath.Join(cfg.docs, "performance.md")
	if _, err := os.Stat(md); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(md, []byte(performanceHeader), 0o644); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(md, os.O_APPEND|os.O_WRONLY, 0o644) //nolint:gosec // a docs file in the repository, world-readable like its siblings
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "\n%s", table); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	logf("appended the table to %s", md)
	if !r.Valid || r.Quick {
		return nil
	}
	hist := filepath.Join(dir, "bench-saga.json")
	var runs []Record
	if b, err := os.ReadFile(hist); err == nil {
		if err := json.Unmarshal(b, &runs); err != nil {
			return fmt.Errorf("%s: %w", hist, err)
		}
	}
	runs = append(runs, *r)
	b, err := json.MarshalIndent(runs, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(hist, append(b, '\n'), 0o644); err != nil {
		return err
	}
	svg := filepath.Join(dir, "bench-saga.svg")
	if err := os.WriteFile(svg, []byte(historyChart(runs)), 0o644); err != nil {
		return err
	}
	logf("kept the run in %s and redrew %s", hist, svg)
	return nil
}

// historyChart draws orders/s and p99 across the kept runs.
func historyChart(runs []Record) string {
	var ticks []tick
	var tdef, thappy, dbos, wm, ceil, p1000, p100, d99 series
	tdef = series{name: "Tradewind, default mix"}
	thappy = series{name: "Tradewind, happy=100"}
	dbos = series{name: "DBOS Transact saga (best)"}
	wm = series{name: "Watermill slice (msgs/s)", dash: true}
	ceil = series{name: "machine ceiling", dash: true}
	p1000 = series{name: "Tradewind at 1,000/s"}
	p100 = series{name: "Tradewind at 100/s"}
	d99 = series{name: "DBOS (best run)"}
	pq := series{name: "Tradewind at ¼ of max", dash: true}
	for i, r := range runs {
		x := float64(i + 1)
		ticks = append(ticks, tick{x, r.Commit[:min(7, len(r.Commit))]})
		tdef.pts = append(tdef.pts, [2]float64{x, r.MaxDefault.CompletedPS})
		thappy.pts = append(thappy.pts, [2]float64{x, r.MaxHappy.CompletedPS})
		if d := r.bestDBOS(); d != nil {
			dbos.pts = append(dbos.pts, [2]float64{x, d.CompletedPerSec})
			d99.pts = append(d99.pts, [2]float64{x, d.Latency.P99})
		}
		if r.WatermillMsgsPerSec > 0 {
			wm.pts = append(wm.pts, [2]float64{x, r.WatermillMsgsPerSec})
		}
		if r.Ceiling.OrdersPerSec > 0 {
			ceil.pts = append(ceil.pts, [2]float64{x, r.Ceiling.OrdersPerSec})
		}
		p1000.pts = append(p1000.pts, [2]float64{x, r.At1000.Latency.P99})
		p100.pts = append(p100.pts, [2]float64{x, r.At100.Latency.P99})
		if r.AtQuarter != nil {
			pq.pts = append(pq.pts, [2]float64{x, r.AtQuarter.Latency.P99})
		}
	}
	if len(ticks) > 6 {
		step := (len(ticks) + 5) / 6
		var keep []tick
		for i, t := range ticks {
			if i%step == 0 {
				keep = append(keep, t)
			}
		}
		ticks = keep
	}
	return svgChart(fmt.Sprintf("make bench-saga: %d kept runs, %s to %s", len(runs), runs[0].Date[:10], runs[len(runs)-1].Date[:10]), 2, []panel{
		{title: "completed orders/s", unit: "orders/s", xTicks: ticks, series: []series{tdef, thappy, dbos, wm, ceil}},
		{title: "p99 latency, publish to terminal event (log)", unit: "ms", xTicks: ticks, logY: true, series: []series{p1000, p100, pq, d99}},
	})
}

const performanceHeader = `# Performance

Figures of the order saga on one machine, written by the benchmarks
themselves. Every run measures its baselines in the same run, on the same
shared machine: read the ratios, not the absolute numbers.

## make bench-saga

` + "`make bench-saga`" + ` builds bin/tradewind, a nats-server from the
nats-server module in go.mod and the DBOS baseline
(deploy/bench/saga/dbos, its own Go module), then in one unattended run
(deploy/bench/saga):

- **Tradewind end to end**: nats-server, a fresh database and
  ` + "`tradewind serve`" + ` (all roles) as separate processes;
  ` + "`tradewind load`" + ` phases with the system at rest before each
  (every consumer drained, the outbox empty, serve idle): p50/p99 at 100
  and at 1,000 orders/s (happy=100), then the maximum completed orders/s
  with happy=100 and with the default mix; CPU ms per completed order of
  serve, nats-server and the database's PostgreSQL backends (from
  /proc/<pid>/stat), peak RSS; ` + "`tradewind check`" + ` must report
  0 violations or the run is invalid and not kept.
- **The machine's limit**: JetStream publish and consume rates (file
  storage, acked) and a PostgreSQL COPY of rows as wide as Tradewind's;
  with the publishes, deliveries and rows Tradewind made per order this
  gives a ceiling in orders/s.
- **Baselines**: the PlaceOrder slice on a plain Watermill router
  (` + "`internal/runner` BenchmarkPlaceOrderSlice" + `, msgs/s of that
  one hop) and the saga as DBOS Transact for Go durable workflows (reserve,
  authorize, confirm as checkpointed transactions, compensation on out of
  stock and declines) on the same PostgreSQL.

Each run appends its table below; valid full runs are kept in
performance/bench-saga.json and drawn in performance/bench-saga.svg.
` + "`BENCH_SAGA_FLAGS=-quick make bench-saga`" + ` is a short validation run
(not kept); ` + "`./bin/bench-saga -h`" + ` lists the knobs.

How to read the figures:

- Latency is ` + "`tradewind load`" + `'s: from the command's first publish to
  the order's terminal event on the EVENTS stream. A fixed rate above the
  maximum measures a queue, and the table says so.
- PostgreSQL CPU is the backends connected to the run's database; the
  server's shared processes (WAL writer, checkpointer) are not counted,
  since other databases on the server use them too. The load generator's
  CPU is printed apart and is in no total, as is the payment provider
  simulator's: the bench runs it as its own process (the external service
  it stands for); runs before 2026-12-08 02:00 counted it in serve.
- DBOS runs its saga with one pool for its system tables and the
  application's, so each step is one transaction (the application's writes
  and the step's checkpoint), 10 % of orders out of stock and 10 % declined
  to exercise the compensations, at 16 and 64 workflows in flight; the
  better run counts. It has no event bus, outbox or read models.
- The Watermill figure is one hop (PlaceOrder command → order row + outbox
  event) in messages/s; the ratio sets Tradewind's whole saga against it,
  as issue 10's target does.
- The ceiling assumes Tradewind's current shape (its publishes, deliveries
  and rows per order); fewer of them per order raise it.

![orders/s and p99 across kept runs](performance/bench-saga.svg)

## make soak

` + "`make soak`" + ` (SOAK_FOR, 30 minutes by default) holds half the
maximum (SOAK_FLAGS=-soak-rate N to choose) and samples every 10 s:
completed vs offered orders/s (counted on cmd.orders.place and the terminal
events), read-model lag (the worst tradewind_projection_lag_seconds among
the projections that applied events in the last second), serve's RSS and
goroutines, the database's size and that of the tables that must stay
flat (core.outbox and the hot rows: stock, counters, checkpoints, the stock
read model); it prints a table with the verdicts (completed = offered
within 2 %, lag p99 < 1 s, growth < 5 % from the median of the second fifth
of the samples to the median of the last fifth), appends it below and
draws performance/soak.svg. The payment provider simulator runs in serve,
as with make run: its bounded working set is part of serve's RSS.

![the last soak over time](performance/soak.svg)

## Runs
`
