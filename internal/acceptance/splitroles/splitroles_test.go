// Package splitroles_test runs the order saga with its roles split across
// three `tradewind serve` processes sharing one NATS server and one
// PostgreSQL database, as a deployment with a process per role does.
package splitroles_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tradewind/tradewind/internal/acceptance"
	"github.com/tradewind/tradewind/internal/acceptance/serveproc"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/checker"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// process is one `tradewind serve` of the split deployment.
type process struct {
	serveproc.Process
	roles []string
	// consumers are the prefixes of the durable consumers it must run
	// (and no others): the proof that the roles really are split.
	consumers []string
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
	payURL := serveproc.StartProvider(t)
	// A database of this run's own: the package's would carry the previous
	// run's stock and checkpoints into this run's new streams (-count=N).
	dbURL := testenv.FreshDatabaseURL(t)

	procs := []*process{
		{Process: serveproc.Process{Name: "A"}, roles: []string{"orders", "relay"}, consumers: []string{"orders"}},
		{Process: serveproc.Process{Name: "B"}, roles: []string{"inventory", "relay"}, consumers: []string{"inventory"}},
		{Process: serveproc.Process{Name: "C"}, roles: []string{"payments", "projections", "relay"}, consumers: []string{"payments", "projection"}},
	}
	for _, p := range procs {
		p.DataDir = t.TempDir()
		serveproc.Start(t, bin, &p.Process, []string{
			"TRADEWIND_ROLES=" + strings.Join(p.roles, ","),
			"DATABASE_URL=" + dbURL,
			"NATS_URL=" + nats.URL,
			"TRADEWIND_PAYMENT_URL=" + payURL,
			"TRADEWIND_ORDER_DEADLINE=60s", // no order times out on a slow machine
			"TRADEWIND_DEADLINE_SWEEP=200ms",
		})
	}
	for _, p := range procs {
		waitRunsItsConsumers(t, p)
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
		m, err := serveproc.Scrape(&p.Process)
		if err != nil {
			t.Fatal(err)
		}
		if family(m, "tradewind_consumer_messages_total") == 0 {
			t.Errorf("process %s handled no message of its roles %v", p.Name, p.roles)
		}
		published += family(m, "tradewind_outbox_published_total")
		want := 0.0
		if p.Name == "A" {
			want = orders
		}
		if got := family(m, "tradewind_saga_outcomes_total"); got != want {
			t.Errorf("process %s counted %v saga outcomes, want %v", p.Name, got, want)
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

// waitRunsItsConsumers waits until p is ready and checks that it runs
// exactly the consumers of its roles.
func waitRunsItsConsumers(t *testing.T, p *process) {
	t.Helper()
	checks := serveproc.WaitReady(t, &p.Process)
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
		t.Fatalf("serve %s (roles %v) runs consumers of %v, want %v (readyz %v)", p.Name, p.roles, prefixes, p.consumers, checks)
	}
}

// family sums a metric family's series.
func family(series map[string]float64, name string) float64 {
	return series[name] + serveproc.Sum(series, name+"{")
}
