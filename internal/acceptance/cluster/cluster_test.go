// Package cluster_test runs the order saga on a 3-node NATS JetStream
// cluster with R3 streams, kills a node under load, keeps going, brings
// it back, and proves every order's outcome and every invariant.
//
// The nodes are nats-server OS processes (built from the module go.mod
// requires) with the clustering and fsync policy of deploy/nats, and a
// node is lost by SIGKILL to its process group: no shutdown, no lame
// duck, no final flush. The default run places 350 orders and kills one
// node: the leader of the EVENTS stream, so a leader election happens
// under load. TRADEWIND_CLUSTER_LONG=1 places 1000 orders per phase and
// kills each of the three nodes in turn (the EVENTS leader first).
package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"

	"github.com/tradewind/tradewind/internal/acceptance"
	"github.com/tradewind/tradewind/internal/acceptance/serveproc"
	"github.com/tradewind/tradewind/internal/app"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/checker"
	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// streams are Tradewind's streams, all of which must be R3.
var streams = []string{broker.StreamCommands, broker.StreamEvents, broker.StreamNotifications, broker.StreamDLQ}

// TestSagaSurvivesLosingANodeOfTheCluster: orders placed before, during
// and after one node's outage all reach the outcome of their path — those
// placed while it is down complete while it is down — the killed node
// restarts on its store and catches up, and the invariant checker finds
// nothing.
func TestSagaSurvivesLosingANodeOfTheCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 3-node cluster under load")
	}
	perPhase, rounds := 100, 1
	if os.Getenv("TRADEWIND_CLUSTER_LONG") != "" {
		perPhase, rounds = 1000, 3
	}
	started := time.Now()
	bin := buildNATSServer(t)
	syncInterval := deployedSyncInterval(t)
	c := startNATSProcs(t, bin, t.TempDir(), 3, syncInterval)
	if err := c.waitReady(time.Minute); err != nil {
		t.Fatal(err)
	}
	_, js := testenv.Connect(t, c.URL())
	// Generous: each outage may cost a consumer's AckWait (10 s) or more.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute+2*time.Minute*time.Duration(rounds))
	defer cancel()
	topo := broker.DefaultTopology()
	topo.Replicas = 3
	if err := broker.EnsureStreams(ctx, js, topo); err != nil {
		t.Fatal(err)
	}
	waitReplicasCurrent(t, ctx, js, 3)
	t.Logf("3 nats-server processes (sync_interval %s) with R3 streams ready after %s", syncInterval, time.Since(started).Round(time.Millisecond))

	payURL := serveproc.StartProvider(t)
	// A database of this run's own: the package's would carry the previous
	// run's stock and checkpoints into this run's new streams (-count=N).
	dbURL := testenv.FreshDatabaseURL(t)
	serveInProcess(t, c.URL(), payURL, dbURL)
	pool := testenv.PoolOn(t, dbURL)
	w, err := acceptance.NewWorkload("cluster", js, pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Seed(ctx); err != nil {
		t.Fatal(err)
	}

	// Before: the cluster is whole.
	placed := phase(t, ctx, w, "before any outage", perPhase, nil)
	killed := map[int]bool{}
	for round := range rounds {
		victim := streamLeader(t, ctx, js, broker.StreamEvents)
		for i := 0; killed[victim]; i++ {
			victim = i // each node once: the EVENTS leader, then the others
		}
		killed[victim] = true
		name := fmt.Sprintf("node %d (%s)", victim+1, c.URLs()[victim])
		// During: the node is killed while orders are being placed.
		placed += phase(t, ctx, w, fmt.Sprintf("round %d: %s killed under load", round+1, name), perPhase, func() {
			leads := victim == streamLeader(t, ctx, js, broker.StreamEvents)
			t.Logf("consumer leaders before the kill: %v", consumerLeaders(ctx, js))
			if err := c.kill(victim); err != nil {
				t.Fatal(err)
			}
			t.Logf("SIGKILLed %s (leader of %s: %v)", name, broker.StreamEvents, leads)
		})
		if got := streamLeader(t, ctx, js, broker.StreamEvents); got == victim {
			t.Fatalf("%s still leads %s while killed", name, broker.StreamEvents)
		}
		// While down: orders placed entirely after the kill complete too.
		placed += phase(t, ctx, w, fmt.Sprintf("round %d: %s down", round+1, name), perPhase/2, nil)
		if c.running(victim) || !c.refusesClients(victim) {
			t.Fatalf("%s came back before the test restarted it", name)
		}
		if why := c.crashed(); why != "" {
			t.Fatal(why)
		}
		// After: it comes back on its store, catches up, and takes part.
		if err := c.start(victim); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		if err := c.waitReady(time.Minute); err != nil {
			t.Fatal(err)
		}
		waitReplicasCurrent(t, ctx, js, 3)
		n, ok := c.restored(victim, broker.StreamEvents)
		if !ok || n == 0 {
			t.Fatalf("%s did not restore %s from its store (restored %d, logged: %v)", name, broker.StreamEvents, n, ok)
		}
		t.Logf("%s restarted, restored %d %s messages from its store, healthy with every stream replica current after %s",
			name, n, broker.StreamEvents, time.Since(back).Round(time.Millisecond))
		placed += phase(t, ctx, w, fmt.Sprintf("round %d: after %s rejoined", round+1, name), perPhase, nil)
	}

	mis, err := w.Mismatches(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mis {
		t.Error("wrong outcome:", m)
	}
	quiet := time.Now()
	if err := acceptance.WaitQuiescent(ctx, js, pool); err != nil {
		t.Fatal(err)
	}
	t.Logf("at rest %s after the last order was terminal", time.Since(quiet).Round(time.Millisecond))
	rep := check(t, ctx, js, pool, payURL)
	if !rep.OK() || rep.Orders < placed || rep.StreamEvents == 0 || rep.LedgerEntries == 0 {
		var b strings.Builder
		rep.Print(&b)
		t.Errorf("invariant check (%d orders placed):\n%s", placed, b.String())
	}
	if why := c.crashed(); why != "" {
		t.Error(why)
	}
	t.Logf("%d orders %v; checked %d stream events, %d ledger entries: %d violations; whole test %s",
		rep.Orders, w.Placed(), rep.StreamEvents, rep.LedgerEntries, len(rep.Violations), time.Since(started).Round(time.Millisecond))
}

// check runs the invariant checker. (Its read of EVENTS retries a pull
// that meets "no responders", as one can on a cluster of processes while
// the ordered consumer is re-created: checker.ReadStream.)
func check(t *testing.T, ctx context.Context, js jetstream.JetStream, pool *pgxpool.Pool, payURL string) *checker.Report {
	t.Helper()
	rep, err := acceptance.Check(ctx, pool, js, payURL)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// phase places n orders (8 publishes in flight), calling disrupt once a
// third of them are placed, waits until every order placed so far is
// terminal, and returns n.
func phase(t *testing.T, ctx context.Context, w *acceptance.Workload, name string, n int, disrupt func()) int {
	t.Helper()
	start := time.Now()
	before := len(w.IDs())
	placed := make(chan error, 1)
	go func() { placed <- w.PlaceMix(ctx, n, 8) }()
	if disrupt != nil {
		testenv.Eventually(t, time.Minute, "a third of the phase placed", func() bool { return len(w.IDs()) >= before+n/3 })
		disrupt()
	}
	if err := <-placed; err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	// A delivery lost with the killed node waits for its consumer's
	// AckWait (10 s, the runners' default): say what is pending meanwhile.
	stopReport := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopReport:
				return
			case <-time.After(10 * time.Second):
				t.Logf("%s: still moving: %s", name, acceptance.Busy(ctx, w.JS(), w.Pool()))
			}
		}
	}()
	err := w.WaitTerminal(ctx)
	close(stopReport)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Logf("%s: %d orders placed and terminal in %s", name, n, time.Since(start).Round(time.Millisecond))
	return n
}

// streamLeader returns the index of the node leading stream (names are
// tradewind-1 … tradewind-3).
func streamLeader(t *testing.T, ctx context.Context, js jetstream.JetStream, stream string) int {
	t.Helper()
	leader := -1
	testenv.Eventually(t, time.Minute, stream+" has a leader", func() bool {
		info, err := streamInfo(ctx, js, stream)
		if err != nil || info.Cluster == nil {
			return false
		}
		for i := range 3 {
			if info.Cluster.Leader == fmt.Sprintf("tradewind-%d", i+1) {
				leader = i
				return true
			}
		}
		return false
	})
	return leader
}

// waitReplicasCurrent waits until every stream is R<replicas> with a
// leader and every other replica online and current.
func waitReplicasCurrent(t *testing.T, ctx context.Context, js jetstream.JetStream, replicas int) {
	t.Helper()
	var why string
	current := func() bool {
		for _, name := range streams {
			info, err := streamInfo(ctx, js, name)
			switch {
			case err != nil:
				why = name + ": " + err.Error()
				return false
			case info.Config.Replicas != replicas:
				t.Fatalf("stream %s has %d replicas, want %d", name, info.Config.Replicas, replicas)
			case info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != replicas-1:
				why = name + ": no leader or missing peers"
				return false
			}
			for _, p := range info.Cluster.Replicas {
				if !p.Current || p.Offline {
					why = fmt.Sprintf("%s: replica %s current=%v offline=%v", name, p.Name, p.Current, p.Offline)
					return false
				}
			}
		}
		return true
	}
	deadline := time.Now().Add(time.Minute)
	for !current() {
		if time.Now().After(deadline) {
			t.Fatalf("stream replicas not current after 1m: %s", why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func streamInfo(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return st.Info(ctx)
}

// serveInProcess runs app.Serve — the wiring of `tradewind serve` — with
// the saga roles and the relay, connected to every node (NATS_URL as a
// comma-separated list, as docker-compose.yml gives it) and R3 streams.
func serveInProcess(t *testing.T, natsURL, payURL, dbURL string) {
	t.Helper()
	var cfg config.Config
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.Bind(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	cfg.NATSURL = natsURL
	cfg.DatabaseURL = dbURL
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Roles = []string{"orders", "inventory", "payments", "relay"}
	cfg.Replicas = 3
	cfg.PaymentURL = payURL
	cfg.OrderDeadline = 2 * time.Minute // an outage must not turn into timeouts
	cfg.DeadlineSweep = 200 * time.Millisecond

	lw := &serveproc.LogWriter{T: t, Prefix: "serve: "}
	log := slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- app.Serve(ctx, cfg, log, app.Hooks{Started: func(app.State) { close(ready) }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		lw.Stop()
	})
	select {
	case <-ready:
	case err := <-done:
		done <- err
		t.Fatalf("serve stopped at start: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("serve not started after 1m")
	}
}

// consumerLeaders maps each durable consumer of COMMANDS and EVENTS to
// the node leading it: a killed node's consumers fail over, and
// deliveries in flight from it are redelivered only after AckWait.
func consumerLeaders(ctx context.Context, js jetstream.JetStream) map[string]string {
	out := map[string]string{}
	for _, name := range streams[:2] {
		st, err := js.Stream(ctx, name)
		if err != nil {
			continue
		}
		for ci := range st.ListConsumers(ctx).Info() {
			if ci.Cluster != nil {
				out[ci.Name] = ci.Cluster.Leader
			}
		}
	}
	return out
}
