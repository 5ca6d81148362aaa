package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Record is one bench run, as kept in docs/performance/bench-saga.json.
type Record struct {
	Date    string `json:"date"`
	Commit  string `json:"commit"`
	Quick   bool   `json:"quick,omitempty"`
	Cores   int    `json:"cores"`
	LoadAvg string `json:"loadavg_at_start"`
	Valid   bool   `json:"valid"`
	Invalid string `json:"invalid,omitempty"` // why not

	MaxDefault Phase   `json:"max_default_mix"`
	MaxHappy   Phase   `json:"max_happy"`
	At100      Phase   `json:"at_100"`
	At1000     Phase   `json:"at_1000"`
	AtQuarter  *Phase  `json:"at_quarter_of_max,omitempty"` // when 100/s is not well below the maximum
	RSSServeMB float64 `json:"peak_rss_serve_mb"`
	RSSNATSMB  float64 `json:"peak_rss_nats_mb"`
	Violations int     `json:"check_violations"`
	Check      string  `json:"check_tail"`

	Ceiling Ceiling `json:"ceiling"`

	WatermillMsgsPerSec float64  `json:"watermill_slice_msgs_per_sec"`
	RunnerMsgsPerSec    float64  `json:"runner_slice_msgs_per_sec"`
	DBOS                []DBOS   `json:"dbos"`
	Notes               []string `json:"notes,omitempty"`
}

// Phase is one `tradewind load` phase.
type Phase struct {
	Mix         string  `json:"mix"`
	Rate        float64 `json:"offered_rate"` // 0: as fast as possible
	Orders      int     `json:"orders"`
	Completed   int     `json:"completed"`
	Pending     int     `json:"pending"`
	AcceptedPS  float64 `json:"accepted_per_sec"`
	CompletedPS float64 `json:"completed_per_sec"`
	Latency     Latency `json:"latency_ms"`
	CPU         CPU     `json:"cpu_ms_per_order"`
	LoadCPU     float64 `json:"load_generator_cpu_ms_per_order"`
	Note        string  `json:"note,omitempty"`
}

// DBOS is one run of the DBOS baseline (its own JSON).
type DBOS struct {
	Concurrency     int     `json:"concurrency"`
	Completed       int     `json:"completed"`
	Failed          int     `json:"failed"`
	CompletedPerSec float64 `json:"completed_per_sec"`
	Latency         Latency `json:"latency_ms"`
	CPU             struct {
		App      float64 `json:"app"`
		Postgres float64 `json:"postgres"`
	} `json:"cpu_ms_per_order"`
	Violations map[string]int `json:"violations"`
	FirstError string         `json:"first_error,omitempty"`
}

// best is the DBOS run with the most completed orders/s.
func (r *Record) bestDBOS() *DBOS {
	var b *DBOS
	for i := range r.DBOS {
		if b == nil || r.DBOS[i].CompletedPerSec > b.CompletedPerSec {
			b = &r.DBOS[i]
		}
	}
	return b
}

func (r *Record) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
	logf("note: "+format, args...)
}

func bench(ctx context.Context, cfg *config) error {
	started := time.Now()
	rec := &Record{Date: started.UTC().Format("2006-01-02 15:04 UTC"), Commit: gitCommit(), Quick: cfg.quick, Cores: cores(), LoadAvg: loadAvg()}
	if err := benchTradewind(ctx, cfg, rec); err != nil {
		rec.Invalid = err.Error()
		logf("tradewind: %v", err)
	}
	if !cfg.skipWatermill {
		logf("baseline: Watermill router, PlaceOrder slice (go test -bench PlaceOrderSlice ./internal/runner)")
		if err := benchWatermill(ctx, rec); err != nil {
			rec.note("watermill baseline: %v", err)
		}
	}
	if !cfg.skipDBOS {
		for _, n := range cfg.dbosInFlight {
			logf("baseline: DBOS Transact, %d workflows in flight, %s", n, cfg.dbosFor)
			d, err := benchDBOS(ctx, cfg, n)
			if err != nil {
				rec.note("DBOS baseline at %d in flight: %v", n, err)
				continue
			}
			rec.DBOS = append(rec.DBOS, *d)
		}
	}
	if pending := rec.MaxHappy.Pending + rec.MaxDefault.Pending + rec.At100.Pending + rec.At1000.Pending; pending > 0 && rec.Invalid == "" {
		rec.Invalid = fmt.Sprintf("%d orders got no terminal event in time", pending)
	}
	rec.Valid = rec.Invalid == "" && rec.Violations == 0 && rec.MaxHappy.Completed > 0
	if !rec.Valid && rec.Invalid == "" {
		rec.Invalid = fmt.Sprintf("tradewind check: %d violations", rec.Violations)
	}
	table := renderTable(rec)
	fmt.Println(table)
	logf("bench-saga took %s", time.Since(started).Round(time.Second))
	if cfg.record {
		if err := recordRun(cfg, rec, table); err != nil {
			return err
		}
	}
	if !rec.Valid {
		return fmt.Errorf("run invalid: %s", rec.Invalid)
	}
	return nil
}

// benchTradewind runs the Tradewind phases and the machine's limit on one
// stack.
func benchTradewind(ctx context.Context, cfg *config, rec *Record) error {
	logf("tradewind: starting nats-server, a fresh database and tradewind serve (all roles)")
	st, err := startStack(ctx, cfg, "tw", true)
	if err != nil {
		return err
	}
	defer st.close(ctx)
	idle := func() {
		if err := st.waitIdle(ctx, 3*time.Minute); err != nil {
			rec.note("not at rest before the next phase: %v", err)
		}
	}
	totalCompleted := 0
	phase := func(label, mix string, rate float64, args ...string) (Phase, error) {
		logf("tradewind: %s", label)
		a := append([]string{"--mix", mix, "--rate", strconv.FormatFloat(rate, 'f', -1, 64)}, args...)
		c0 := st.cpu(ctx)
		sum, err := st.load(ctx, a...)
		c1 := st.cpu(ctx)
		if sum == nil {
			return Phase{}, err
		}
		p := Phase{Mix: mix, Rate: rate, Orders: sum.Orders, Completed: sum.Completed, Pending: sum.Pending,
			AcceptedPS: sum.AcceptedPerSec, CompletedPS: sum.CompletedPerSec, Latency: sum.Latency,
			CPU: perOrder(c0, c1, sum.Completed)}
		if sum.Completed > 0 {
			p.LoadCPU = sum.clientCPU.Seconds() * 1000 / float64(sum.Completed)
		}
		totalCompleted += sum.Completed
		logf("tradewind:   %d completed, %.0f/s completed, p50 %.1f ms, p99 %.1f ms, CPU ms/order serve %.2f nats %.2f pg %.2f",
			sum.Completed, sum.CompletedPerSec, sum.Latency.P50, sum.Latency.P99, p.CPU.Serve, p.CPU.NATS, p.CPU.Postgres)
		if err != nil {
			p.Note = err.Error()
			rec.note("%s: %v", label, err)
		}
		idle()
		return p, nil
	}

	probeOrders := 2000
	if cfg.quick {
		probeOrders = 300
	}
	probe, err := phase(fmt.Sprintf("probe: %d orders as fast as possible (happy=100)", probeOrders), "happy=100", 0, "--orders", strconv.Itoa(probeOrders))
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	peak := max(probe.CompletedPS, 10)

	secs := fmt.Sprintf("%ds", int(cfg.latencyFor.Seconds()))
	if rec.At100, err = phase("at rest, 100 orders/s for "+secs, "happy=100", 100, "--duration", secs); err != nil {
		return err
	}
	if peak < 100 {
		rec.At100.Note = fmt.Sprintf("above capacity (probe: %.0f/s)", peak)
	}
	if peak < 400 {
		// 100/s is not at rest on this machine today: also measure the
		// latency at a quarter of the maximum, where it is.
		q := float64(max(5, int(peak/4)))
		p, err := phase(fmt.Sprintf("at rest, %.0f orders/s (a quarter of the probe's maximum) for %s", q, secs), "happy=100", q, "--duration", secs)
		if err != nil {
			return err
		}
		rec.AtQuarter = &p
	}
	at1000 := secs
	if peak < 1000 {
		// Above capacity the queue grows for as long as the phase lasts:
		// keep it short so the run ends in time, and say so.
		at1000 = "3s"
	}
	if rec.At1000, err = phase("at rest, 1,000 orders/s for "+at1000, "happy=100", 1000, "--duration", at1000); err != nil {
		return err
	}
	if peak < 1000 {
		rec.At1000.Note = fmt.Sprintf("above capacity (probe: %.0f/s): offered for %s only", peak, at1000)
	}
	orders := strconv.Itoa(clamp(int(peak*cfg.maxFor.Seconds()), 1000, 200000))
	if rec.MaxHappy, err = phase("maximum, happy=100, "+orders+" orders", "happy=100", 0, "--orders", orders); err != nil {
		return err
	}
	orders = strconv.Itoa(clamp(int(rec.MaxHappy.CompletedPS*cfg.maxFor.Seconds()), 1000, 200000))
	if rec.MaxDefault, err = phase("maximum, default mix, "+orders+" orders", defaultMix, 0, "--orders", orders); err != nil {
		return err
	}
	rec.RSSServeMB, rec.RSSNATSMB = st.peakRSS()

	logf("tradewind: check")
	rec.Violations, rec.Check, err = st.check(ctx)
	if err != nil {
		return err
	}

	logf("machine limit: JetStream publish/consume and PostgreSQL COPY")
	c := &rec.Ceiling
	pubs, dels, avg := st.natsCounts(ctx)
	rows, width, tables, err := st.rowsWritten(ctx)
	if err != nil {
		rec.note("rows per order: %v", err)
	}
	if totalCompleted > 0 {
		n := float64(totalCompleted)
		c.PublishesPerOrder = float64(pubs) / n
		c.DeliveriesPerOrd = float64(dels) / n
		c.RowsPerOrder = float64(rows) / n
		for _, t := range tables[:min(8, len(tables))] {
			c.TopTables = append(c.TopTables, TableRate{Table: t.name, RowsPerOrder: float64(t.n) / n})
		}
	}
	c.MsgBytes, c.RowBytes = max(int(avg), 64), max(width, 64)
	n := 100000
	if cfg.quick {
		n = 20000
	}
	if c.PublishPerSec, c.ConsumePerSec, err = natsRates(ctx, st.js, n, c.MsgBytes); err != nil {
		rec.note("nats rates: %v", err)
	}
	if c.CopyRowsPerSec, err = st.copyRate(ctx, 2*n, c.RowBytes); err != nil {
		rec.note("copy rate: %v", err)
	}
	c.estimate()
	return nil
}

// defaultMix is `tradewind load`'s default (internal/loadgen.DefaultMix).
const defaultMix = "happy=70,oos=10,decline=10,cancel=5,timeout=3,outage=2"

func clamp(v, lo, hi int) int { return min(max(v, lo), hi) }

// benchWatermill runs the runner's PlaceOrder-slice benchmark: Tradewind's
// runner and the plain Watermill router, same NATS and PostgreSQL.
func benchWatermill(ctx context.Context, rec *Record) error {
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-run=NONE", "-bench=PlaceOrderSlice", "-benchtime=3x", "./internal/runner")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, lastLines(out.String(), 5))
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !strings.HasPrefix(f[0], "BenchmarkPlaceOrderSlice/") {
			continue
		}
		for i := 1; i < len(f); i++ {
			if f[i] == "msgs/s" {
				v, _ := strconv.ParseFloat(f[i-1], 64)
				switch {
				case strings.Contains(f[0], "watermill"):
					rec.WatermillMsgsPerSec = v
				case strings.Contains(f[0], "runner"):
					rec.RunnerMsgsPerSec = v
				}
			}
		}
	}
	if rec.WatermillMsgsPerSec == 0 {
		return fmt.Errorf("no watermill-baseline msgs/s in: %s", lastLines(out.String(), 5))
	}
	return nil
}

// benchDBOS runs the DBOS baseline on a fresh database of the same server.
func benchDBOS(ctx context.Context, cfg *config, inflight int) (*DBOS, error) {
	db := fmt.Sprintf("tw_bench_dbos_%d", os.Getpid())
	if err := adminExec(ctx, cfg.pgBase, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", db)); err != nil {
		return nil, err
	}
	if err := adminExec(ctx, cfg.pgBase, "CREATE DATABASE "+db); err != nil {
		return nil, err
	}
	defer func() {
		_ = adminExec(context.WithoutCancel(ctx), cfg.pgBase, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", db))
	}()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, cfg.dbosBin, "-database-url", fmt.Sprintf("%s/%s?sslmode=disable", cfg.pgBase, db),
		"-duration", cfg.dbosFor.String(), "-concurrency", strconv.Itoa(inflight), "-oos", "10", "-decline", "10")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, lastLines(errb.String(), 5))
	}
	var d DBOS
	if err := json.Unmarshal(out.Bytes(), &d); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	logf("baseline:   DBOS %d in flight: %.0f orders/s, p50 %.1f ms, p99 %.1f ms, CPU ms/order app %.2f pg %.2f",
		inflight, d.CompletedPerSec, d.Latency.P50, d.Latency.P99, d.CPU.App, d.CPU.Postgres)
	return &d, nil
}

func gitCommit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
