package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// sample is one soak interval.
type sample struct {
	at          time.Duration // since the soak started
	offered     float64       // PlaceOrder commands/s on cmd.orders.place
	completed   float64       // terminal events/s (orders.confirmed, orders.cancelled)
	lagP99      float64       // seconds: p99 over the interval's 1 s readings of the worst projection's lag (see freshLag)
	rssMB       float64
	goroutines  float64
	dbMB        float64
	queueMB     float64 // the tables that must stay flat: see flatTables
	serveCPUPct float64
}

// soak holds half the maximum (or -soak-rate) for -soak-for and samples
// the system every -soak-interval. The verdicts are the issue's: completed
// rate = offered rate throughout, read-model lag p99 < 1 s, RSS and
// goroutines flat after warm-up (growth < 5 %), queue tables flat.
func soak(ctx context.Context, cfg *config) error {
	logf("soak: starting nats-server, a fresh database and tradewind serve (all roles)")
	commit, loadAtStart := gitCommit(), loadAvg()  // what runs, and how busy the machine was, at the start
	st, err := startStack(ctx, cfg, "soak", false) // the simulator in serve, as `make run` has it: its memory is part of the verdict
	if err != nil {
		return err
	}
	defer st.close(ctx)
	rate := cfg.soakRate
	if rate == 0 {
		logf("soak: probing the maximum (2,000 orders, happy=100)")
		sum, err := st.load(ctx, "--orders", "2000", "--rate", "0", "--mix", "happy=100")
		if sum == nil {
			return fmt.Errorf("probe: %w", err)
		}
		rate = float64(int(sum.CompletedPerSec / 2))
		if err := st.waitIdle(ctx, 3*time.Minute); err != nil {
			logf("soak: %v", err)
		}
	}
	logf("soak: %.0f orders/s, mix %s, for %s, a sample every %s", rate, cfg.soakMix, cfg.soakFor, cfg.soakInterval)

	var offered, completed atomic.Int64
	for subj, n := range map[string]*atomic.Int64{"cmd.orders.place": &offered, "evt.orders.confirmed.*": &completed, "evt.orders.cancelled.*": &completed} {
		sub, err := st.nc.Subscribe(subj, func(*nats.Msg) { n.Add(1) })
		if err != nil {
			return err
		}
		_ = sub.SetPendingLimits(-1, -1)
		defer func() { _ = sub.Unsubscribe() }()
	}

	var (
		loadSum *LoadSummary
		loadErr error
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		loadSum, loadErr = st.load(ctx, "--duration", cfg.soakFor.String(), "--rate", strconv.FormatFloat(rate, 'f', -1, 64), "--mix", cfg.soakMix)
	}()
	loadDone := make(chan struct{})
	go func() { wg.Wait(); close(loadDone) }()

	start := time.Now()
	var samples []sample
	var lagAll []float64
	lastOff, lastDone, lastCPU, lastAt := offered.Load(), completed.Load(), procTicks(st.servePID()), start
	var lags []float64
	var prevLags map[string]float64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	next := start.Add(cfg.soakInterval)
loop:
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-loadDone:
			break loop
		case now := <-tick.C:
			m := scrape(ctx, "http://"+st.opsAddr+"/metrics")
			if lag, ok := freshLag(prevLags, m.lags); ok {
				lags = append(lags, lag)
			}
			prevLags = m.lags
			if now.Before(next) {
				continue
			}
			next = next.Add(cfg.soakInterval)
			secs := now.Sub(lastAt).Seconds()
			off, done, cpu := offered.Load(), completed.Load(), procTicks(st.servePID())
			s := sample{
				at: now.Sub(start), offered: float64(off-lastOff) / secs, completed: float64(done-lastDone) / secs,
				lagP99: pct(lags, 0.99), rssMB: float64(procStatusKB(st.servePID(), "VmRSS")) / 1024, goroutines: m.goroutines,
				serveCPUPct: float64(cpu-lastCPU) / clkTck / secs * 100,
			}
			_ = st.pool.QueryRow(ctx, `SELECT pg_database_size(current_database()) / 1048576.0`).Scan(&s.dbMB)
			_ = st.pool.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(to_regclass(t))), 0) / 1048576.0 FROM unnest($1::text[]) AS t`, flatTables).Scan(&s.queueMB)
			lagAll = append(lagAll, lags...)
			lags = lags[:0]
			lastOff, lastDone, lastCPU, lastAt = off, done, cpu, now
			samples = append(samples, s)
			logf("soak: %5s offered %.0f/s completed %.0f/s lag p99 %.2fs rss %.0f MB goroutines %.0f db %.0f MB queue and hot-row tables %.1f MB serve CPU %.0f%%",
				s.at.Round(time.Second), s.offered, s.completed, s.lagP99, s.rssMB, s.goroutines, s.dbMB, s.queueMB, s.serveCPUPct)
		}
	}
	table := soakTable(cfg, commit, loadAtStart, rate, samples, lagAll, loadSum, loadErr)
	fmt.Println(table)
	if cfg.record {
		if err := recordSoak(cfg, table, samples, rate); err != nil {
			return err
		}
	}
	return nil
}

// flatTables are the tables whose size must not grow with the orders
// placed: the outbox (a queue) and the rows every order updates (stock,
// counters, checkpoints, the stock read model). The others hold one row
// set per order or event, kept by design, and grow with the data
// (database MB).
var flatTables = []string{"core.outbox", "inventory.inventory", "proj.inventory_v1", "public.notification_counters", "public.projection_checkpoints"}

// metrics is what the soak reads from serve's /metrics.
type metrics struct {
	lags       map[string]float64 // tradewind_projection_lag_seconds by projection
	goroutines float64
}

// freshLag is the worst lag among the projections whose gauge moved since
// prev: the gauge is set when a projection applies events, so one that
// applied nothing since (a catalogue projection during an order soak)
// still shows an old reading that says nothing about now.
func freshLag(prev, cur map[string]float64) (float64, bool) {
	worst, seen := 0.0, false
	for k, v := range cur {
		if p, ok := prev[k]; ok && p == v {
			continue
		}
		worst, seen = max(worst, v), true
	}
	return worst, seen
}

func scrape(ctx context.Context, url string) metrics {
	m := metrics{lags: map[string]float64{}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(name, "tradewind_projection_lag_seconds"):
			m.lags[name] = v
		case name == "go_goroutines":
			m.goroutines = v
		}
	}
	return m
}

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[max(0, min(int(p*float64(len(s))+0.5)-1, len(s)-1))]
}

// growth is the change in percent from just after warm-up to the end:
// the median of the samples in the second fifth of the run against the
// median of the last fifth. Medians, because single samples of RSS and of
// table sizes swing by several percent between garbage collections and
// vacuums; the first fifth is warm-up (caches, pools, the payment
// simulator's working set filling up).
func growth(samples []sample, f func(sample) float64) float64 {
	n := len(samples)
	w := n / 5
	if w == 0 {
		return 0
	}
	median := func(ss []sample) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	a, b := median(samples[w:2*w]), median(samples[n-w:])
	if a == 0 {
		return 0
	}
	return (b - a) / a * 100
}

func soakTable(cfg *config, commit, loadAtStart string, rate float64, samples []sample, lagAll []float64, sum *LoadSummary, loadErr error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### soak %s · %s · %s at %.0f orders/s (%s) · load average %s at start\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), commit, cfg.soakFor, rate, cfg.soakMix, loadAtStart)
	b.WriteString("| minute | offered/s | completed/s | read-model lag p99 s | serve RSS MB | goroutines | database MB | queue and hot-row tables MB | serve CPU % |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	per := max(1, int(time.Minute/cfg.soakInterval))
	for i := 0; i < len(samples); i += per {
		j := min(i+per, len(samples))
		var off, done, lag, cpu float64
		for _, s := range samples[i:j] {
			off += s.offered
			done += s.completed
			lag = max(lag, s.lagP99)
			cpu += s.serveCPUPct
		}
		n := float64(j - i)
		last := samples[j-1]
		fmt.Fprintf(&b, "| %.1f | %.0f | %.0f | %.2f | %.0f | %.0f | %.0f | %.1f | %.0f |\n",
			last.at.Minutes(), off/n, done/n, lag, last.rssMB, last.goroutines, last.dbMB, last.queueMB, cpu/n)
	}
	b.WriteString("\n")
	var offT, doneT float64
	for _, s := range samples {
		offT += s.offered
		doneT += s.completed
	}
	lagP99 := pct(lagAll, 0.99)
	rss, gor, flat := growth(samples, func(s sample) float64 { return s.rssMB }), growth(samples, func(s sample) float64 { return s.goroutines }),
		growth(samples, func(s sample) float64 { return s.queueMB })
	ok := func(c bool) string {
		if c {
			return "met"
		}
		return "NOT met"
	}
	ratio := 0.0
	if offT > 0 {
		ratio = doneT / offT
	}
	fmt.Fprintf(&b, "- completed / offered over the run: %.3f (%s: within 2 %%)\n", ratio, ok(ratio > 0.98 && ratio < 1.02))
	fmt.Fprintf(&b, "- read-model lag p99 over every 1 s reading: %.3f s (%s: < 1 s)\n", lagP99, ok(lagP99 < 1))
	fmt.Fprintf(&b, "- growth after warm-up (median of the second fifth of the samples to median of the last fifth): serve RSS %+.1f %% (%s), goroutines %+.1f %% (%s), queue and hot-row tables (%s) %+.1f %% (%s: < 5 %%)\n",
		rss, ok(rss < 5), gor, ok(gor < 5), strings.Join(flatTables, ", "), flat, ok(flat < 5))
	if sum != nil {
		fmt.Fprintf(&b, "- tradewind load: %d accepted, %d completed, %d pending; latency p50 %.1f ms, p99 %.1f ms\n",
			sum.Accepted, sum.Completed, sum.Pending, sum.Latency.P50, sum.Latency.P99)
	}
	if loadErr != nil {
		fmt.Fprintf(&b, "- tradewind load: %v\n", loadErr)
	}
	return b.String()
}

func recordSoak(cfg *config, table string, samples []sample, rate float64) error {
	dir := filepath.Join(cfg.docs, "performance")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	md := filepath.Join(cfg.docs, "performance.md")
	if _, err := os.Stat(md); err != nil {
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
	pts := func(f func(sample) float64) [][2]float64 {
		out := make([][2]float64, len(samples))
		for i, s := range samples {
			out[i] = [2]float64{s.at.Minutes(), f(s)}
		}
		return out
	}
	svg := svgChart(fmt.Sprintf("make soak: %.0f orders/s for %s", rate, cfg.soakFor), 3, []panel{
		{title: "orders/s", unit: "orders/s", xUnit: "minutes", series: []series{
			{name: "offered", pts: pts(func(s sample) float64 { return s.offered }), dash: true},
			{name: "completed", pts: pts(func(s sample) float64 { return s.completed })}}},
		{title: "read-model lag p99", unit: "s", xUnit: "minutes", series: []series{{name: "worst projection", pts: pts(func(s sample) float64 { return s.lagP99 })}}},
		{title: "serve RSS", unit: "MB", xUnit: "minutes", series: []series{{name: "VmRSS", pts: pts(func(s sample) float64 { return s.rssMB })}}},
		{title: "serve goroutines", unit: "goroutines", xUnit: "minutes", series: []series{{name: "go_goroutines", pts: pts(func(s sample) float64 { return s.goroutines })}}},
		{title: "table sizes", unit: "MB", xUnit: "minutes", series: []series{
			{name: "database", pts: pts(func(s sample) float64 { return s.dbMB })},
			{name: "queue and hot-row tables", pts: pts(func(s sample) float64 { return s.queueMB })}}},
		{title: "serve CPU", unit: "% of a core", xUnit: "minutes", series: []series{{name: "serve", pts: pts(func(s sample) float64 { return s.serveCPUPct })}}},
	})
	path := filepath.Join(dir, "soak.svg")
	if err := os.WriteFile(path, []byte(svg), 0o644); err != nil {
		return err
	}
	logf("appended the soak table to %s and drew %s", md, path)
	return nil
}
