// Package scaleout_test runs the order saga on three `tradewind serve`
// processes that each run every saga role, with the saga's events split
// into partitions (TRADEWIND_PARTITIONS) that the processes share through
// leases: the scale-out deployment of docs/architecture.md.
package scaleout_test

import (
	"bufio"
	"context"
	"fmt"
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
	"github.com/tradewind/tradewind/internal/provider"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// partitions: one per process and saga role.
//
// Several instances of inventory deadlock each other in PostgreSQL now and
// then (1 s each, deadlock_timeout; the runner retries), with or without
// partitions (TRADEWIND_PARTITIONS=1 shows as many): the orders' deadline
// is long enough that this only slows the run down.
const partitions = 3

// sagaGroups are the roles whose events are partitioned (lease groups).
var sagaGroups = []string{"inventory", "orders", "payments"}

type process struct {
	name    string
	dataDir string
	opsAddr string
	stop    func() // interrupts serve and waits for it to exit
}

// TestThreeProcessesOfEveryRoleShareTheOrders: with 3 partitions and three
// processes of every role, each process holds 1 partition of each saga
// role, every order reaches the outcome of its path, the invariant
// checker finds nothing, and every process handled events of every saga
// role (its share); when one process stops, the two others take over its
// partitions and the next orders end as well.
func TestThreeProcessesOfEveryRoleShareTheOrders(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three processes")
	}
	started := time.Now()
	bin := testenv.BuildTradewind(t)
	nats := testenv.NATS(t)
	_, js := testenv.Connect(t, nats.URL)
	payURL := startProvider(t)
	dbURL := testenv.FreshDatabaseURL(t)

	procs := []*process{{name: "A"}, {name: "B"}, {name: "C"}}
	for _, p := range procs {
		p.dataDir = t.TempDir()
		serve(t, bin, p, []string{
			"DATABASE_URL=" + dbURL,
			"NATS_URL=" + nats.URL,
			"TRADEWIND_PAYMENT_URL=" + payURL,
			"TRADEWIND_ROLES=orders,inventory,payments,notifier,projections,relay",
			"TRADEWIND_PARTITIONS=" + strconv.Itoa(partitions),
			"TRADEWIND_PARTITION_LEASE_TTL=3s",
			"TRADEWIND_ORDER_DEADLINE=150s", // no order times out, deadlocks and all
			"TRADEWIND_DEADLINE_SWEEP=200ms",
		})
	}
	for _, p := range procs {
		waitReady(t, p)
	}
	// The leases settle on the fair share: ceil(3/3) = 1 partition of
	// each saga role per process, so every partition has one holder.
	testenv.Eventually(t, time.Minute, "each process holds 1 partition of each saga role", func() bool {
		for _, p := range procs {
			m, err := scrape(p)
			if err != nil {
				return false
			}
			for _, g := range sagaGroups {
				if m[`tradewind_partition_held{group="`+g+`"}`] != float64(partitions/len(procs)) {
					return false
				}
			}
		}
		return true
	})
	t.Logf("three processes ready and partitions spread after %s", time.Since(started).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	w, err := acceptance.NewWorkload("scaleout", js, testenv.PoolOn(t, dbURL))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	const orders = 150
	placing := time.Now()
	if err := w.PlaceMix(ctx, orders, 8); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitTerminal(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d orders %v terminal %s after the first was placed", orders, w.Placed(), time.Since(placing).Round(time.Millisecond))
	mis, err := w.Mismatches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mis {
		t.Error("wrong outcome:", m)
	}
	pool := testenv.PoolOn(t, dbURL)
	if err := acceptance.WaitQuiescent(ctx, js, pool); err != nil {
		t.Fatal(err)
	}
	rep, err := acceptance.Check(ctx, pool, js, payURL)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Orders < orders || rep.StreamEvents == 0 {
		var b strings.Builder
		rep.Print(&b)
		t.Errorf("invariant check:\n%s", b.String())
	}

	// One durable consumer per saga role's event consumer and partition.
	st, err := js.Stream(ctx, broker.StreamPartitions)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range st.ListConsumers(ctx).Info() {
		names = append(names, n.Name)
	}
	for _, c := range []string{"inventory-events", "orders-events", "payments-events"} {
		for i := range partitions {
			if want := fmt.Sprintf("%s-p%d", c, i); !slices.Contains(names, want) {
				t.Errorf("no consumer %s on %s (has %v)", want, broker.StreamPartitions, names)
			}
		}
	}

	// Each process handled a share of every saga role's events: it runs
	// their consumers only for the partitions it holds.
	for _, p := range procs {
		m, err := scrape(p)
		if err != nil {
			t.Fatal(err)
		}
		var shares []string
		for _, c := range []string{"inventory-events", "orders-events", "payments-events"} {
			applied := m[`tradewind_consumer_messages_total{consumer="`+c+`",result="applied"}`]
			if applied == 0 {
				t.Errorf("process %s applied no message of %s: it did not take its share", p.name, c)
			}
			shares = append(shares, fmt.Sprintf("%s=%v", c, applied))
		}
		t.Logf("process %s applied %s; leases lost %v", p.name, strings.Join(shares, " "), sumPrefix(m, `tradewind_partition_lease_changes_total{change="lost"`))
	}
	// Every process reports the lag of every partition consumer of its
	// roles, whichever process runs it (polled every 5 s).
	lag := fmt.Sprintf(`tradewind_consumer_pending{consumer="orders-events-p%d",stream="PARTITIONS"}`, partitions-1)
	testenv.Eventually(t, 30*time.Second, "every process reports "+lag, func() bool {
		for _, p := range procs {
			m, err := scrape(p)
			if err != nil {
				return false
			}
			if _, ok := m[lag]; !ok {
				return false
			}
		}
		return true
	})
	t.Logf("checked %d orders, %d stream events: %d violations after %s",
		rep.Orders, rep.StreamEvents, len(rep.Violations), time.Since(started).Round(time.Millisecond))

	// Fail-over: C stops (releasing its leases on its way down); A and B
	// take its partitions, at most ceil(3/2) = 2 each, and the saga goes on.
	procs[2].stop()
	testenv.Eventually(t, time.Minute, "A and B hold every partition of each saga role", func() bool {
		held := map[string]float64{}
		for _, p := range procs[:2] {
			m, err := scrape(p)
			if err != nil {
				return false
			}
			for _, g := range sagaGroups {
				held[g] += m[`tradewind_partition_held{group="`+g+`"}`]
			}
		}
		for _, g := range sagaGroups {
			if held[g] != partitions {
				return false
			}
		}
		return true
	})
	w2, err := acceptance.NewWorkload("scaleout2", js, pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w2.PlaceMix(ctx, orders/3, 8); err != nil {
		t.Fatal(err)
	}
	if err := w2.WaitTerminal(ctx); err != nil {
		t.Fatal(err)
	}
	if mis, err = w2.Mismatches(ctx); err != nil {
		t.Fatal(err)
	}
	for _, m := range mis {
		t.Error("wrong outcome after the fail-over:", m)
	}
	if err := acceptance.WaitQuiescent(ctx, js, pool); err != nil {
		t.Fatal(err)
	}
	if rep, err = acceptance.Check(ctx, pool, js, payURL); err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Orders < orders+orders/3 {
		var b strings.Builder
		rep.Print(&b)
		t.Errorf("invariant check after the fail-over:\n%s", b.String())
	}
	t.Logf("after C stopped: checked %d orders: %d violations; whole test %s",
		rep.Orders, len(rep.Violations), time.Since(started).Round(time.Millisecond))
}

func sumPrefix(m map[string]float64, prefix string) float64 {
	var v float64
	for k, x := range m {
		if strings.HasPrefix(k, prefix) {
			v += x
		}
	}
	return v
}

// serve starts `tradewind serve` for p; it is interrupted and waited for
// when the test ends.
func serve(t *testing.T, bin string, p *process, env []string) {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), append(env,
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
	p.stop = sync.OnceFunc(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		lw.stop()
	})
	t.Cleanup(p.stop)
}

// waitReady waits for p's state file and a 200 from its /readyz.
func waitReady(t *testing.T, p *process) {
	t.Helper()
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
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

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

// scrape reads a process's /metrics: each series (name{labels}) and its
// value.
func scrape(p *process) (map[string]float64, error) {
	resp, err := http.Get("http://" + p.opsAddr + "/metrics")
	if err != nil {
		return nil, err
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
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] += v
		}
	}
	return out, sc.Err()
}

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
