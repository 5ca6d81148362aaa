// Package splitroles_test runs the order saga with its roles split across
// three `tradewind serve` processes sharing one NATS server and one
// PostgreSQL database, as a deployment with a process per role does.
package splitroles_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tradewind/tradewind/internal/acceptance"
	"github.com/tradewind/tradewind/internal/app"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/checker"
	"github.com/tradewind/tradewind/internal/provider"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// process is one `tradewind serve` of the split deployment.
type process struct {
	name  string
	roles []string
	// consumers are the prefixes of the durable consumers it must run
	// (and no others): the proof that the roles really are split.
	consumers []string
	dataDir   string
	opsAddr   string // the operator listener (/readyz, /metrics), from the state file
}

// TestSagaWithRolesSplitAcrossThreeProcesses: every order reaches the
// outcome of its path and the invariant checker finds nothing, although
// each participant runs in another process. Every process runs a relay,
// but the relays take turns through one advisory lock, so which of them
// publishes is up to chance: the test claims only what the design
// guarantees, that every row reached the streams once, through some relay.
func TestSagaWithRolesSplitAcrossThreeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three processes")
	}
	started := time.Now()
	bin := testenv.BuildTradewind(t)
	nats := testenv.NATS(t)
	_, js := testenv.Connect(t, nats.URL)
	payURL := startProvider(t)
	// A database of this run's own: the package's would carry the previous
	// run's stock and checkpoints into this run's new streams (-count=N).
	dbURL := testenv.FreshDatabaseURL(t)

	procs := []*process{
		{name: "A", roles: []string{"orders", "relay"}, consumers: []string{"orders"}},
		{name: "B", roles: []string{"inventory", "relay"}, consumers: []string{"inventory"}},
		{name: "C", roles: []string{"payments", "projections", "relay"}, consumers: []string{"payments", "projection"}},
	}
	for _, p := range procs {
		p.dataDir = t.TempDir()
		serve(t, bin, p, []string{
			"DATABASE_URL=" + dbURL,
			"NATS_URL=" + nats.URL,
			"TRADEWIND_PAYMENT_URL=" + payURL,
			"TRADEWIND_ORDER_DEADLINE=60s", // no order times out on a slow machine
			"TRADEWIND_DEADLINE_SWEEP=200ms",
		})
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	t.Logf("three processes ready after %s", time.Since(started).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, err := acceptance.NewWorkload("split", js, testenv.PoolOn(t, dbURL))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	placing := time.Now()
	const orders = 100
	if err := w.PlaceMix(ctx, orders, 8); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitTerminal(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d orders %v terminal %s after the first was placed", orders, w.Placed(), time.Since(placing).Round(time.Millisecond))
	for _, c := range []acceptance.Class{acceptance.Happy, acceptance.OutOfStock, acceptance.UnknownSKU, acceptance.Declined} {
		if w.Placed()[c] == 0 {
			t.Errorf("no %s order placed: the mix does not cover every path", c)
		}
	}
	mis, err := w.Mismatches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mis {
		t.Error("wrong outcome:", m)
	}

	// Process C's projections saw every outcome the other processes decided.
	pool := testenv.PoolOn(t, dbURL)
	testenv.Eventually(t, time.Minute, "the orders read model matches orders.orders", func() bool {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM orders.orders c JOIN public.orders p USING (order_id)
			WHERE c.order_id = ANY($1::uuid[]) AND p.status = c.status`, w.IDs()).Scan(&n)
		return err == nil && n == orders
	})
	if err := acceptance.WaitQuiescent(ctx, js, pool); err != nil {
		t.Fatal(err)
	}
	rep, err := acceptance.Check(ctx, pool, js, payURL)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Orders < orders || rep.StreamEvents == 0 || rep.LedgerEntries == 0 {
		var b strings.Builder
		rep.Print(&b)
		t.Errorf("invariant check:\n%s", b.String())
	}

	// Each process's /metrics moved with the work it did: its consumers
	// handled messages, and every saga's end was counted exactly once, by
	// the orders process. The relays together published every message of
	// the streams the outbox feeds (at least once: a round whose commit
	// failed is published again), and the streams hold each event once.
	published := 0.0
	for _, p := range procs {
		m := scrape(t, p)
		if m["tradewind_consumer_messages_total"] == 0 {
			t.Errorf("process %s handled no message of its roles %v", p.name, p.roles)
		}
		published += m["tradewind_outbox_published_total"]
		want := 0.0
		if p.name == "A" {
			want = orders
		}
		if got := m["tradewind_saga_outcomes_total"]; got != want {
			t.Errorf("process %s counted %v saga outcomes, want %v", p.name, got, want)
		}
	}
	var inStreams uint64
	for _, name := range []string{broker.StreamEvents, broker.StreamNotifications} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		inStreams += info.State.Msgs
	}
	if inStreams == 0 || published < float64(inStreams) {
		t.Errorf("the relays published %v outbox rows, the EVENTS and NOTIFICATIONS streams hold %d: want every message relayed", published, inStreams)
	}
	evs, err := checker.ReadStream(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		if seen[e.ID] {
			t.Errorf("event %s (%s) is in EVENTS twice", e.ID, e.Subject)
		}
		seen[e.ID] = true
	}

	// Every read model recomputed from the stream from scratch is identical
	// to the live one the split system maintained.
	diffs, err := acceptance.RecomputeDiffers(ctx, pool, js)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Error("recomputed read model differs:", d)
	}
	t.Logf("checked %d orders, %d stream events, %d ledger entries: %d violations; whole test %s",
		rep.Orders, rep.StreamEvents, rep.LedgerEntries, len(rep.Violations), time.Since(started).Round(time.Millisecond))
}

// serve starts `tradewind serve` for p with its own data directory and
// HTTP address; it is interrupted and waited for when the test ends.
func serve(t *testing.T, bin string, p *process, env []string) {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), append(env,
		"TRADEWIND_ROLES="+strings.Join(p.roles, ","),
		// Ports the kernel picks: a port found free and released first may
		// be taken by another package's test before serve binds it.
		"TRADEWIND_DATA_DIR="+p.dataDir,
		"TRADEWIND_HTTP_ADDR=127.0.0.1:0",
		"TRADEWIND_OPS_ADDR=127.0.0.1:0",
		"TRADEWIND_LOG_LEVEL=warn",
	)...)
	lw := &logWriter{t: t, prefix: "serve " + p.name + ": "}
	cmd.Stdout, cmd.Stderr = lw, lw
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start serve %s: %v", p.name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		lw.stop()
	})
}

// waitReady waits for p's state file (which names its operator listener)
// and /readyz, and checks that it runs exactly the consumers of its roles.
func waitReady(t *testing.T, p *process) {
	t.Helper()
	var checks map[string]string
	testenv.Eventually(t, 60*time.Second, "serve "+p.name+" ready", func() bool {
		if p.opsAddr == "" {
			st, err := app.ReadState(p.dataDir)
			if err != nil || st.OpsURL == "" {
				return false
			}
			p.opsAddr = strings.TrimPrefix(st.OpsURL, "http://")
		}
		resp, err := http.Get("http://" + p.opsAddr + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct {
			Checks map[string]string `json:"checks"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
			return false
		}
		checks = body.Checks
		return resp.StatusCode == http.StatusOK
	})
	var prefixes []string
	for k := range checks {
		if name, ok := strings.CutPrefix(k, "consumer:"); ok {
			prefix, _, _ := strings.Cut(name, "-")
			if !slices.Contains(prefixes, prefix) {
				prefixes = append(prefixes, prefix)
			}
		}
	}
	slices.Sort(prefixes)
	if !slices.Equal(prefixes, p.consumers) {
		t.Fatalf("serve %s (roles %v) runs consumers of %v, want %v (readyz %v)", p.name, p.roles, prefixes, p.consumers, checks)
	}
}

// startProvider runs the payment provider simulator on a loopback port.
func startProvider(t *testing.T) string {
	t.Helper()
	sim, err := provider.NewServer(provider.Options{DataDir: t.TempDir(), Seed: 1, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { srv.Close(); _ = sim.Close() })
	return srv.URL
}

// logWriter copies a process's output into the test log until stop.
type logWriter struct {
	t       *testing.T
	prefix  string
	mu      sync.Mutex
	stopped bool
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			w.t.Log(w.prefix + l)
		}
	}
	return len(b), nil
}

func (w *logWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

// scrape sums each metric family of a process's /metrics over its labels.
func scrape(t *testing.T, p *process) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.opsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			rest = line[i+1:]
		}
		v, err := strconv.ParseFloat(rest, 64)
		if err == nil {
			out[name] += v
		}
	}
	return out
}
