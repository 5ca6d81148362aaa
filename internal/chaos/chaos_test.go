package chaos_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/app"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/checker"
	"github.com/tradewind/tradewind/internal/loadgen"
	"github.com/tradewind/tradewind/internal/testenv"
)

// Helper mode: the test binary re-executed as a NATS server.
const (
	envNATSDir  = "TRADEWIND_CHAOS_NATS_DIR"
	envNATSPort = "TRADEWIND_CHAOS_NATS_PORT"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envNATSDir); dir != "" {
		os.Exit(runNATS(dir, os.Getenv(envNATSPort)))
	}
	testenv.Main(m)
}

// runNATS serves JetStream from dir on port until SIGTERM.
func runNATS(dir, port string) int {
	p, err := strconv.Atoi(port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats helper: bad port:", err)
		return 2
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	emb, err := broker.StartEmbedded(broker.EmbeddedConfig{Dir: dir, Port: p})
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats helper:", err)
		return 1
	}
	fmt.Println("nats helper ready on", emb.URL)
	<-sig
	emb.Shutdown()
	return 0
}

// plan is one form of the test.
type plan struct {
	orders   int
	rate     float64
	mix      string
	deadline time.Duration // TRADEWIND_ORDER_DEADLINE
	actions  []string      // chaos actions, spread over the load
	spacing  time.Duration // mean time between actions
}

func shortPlan() plan {
	return plan{
		orders: 300, rate: 30, deadline: 20 * time.Second,
		mix:     "happy=60,oos=10,decline=10,cancel=10,outage=10",
		actions: []string{"kill", "pg", "nats", "kill", "pg", "kill"},
		spacing: 1500 * time.Millisecond,
	}
}

func longPlan() plan {
	cycle := []string{"kill", "pg", "kill", "nats", "kill", "pg"}
	var actions []string
	for range 8 {
		actions = append(actions, cycle...)
	}
	return plan{
		orders: 7000, rate: 25, deadline: 20 * time.Second,
		mix:     "happy=60,oos=8,decline=10,cancel=10,timeout=2,outage=10",
		actions: actions, // 24 kills, 8 NATS restarts, 16 connection terminations
		spacing: 6 * time.Second,
	}
}

// TestChaosLosesNoOrderAndBreaksNoInvariant is the chaos test (see the
// package documentation).
func TestChaosLosesNoOrderAndBreaksNoInvariant(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: builds and runs Tradewind as processes")
	}
	p, form := shortPlan(), "short"
	if os.Getenv("TRADEWIND_CHAOS") == "long" {
		p, form = longPlan(), "long"
	}
	ctx := context.Background()
	dir := t.TempDir()
	// A database of its own: the package's would carry a previous run's
	// orders into this run's new NATS, whose stream lacks their events
	// (go test -count=N).
	dbURL := testenv.FreshDatabaseURL(t)
	bin := testenv.BuildTradewind(t)

	natsPort := freePort(t)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	natsd := &proc{name: "nats", path: os.Args[0], args: []string{"-test.run=^$"}, logPath: filepath.Join(dir, "nats.log"),
		env: []string{envNATSDir + "=" + filepath.Join(dir, "nats"), envNATSPort + "=" + strconv.Itoa(natsPort)}}
	natsd.start(t)
	t.Cleanup(func() { natsd.stop(t) })
	waitListening(t, fmt.Sprintf("127.0.0.1:%d", natsPort), 20*time.Second)

	payAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	payURL := "http://" + payAddr
	pay := &proc{name: "payment-provider", path: bin, logPath: filepath.Join(dir, "provider.log"), restart: true,
		args: []string{"payment-provider", "--listen", payAddr, "--data-dir", filepath.Join(dir, "provider")}}
	pay.start(t)
	t.Cleanup(func() { pay.stop(t) })
	waitListening(t, payAddr, 20*time.Second)

	serve := &proc{name: "serve", path: bin, args: []string{"serve"}, logPath: filepath.Join(dir, "serve.log"), restart: true,
		env: []string{
			"DATABASE_URL=" + dbURL, "NATS_URL=" + natsURL, "TRADEWIND_PAYMENT_URL=" + payURL,
			"TRADEWIND_DATA_DIR=" + filepath.Join(dir, "serve"), "TRADEWIND_HTTP_ADDR=127.0.0.1:0",
			"TRADEWIND_ORDER_DEADLINE=" + p.deadline.String(), "TRADEWIND_PAYMENT_BREAKER_COOLDOWN=1s",
			"TRADEWIND_LOG_LEVEL=warn",
		}}
	serve.start(t)
	t.Cleanup(func() { serve.stop(t) })
	testenv.Eventually(t, 60*time.Second, "serve writes its state file", func() bool {
		_, err := app.ReadState(filepath.Join(dir, "serve"))
		return err == nil
	})
	defer func() {
		if t.Failed() {
			t.Logf("serve log (tail):\n%s", serve.tail(60))
			t.Logf("nats log (tail):\n%s", natsd.tail(20))
		}
	}()

	_, js := testenv.Connect(t, natsURL)
	pool := testenv.PoolOn(t, dbURL)

	gen, err := loadgen.New(loadgen.Config{
		Orders: p.orders, Rate: p.rate, Mix: mustMix(t, p.mix), PaymentURL: payURL,
		Wait: 3 * time.Minute, SeedWait: 2 * time.Minute, OutageFor: 2 * time.Second,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	}, js)
	if err != nil {
		t.Fatal(err)
	}

	// Chaos runs while the load does.
	type counts struct{ kills, nats, pg int }
	var done counts
	chaosCtx, stopChaos := context.WithCancel(ctx)
	defer stopChaos()
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
		for _, a := range p.actions {
			jitter := time.Duration(float64(p.spacing) * (0.5 + rnd.Float64()))
			select {
			case <-chaosCtx.Done():
				return
			case <-time.After(jitter):
			}
			switch a {
			case "kill":
				serve.signal(t, syscall.SIGKILL)
				if err := serve.restartNow(); err != nil {
					t.Errorf("restart serve: %v", err)
				}
				done.kills++
			case "nats":
				natsd.signal(t, syscall.SIGTERM)
				if err := natsd.restartNow(); err != nil {
					t.Errorf("restart NATS: %v", err)
				}
				done.nats++
			case "pg":
				if n, err := terminateBackends(ctx, dbURL); err != nil {
					t.Errorf("terminate backends: %v", err)
				} else if n > 0 {
					done.pg++
				}
			}
		}
	}()

	start := time.Now()
	sum, err := gen.Run(ctx)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	<-chaosDone // every planned action happens, also while the last orders finish

	// Let the system come to rest, then prove it consistent.
	accepted := gen.Accepted()
	waitForRest(t, pool, js, accepted, 3*time.Minute)
	c, err := checker.New(checker.Options{Pool: pool, JS: js, Ledger: checker.HTTPLedger{URL: payURL}, Slack: checker.DefaultSlack})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var report strings.Builder
	rep.Print(&report)
	var load strings.Builder
	sum.Print(&load)

	var lost int
	if err := pool.QueryRow(ctx, `SELECT $1::int - count(*) FROM orders.orders WHERE order_id = ANY($2::uuid[]) AND status <> 'pending'`,
		len(accepted), accepted).Scan(&lost); err != nil {
		t.Fatal(err)
	}
	dead := streamMsgs(t, js, broker.StreamDLQ)

	summary := fmt.Sprintf("chaos (%s form) in %s: %d SIGKILLs of serve, %d NATS restarts, %d rounds of pg_terminate_backend; "+
		"%d orders accepted, %d lost, %d dead letters, %d violations\n--- load\n%s--- check\n%s",
		form, time.Since(start).Round(time.Second), done.kills, done.nats, done.pg, len(accepted), lost, dead, len(rep.Violations),
		load.String(), report.String())
	t.Log(summary)
	if form == "long" {
		fmt.Println(summary)
	}
	for _, h := range sum.Hops { // every hop of the happy path was seen
		if h.Orders == 0 {
			t.Errorf("no order measured on the hop %s -> %s", h.From, h.To)
		}
	}
	if lost != 0 {
		t.Errorf("%d accepted orders are missing or not terminal", lost)
	}
	if !rep.OK() {
		t.Errorf("check found %d violations", len(rep.Violations))
		explainOrders(t, pool, rep)
	}
	if dead != 0 {
		t.Errorf("%d messages were dead-lettered", dead)
		explainDeadLetters(t, js)
	}
	for _, pr := range []*proc{serve, natsd, pay} {
		for _, problem := range pr.problems() {
			t.Error(problem)
		}
	}
}

func mustMix(t *testing.T, s string) loadgen.Mix {
	t.Helper()
	m, err := loadgen.ParseMix(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// terminateBackends ends every connection to the test database but its
// own, as an operator (or a failover) would; the test's own pool loses its
// connections too and reconnects.
func terminateBackends(ctx context.Context, dbURL string) (int, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer func() { _ = conn.Close(ctx) }()
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM (
		SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()) t`).Scan(&n)
	return n, err
}

// sagaConsumers must have nothing pending for the system to be at rest.
var sagaConsumers = map[string]bool{
	"orders-commands": true, "orders-events": true, "inventory-commands": true,
	"inventory-events": true, "payments-events": true,
}

// waitForRest waits until every accepted order is terminal, nothing is
// pending, the outbox is empty and the saga's consumers have no message
// outstanding.
func waitForRest(t *testing.T, pool *pgxpool.Pool, js jetstream.JetStream, accepted []string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	var why string
	for {
		why = restState(ctx, pool, js, accepted)
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("system not at rest after %s: %s", timeout, why)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func restState(ctx context.Context, pool *pgxpool.Pool, js jetstream.JetStream, accepted []string) string {
	var notTerminal, pending, outbox int
	err := pool.QueryRow(ctx, `SELECT
		$1::int - (SELECT count(*) FROM orders.orders WHERE order_id = ANY($2::uuid[]) AND status <> 'pending'),
		(SELECT count(*) FROM orders.orders WHERE status = 'pending'),
		(SELECT count(*) FROM core.outbox)`, len(accepted), accepted).Scan(&notTerminal, &pending, &outbox)
	if err != nil {
		return err.Error()
	}
	if notTerminal+pending+outbox > 0 {
		return fmt.Sprintf("%d accepted orders not terminal, %d pending, %d outbox rows", notTerminal, pending, outbox)
	}
	for _, stream := range []string{broker.StreamCommands, broker.StreamEvents} {
		st, err := js.Stream(ctx, stream)
		if err != nil {
			return err.Error()
		}
		lister := st.ListConsumers(ctx)
		for info := range lister.Info() {
			if sagaConsumers[info.Name] && (info.NumPending > 0 || info.NumAckPending > 0) {
				return fmt.Sprintf("consumer %s: %d pending, %d unacknowledged", info.Name, info.NumPending, info.NumAckPending)
			}
		}
		if err := lister.Err(); err != nil {
			return err.Error()
		}
	}
	return ""
}

func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// explainOrders logs the saga log and payment operations of the first
// orders a violation names, so a failure can be diagnosed after the test
// database is gone.
func explainOrders(t *testing.T, pool *pgxpool.Pool, rep *checker.Report) {
	t.Helper()
	seen := map[string]bool{}
	for _, v := range rep.Violations {
		id, ok := strings.CutPrefix(v.Subject, "order ")
		if !ok || seen[id] || len(seen) == 5 {
			continue
		}
		seen[id] = true
		var b strings.Builder
		rows, err := pool.Query(context.Background(), `
			SELECT 'order', concat_ws(' ', status, cancel_reason, previous_status, 'deadline', deadline::text), updated_at FROM orders.orders WHERE order_id = $1
			UNION ALL SELECT 'payment', concat_ws(' ', status, authorization_id, 'confirmed=' || order_confirmed, 'cancelled=' || order_cancelled), updated_at FROM payments.payments WHERE order_id = $1
			UNION ALL SELECT 'op', concat_ws(' ', op, provider_id, amount, 'event', event_id), at FROM payments.payment_ops WHERE order_id = $1
			UNION ALL SELECT 'saga', concat_ws(' ', participant, step, outcome, detail, event_type, emitted_type), at FROM core.saga_log WHERE order_id = $1
			ORDER BY 3`, id)
		if err != nil {
			t.Logf("explain order %s: %v", id, err)
			continue
		}
		for rows.Next() {
			var kind, what string
			var at time.Time
			if err := rows.Scan(&kind, &what, &at); err == nil {
				fmt.Fprintf(&b, "\n  %s %-7s %s", at.Format("15:04:05.000"), kind, what)
			}
		}
		rows.Close()
		t.Logf("order %s:%s", id, b.String())
	}
}

// explainDeadLetters logs each dead letter's subject and reason headers.
func explainDeadLetters(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, broker.StreamDLQ, jetstream.OrderedConsumerConfig{HeadersOnly: true})
	if err != nil {
		t.Logf("read DLQ: %v", err)
		return
	}
	batch, err := cons.Fetch(20, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Logf("read DLQ: %v", err)
		return
	}
	for m := range batch.Messages() {
		var hs []string
		for k, v := range m.Headers() {
			if strings.HasPrefix(k, "Tradewind-Dlq") {
				hs = append(hs, k+"="+strings.Join(v, ","))
			}
		}
		t.Logf("dead letter %s: %s", m.Subject(), strings.Join(hs, " "))
	}
}
