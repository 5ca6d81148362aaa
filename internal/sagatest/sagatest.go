// Package sagatest starts the order saga in-process for integration tests:
// the orders, inventory and payments roles and the outbox relay, wired
// exactly as `serve` wires them (internal/app's roles), against an
// embedded NATS JetStream server (testenv.JetStream), the test package's
// PostgreSQL database (testenv.Pool) and a payment provider simulator on a
// loopback port. Nothing is mocked.
//
// The package's tests need `func TestMain(m *testing.M) { testenv.Main(m) }`.
// Systems of one package share its database: the deadline sweeper of one
// system would cancel another's orders, so run systems one at a time
// (subtests of one system may run in parallel).
package sagatest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/app"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/config"
	"github.com/tradewind/tradewind/internal/flags"
	"github.com/tradewind/tradewind/internal/natsauth"
	"github.com/tradewind/tradewind/internal/outbox"
	"github.com/tradewind/tradewind/internal/provider"
	"github.com/tradewind/tradewind/internal/testenv"
)

// Options shape a system; zero values give the defaults.
type Options struct {
	// Roles to start at once (default orders, inventory, payments; the
	// relay always runs). Others can be started later with StartRole.
	Roles []string
	// Deadline of every order (default 10s).
	Deadline time.Duration
	// Faults of the provider simulator at start.
	Faults provider.Faults
	// PaymentTimeout bounds one provider request (default 1s).
	PaymentTimeout time.Duration
	// BreakerCooldown is how long the breaker stays open (default 200ms).
	BreakerCooldown time.Duration
}

// System is a running saga, seen from one test (see For).
type System struct {
	t testing.TB
	*env
}

// env is the running system, shared by every view of it.
type env struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	Pool     *pgxpool.Pool
	Provider *provider.Server
	Cfg      config.Config
	Flags    *flags.Store // the system's feature flags (set them with Flags.Admin())

	deps   *app.Deps
	nats   *testenv.SecureNATS
	root   testing.TB // the test that started the system: owns its connections
	ctx    context.Context
	wg     sync.WaitGroup
	logMu  sync.Mutex
	logged []string
}

// For returns a view of the system whose failures are reported on t: use
// it in subtests (t.Fatal must be called from the test's own goroutine).
func (s *System) For(t testing.TB) *System { return &System{t: t, env: s.env} }

// Start runs a system until the test ends.
func Start(t testing.TB, opts Options) *System {
	t.Helper()
	if opts.Roles == nil {
		opts.Roles = []string{"orders", "inventory", "payments"}
	}
	if opts.Deadline == 0 {
		opts.Deadline = 10 * time.Second
	}
	if opts.PaymentTimeout == 0 {
		opts.PaymentTimeout = time.Second
	}
	if opts.BreakerCooldown == 0 {
		opts.BreakerCooldown = 200 * time.Millisecond
	}
	if opts.Faults.Outage == "" {
		opts.Faults.Outage = provider.OutageOff
	}
	// NATS with Tradewind's users and permissions: the test itself acts
	// as ops, the relay and every role connect as their own users, so a
	// right missing from internal/natsauth's table fails the saga suite.
	secure := testenv.NATSWithAuth(t)
	nc, js := secure.ConnectAs(t, natsauth.UserOps)
	{
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := broker.EnsureStreams(ctx, js, broker.DefaultTopology())
		cancel()
		if err != nil {
			t.Fatalf("ensure streams: %v", err)
		}
	}
	s := &System{t: t, env: &env{NC: nc, JS: js, Pool: testenv.Pool(t), nats: secure, root: t}}

	sim, err := provider.NewServer(provider.Options{DataDir: t.TempDir(), Faults: opts.Faults, Seed: 1,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	s.Provider = sim

	s.Cfg = config.Config{
		BatchSize: 100, MaxDeliver: 5, OrderDeadline: opts.Deadline, DeadlineSweep: 100 * time.Millisecond,
		PaymentURL: srv.URL, PaymentTimeout: opts.PaymentTimeout, PaymentBreakerCooldown: opts.BreakerCooldown,
	}
	log := slog.New(&recorder{e: s.env, level: slog.LevelWarn})
	// As serve wires them: writers publish after commit, the relay sweeps
	// what they leave behind.
	_, relayJS := secure.ConnectAs(t, "relay")
	relay, err := outbox.NewRelay(outbox.RelayConfig{Sweep: 50 * time.Millisecond, MinAge: 200 * time.Millisecond}, s.Pool, relayJS, log)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := outbox.NewPublisher(outbox.PublisherConfig{}, s.Pool, js, log)
	if err != nil {
		t.Fatal(err)
	}
	s.deps = &app.Deps{Cfg: s.Cfg, Log: log, NC: nc, JS: js, Pool: s.Pool, Relay: relay, Outbox: pub}
	ctx, cancel := context.WithCancel(context.Background())
	s.ctx = ctx
	t.Cleanup(func() {
		cancel()
		s.wg.Wait()
		srv.Close()
		_ = sim.Close()
	})
	if s.Flags, err = flags.Open(ctx, js, flags.Options{Log: log}); err != nil {
		t.Fatal(err)
	}
	s.deps.Flags = s.Flags
	s.run(app.ServiceFunc("outbox-relay", relay.Run))
	s.run(app.ServiceFunc("outbox-publisher", pub.Run))
	for _, r := range opts.Roles {
		s.StartRole(r)
	}
	return s
}

func (s *System) run(svc app.Service) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := svc.Run(s.ctx); err != nil && s.ctx.Err() == nil {
			s.t.Errorf("service %s: %v", svc.Name(), err)
		}
	}()
}

// StartRole builds a role as serve does and runs its services.
func (s *System) StartRole(name string) {
	s.t.Helper()
	for _, r := range app.Roles() {
		if r.Name != name {
			continue
		}
		// The role's own connection and user, as `serve --roles=<name>`
		// has; the rest of its dependencies are the system's.
		nc, js := s.nats.ConnectAs(s.root, name)
		// Its own outbox publisher too: what it writes it publishes under
		// its own user (the relay sweeps whatever it cannot).
		pub, err := outbox.NewPublisher(outbox.PublisherConfig{}, s.deps.Pool, js, s.deps.Log)
		if err != nil {
			s.t.Fatal(err)
		}
		s.run(app.ServiceFunc("outbox-publisher-"+name, pub.Run))
		d := &app.Deps{Cfg: s.deps.Cfg, Log: s.deps.Log, NC: nc, JS: js, Pool: s.deps.Pool, Relay: s.deps.Relay,
			Flags: s.deps.Flags, Outbox: pub}
		svcs, err := r.Build(d)
		if err != nil {
			s.t.Fatalf("build role %s: %v", name, err)
		}
		for _, svc := range svcs {
			s.run(svc)
		}
		return
	}
	s.t.Fatalf("no role %q", name)
}

// Publish sends a command (validated, as a producer would).
func (s *System) Publish(ceType string, data any) *event.Event {
	s.t.Helper()
	e, err := events.New(ceType, "", data, events.WithSource("/sagatest"))
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := broker.Publish(ctx, s.JS, e); err != nil {
		s.t.Fatal(err)
	}
	return e
}

// PublishEvent publishes an event on the EVENTS stream as a participant
// would (subject = the aggregate id): tests use it to drive an exact
// ordering of messages that the running participants would only produce
// by chance (a cancel overtaking a redelivered reservation, say).
func (s *System) PublishEvent(ceType, subject string, data any) *event.Event {
	s.t.Helper()
	e, err := events.New(ceType, subject, data, events.WithSource("/sagatest"))
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := broker.Publish(ctx, s.JS, e); err != nil {
		s.t.Fatal(err)
	}
	return e
}

// PaymentClient is a client of the system's provider simulator, for tests
// that make the calls a participant made but whose results it lost (a
// crash or rollback after the provider answered). It has its own breaker.
func (s *System) PaymentClient() *provider.Client {
	s.t.Helper()
	c, err := provider.NewClient(provider.ClientConfig{BaseURL: s.Cfg.PaymentURL, Timeout: 5 * time.Second})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// Restock adds quantity units of sku and waits until inventory applied
// it (the restock and the orders that follow travel on different
// consumers, so without the wait an order could overtake its stock).
func (s *System) Restock(sku string, quantity int64) {
	s.t.Helper()
	cmd := s.Publish(events.RestockV1, events.Restock{SKU: sku, Quantity: quantity})
	s.Eventually(15*time.Second, "restock of "+sku+" applied", func() bool {
		var n int
		s.Query(&n, `SELECT count(*) FROM inventory.restocks WHERE event_id = $1`, cmd.ID())
		return n == 1
	})
}

// PlaceOrder places an order and returns its id.
func (s *System) PlaceOrder(customer string, lines ...events.OrderLine) string {
	s.t.Helper()
	id := uuid.NewString()
	s.Publish(events.PlaceOrderV1, events.PlaceOrder{OrderID: id, CustomerID: customer, Currency: "EUR", Lines: lines})
	return id
}

// Cancel sends the customer's cancel command.
func (s *System) Cancel(orderID string) {
	s.t.Helper()
	s.Publish(events.CancelOrderV1, events.CancelOrder{OrderID: orderID})
}

// Eventually waits for cond (up to timeout).
func (s *System) Eventually(timeout time.Duration, what string, cond func() bool) {
	s.t.Helper()
	testenv.Eventually(s.t, timeout, what, cond)
}

// Query reads one value.
func (s *System) Query(dst any, sql string, args ...any) bool {
	s.t.Helper()
	err := s.Pool.QueryRow(context.Background(), sql, args...).Scan(dst)
	if err != nil && !strings.Contains(err.Error(), "no rows") {
		s.t.Fatalf("%s: %v", sql, err)
	}
	return err == nil
}

// OrderStatus is orders.orders' status and cancel reason ("" when unknown).
func (s *System) OrderStatus(orderID string) (status, reason string) {
	s.t.Helper()
	var r *string
	_ = s.Pool.QueryRow(context.Background(), `SELECT status, cancel_reason FROM orders.orders WHERE order_id = $1`, orderID).Scan(&status, &r)
	if r != nil {
		reason = *r
	}
	return status, reason
}

// WaitOrder waits until the order has status.
func (s *System) WaitOrder(orderID, status string, timeout time.Duration) {
	s.t.Helper()
	s.Eventually(timeout, "order "+orderID+" "+status, func() bool {
		st, _ := s.OrderStatus(orderID)
		return st == status
	})
}

// StockOrder is inventory's status of the order ("" when none).
func (s *System) StockOrder(orderID string) string {
	var st string
	s.Query(&st, `SELECT status FROM inventory.stock_orders WHERE order_id = $1`, orderID)
	return st
}

// Payment is the payments participant's status of the order ("" when none).
func (s *System) Payment(orderID string) string {
	var st string
	s.Query(&st, `SELECT status FROM payments.payments WHERE order_id = $1`, orderID)
	return st
}

// Stock returns a SKU's on_hand and reserved.
func (s *System) Stock(sku string) (onHand, reserved int64) {
	s.t.Helper()
	_ = s.Pool.QueryRow(context.Background(), `SELECT on_hand, reserved FROM inventory.inventory WHERE sku = $1`, sku).Scan(&onHand, &reserved)
	return onHand, reserved
}

// Events lists the events of an order on the EVENTS stream as
// "<context>.<name>" with counts: "orders.placed", "payments.voided", …
// sorted.
func (s *System) Events(orderID string) []string {
	s.t.Helper()
	st, err := s.JS.Stream(context.Background(), broker.StreamEvents)
	if err != nil {
		s.t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(events.EventPrefix+"*.*."+orderID))
	if err != nil {
		s.t.Fatal(err)
	}
	var out []string
	for subj, n := range info.State.Subjects {
		parts := strings.Split(subj, ".")
		name := parts[1] + "." + parts[2]
		for range n {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// WaitEvents waits until the order's events are exactly want (any order).
func (s *System) WaitEvents(orderID string, timeout time.Duration, want ...string) {
	s.t.Helper()
	want = slices.Sorted(slices.Values(want))
	var got []string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if got = s.Events(orderID); slices.Equal(got, want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("order %s: events %v, want %v", orderID, got, want)
}

// SagaLog lists the order's saga log as "step:outcome", oldest first.
func (s *System) SagaLog(orderID string) []string {
	s.t.Helper()
	rows, err := s.Pool.Query(context.Background(), `SELECT step || ':' || outcome FROM core.saga_log WHERE order_id = $1 ORDER BY id`, orderID)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var x string
		_ = rows.Scan(&x)
		out = append(out, x)
	}
	return out
}

// DeadLetters counts messages on the DLQ stream.
func (s *System) DeadLetters() uint64 {
	s.t.Helper()
	st, err := s.JS.Stream(context.Background(), broker.StreamDLQ)
	if err != nil {
		s.t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return info.State.Msgs
}

// Logged reports whether a log line (warn or above) contained all of parts.
func (s *System) Logged(parts ...string) bool {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	for _, l := range s.logged {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}

// recorder keeps warn-and-above log lines for Logged.
type recorder struct {
	e     *env
	level slog.Level
	attrs []slog.Attr
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= r.level }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	for _, a := range r.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	rec.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	r.e.logMu.Lock()
	r.e.logged = append(r.e.logged, b.String())
	r.e.logMu.Unlock()
	return nil
}
func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorder{e: r.e, level: r.level, attrs: append(slices.Clone(r.attrs), as...)}
}
func (r *recorder) WithGroup(string) slog.Handler { return r }
