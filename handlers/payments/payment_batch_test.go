package payments_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/handlers/payments"
	"github.com/tradewind/tradewind/internal/flags"
	"github.com/tradewind/tradewind/internal/provider"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/sagatest"
	"github.com/tradewind/tradewind/internal/testenv"
)

// wait bounds how long a saga system test waits for a condition.
const wait = 20 * time.Second

// stmtCounter counts the statements a pool's connections send (a pgx
// tracer: the statements themselves run against PostgreSQL).
type stmtCounter struct{ n atomic.Int64 }

func (c *stmtCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *stmtCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// payBench is the payments participant's events router (authorize_payment
// and capture_payment, wired as the payments role wires them) on the
// package's database and a provider simulator of its own.
type payBench struct {
	t      *testing.T
	pool   *pgxpool.Pool
	stmts  *stmtCounter
	calls  inFlight // provider requests
	sim    *provider.Server
	client *provider.Client
	router *handlers.Router
	// oneByOne is router's reactors without their set-based path: its
	// HandleBatch runs them message by message, as before they had one.
	oneByOne *handlers.Router
}

// inFlight counts the requests an HTTP handler serves at once, and the peak.
type inFlight struct{ now, peak atomic.Int64 }

func (c *inFlight) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := c.now.Add(1)
		defer c.now.Add(-1)
		for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
		}
		h.ServeHTTP(w, r)
	})
}

// withoutBatch hides a reactor's HandleBatch.
type withoutBatch struct{ handlers.Reactor }

func newPayBench(t *testing.T) *payBench {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(testenv.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	b := &payBench{t: t, stmts: &stmtCounter{}}
	cfg.ConnConfig.Tracer = b.stmts
	if b.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.pool.Close)
	if b.sim, err = provider.NewServer(provider.Options{Seed: 1, Log: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(b.calls.wrap(b.sim.Handler()))
	t.Cleanup(func() { srv.Close(); _ = b.sim.Close() })
	if b.client, err = provider.NewClient(provider.ClientConfig{BaseURL: srv.URL, Timeout: 5 * time.Second,
		Backoff: time.Millisecond, Cooldown: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	fraud, err := payments.NewFraudCheck(b.client, flags.Off{}, payments.DefaultFraudRule)
	if err != nil {
		t.Fatal(err)
	}
	authorize, err := payments.NewAuthorizePayment(fraud, b.client)
	if err != nil {
		t.Fatal(err)
	}
	capture, err := payments.NewCapturePayment(b.client)
	if err != nil {
		t.Fatal(err)
	}
	if b.router, err = handlers.NewRouter(authorize, capture); err != nil {
		t.Fatal(err)
	}
	if b.oneByOne, err = handlers.NewRouter(withoutBatch{authorize}, withoutBatch{capture}); err != nil {
		t.Fatal(err)
	}
	return b
}

// result is what one run of a path left: the events each message emitted
// (or the message's error, per-message path), the rows of the orders, and
// the statements the handlers sent.
type result struct {
	outs  [][]*event.Event
	errs  []error
	rows  []string
	stmts int64
}

// batch runs the Router's set-based path over msgs after seed, in one
// transaction that is rolled back.
func (b *payBench) batch(seed string, orders []string, msgs []*event.Event) (result, error) {
	b.t.Helper()
	return b.batchOn(b.router, seed, orders, msgs)
}

// batchOn runs r's HandleBatch (the runner's fast path) over msgs after
// seed, in one transaction that is rolled back.
func (b *payBench) batchOn(r *handlers.Router, seed string, orders []string, msgs []*event.Event) (result, error) {
	b.t.Helper()
	ctx := context.Background()
	tx := b.begin(seed)
	defer func() { _ = tx.Rollback(ctx) }()
	in := make([]runner.Msg, len(msgs))
	for i, ev := range msgs {
		in[i] = runner.Msg{Ctx: ctx, Event: ev}
	}
	n := b.stmts.n.Load()
	outs, err := r.HandleBatch(ctx, tx, in)
	stmts := b.stmts.n.Load() - n
	if err != nil {
		return result{stmts: stmts}, err
	}
	return result{outs: outs, rows: b.rows(tx, orders), stmts: stmts}, nil
}

// perMessage runs the Router's Handle for each message after seed, each
// under a savepoint as the runner's per-message path does, in one
// transaction that is rolled back. Statements are counted inside Handle.
func (b *payBench) perMessage(seed string, orders []string, msgs []*event.Event) result {
	b.t.Helper()
	ctx := context.Background()
	tx := b.begin(seed)
	defer func() { _ = tx.Rollback(ctx) }()
	r := result{outs: make([][]*event.Event, len(msgs)), errs: make([]error, len(msgs))}
	for i, ev := range msgs {
		sp, err := tx.Begin(ctx)
		if err != nil {
			b.t.Fatal(err)
		}
		n := b.stmts.n.Load()
		r.outs[i], r.errs[i] = b.router.Handle(ctx, sp, ev)
		r.stmts += b.stmts.n.Load() - n
		if r.errs[i] != nil {
			err = sp.Rollback(ctx)
		} else {
			err = sp.Commit(ctx)
		}
		if err != nil {
			b.t.Fatal(err)
		}
	}
	r.rows = b.rows(tx, orders)
	return r
}

func (b *payBench) begin(seed string) pgx.Tx {
	b.t.Helper()
	ctx := context.Background()
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		b.t.Fatal(err)
	}
	if seed != "" {
		if _, err := tx.Exec(ctx, seed); err != nil {
			_ = tx.Rollback(ctx)
			b.t.Fatalf("seed: %v", err)
		}
	}
	return tx
}

// rows lists the payments participant's rows of orders: payments.payments,
// payments.payment_ops and core.saga_log (in log order; the emitted event's
// id is left out, it differs between runs).
func (b *payBench) rows(tx pgx.Tx, orders []string) []string {
	b.t.Helper()
	ctx := context.Background()
	var out []string
	for _, q := range []string{
		`SELECT format('payment %s %s %s %s %s auth=%s code=%s confirmed=%s cancelled=%s', order_id, customer_id, currency, amount, status,
			authorization_id, decline_code, order_confirmed, order_cancelled)
		 FROM payments.payments WHERE order_id::text = ANY($1) ORDER BY order_id`,
		`SELECT format('op %s %s %s %s %s %s', order_id, op, provider_id, idempotency_key, amount, event_id)
		 FROM payments.payment_ops WHERE order_id::text = ANY($1) ORDER BY order_id, op`,
		`SELECT format('log %s %s %s %s %s %s %s emitted=%s', order_id, step, participant, event_id, event_type, outcome, detail, emitted_type)
		 FROM core.saga_log WHERE order_id::text = ANY($1) ORDER BY id`,
	} {
		rows, err := tx.Query(ctx, q, orders)
		if err != nil {
			b.t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			b.t.Fatal(err)
		}
		out = append(out, got...)
	}
	return out
}

// agree runs msgs one by one and as a batch, each from seed, fails unless
// both succeed with the same results (sameResults), and returns both.
func (b *payBench) agree(seed string, orders []string, msgs []*event.Event) (per, bat result) {
	b.t.Helper()
	per = b.perMessage(seed, orders, msgs)
	for i, err := range per.errs {
		if err != nil {
			b.t.Fatalf("Handle of message %d: %v", i, err)
		}
	}
	bat, err := b.batch(seed, orders, msgs)
	if err != nil {
		b.t.Fatalf("HandleBatch: %v", err)
	}
	sameResults(b.t, per, bat)
	return per, bat
}

// sameResults fails unless two runs emitted the same events (all but id
// and time) for each message and left the same rows.
func sameResults(t *testing.T, per, bat result) {
	t.Helper()
	if len(per.outs) != len(bat.outs) {
		t.Fatalf("%d results per message, %d in the batch", len(per.outs), len(bat.outs))
	}
	for i := range per.outs {
		a, b := per.outs[i], bat.outs[i]
		if len(a) != len(b) {
			t.Errorf("message %d: %d events per message, %d in the batch", i, len(a), len(b))
			continue
		}
		for j := range a {
			if d := eventDiff(a[j], b[j]); d != "" {
				t.Errorf("message %d event %d: %s", i, j, d)
			}
		}
	}
	if !slices.Equal(per.rows, bat.rows) {
		t.Errorf("rows differ\nper message:\n  %s\nbatch:\n  %s", strings.Join(per.rows, "\n  "), strings.Join(bat.rows, "\n  "))
	}
}

// eventDiff describes how a and b differ in anything but id and time.
func eventDiff(a, b *event.Event) string {
	type view struct {
		Type, Subject, Source, Schema, ContentType, Data string
		Ext                                              map[string]any
	}
	v := func(e *event.Event) view {
		return view{e.Type(), e.Subject(), e.Source(), e.DataSchema(), e.DataContentType(), string(e.Data()), e.Extensions()}
	}
	if va, vb := v(a), v(b); !reflect.DeepEqual(va, vb) {
		return fmt.Sprintf("per message %+v, batch %+v", va, vb)
	}
	return ""
}

func reserved(t *testing.T, orderID, customer string, total int64) *event.Event {
	t.Helper()
	ev, err := events.New(events.StockReservedV1, orderID, events.StockReserved{OrderID: orderID, CustomerID: customer, Currency: "EUR", Total: total,
		Lines: []events.StockLine{{SKU: "PAY-BATCH", Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func confirmed(t *testing.T, orderID string, total int64, authID string) *event.Event {
	t.Helper()
	ev, err := events.New(events.OrderConfirmedV1, orderID, events.OrderConfirmed{OrderID: orderID, CustomerID: "c-pay-batch", Currency: "EUR",
		Total: total, AuthorizationID: authID, ConfirmedAt: time.Now().UTC().Format(time.RFC3339Nano)})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// types lists the types of evs.
func types(evs []*event.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type())
	}
	return out
}

// TestAuthorizeBatchIsHandleMessageByMessage: the set-based path of
// authorize_payment leaves the same rows (payments, payment ops, saga
// log) and emits the same events as Handle run message by message, over
// a batch with authorizations, declines (amount and customer), a
// duplicate reservation of one order, an order decided before and a
// cancelled one; in a fixed number of statements; and the provider holds
// one authorization per order whatever ran twice.
func TestAuthorizeBatchIsHandleMessageByMessage(t *testing.T) {
	b := newPayBench(t)
	var orders, fresh []string
	var msgs []*event.Event
	for i := range 14 {
		id := uuid.NewString()
		orders, fresh = append(orders, id), append(fresh, id)
		total, customer := int64(1000+100*i), "c-pay-batch"
		switch i % 5 {
		case 1:
			total += provider.DeclineAmountSuffix // insufficient_funds
		case 3:
			customer = "c-" + provider.DeclineCustomerMarker // card_declined
		}
		msgs = append(msgs, reserved(t, id, customer, total))
	}
	dup := fresh[2]
	msgs = slices.Insert(msgs, 5, reserved(t, dup, "c-pay-batch", 1200)) // a second reservation of fresh[2], later in the stream
	decided, cancelled := uuid.NewString(), uuid.NewString()
	orders = append(orders, decided, cancelled)
	msgs = slices.Insert(msgs, 3, reserved(t, decided, "c-pay-batch", 500))
	msgs = append(msgs, reserved(t, cancelled, "c-pay-batch", 700))
	seed := fmt.Sprintf(`INSERT INTO payments.payments (order_id, customer_id, currency, amount, status, authorization_id) VALUES ('%s', 'c-pay-batch', 'EUR', 500, 'authorized', 'auth-seeded');
		INSERT INTO payments.payments (order_id, customer_id, currency, amount, status, decline_code, order_cancelled) VALUES ('%s', 'c-pay-batch', 'EUR', 700, 'declined', 'card_declined', true)`,
		decided, cancelled)

	per, bat := b.agree(seed, orders, msgs)

	var authorized, declined, silent int
	for _, evs := range bat.outs {
		switch ts := types(evs); {
		case len(ts) == 0:
			silent++
		case slices.Equal(ts, []string{events.PaymentAuthorizedV1}):
			authorized++
		case slices.Equal(ts, []string{events.PaymentDeclinedV1}):
			declined++
		default:
			t.Errorf("a message emitted %v", ts)
		}
	}
	if authorized+declined != len(fresh) || declined != 6 || silent != 3 {
		t.Errorf("%d authorized, %d declined, %d silent; want %d decisions of which 6 declines, and 3 silent (duplicate, decided, cancelled)",
			authorized, declined, silent, len(fresh))
	}
	if !slices.ContainsFunc(bat.rows, func(r string) bool {
		return strings.HasPrefix(r, "log "+cancelled) && strings.Contains(r, "ignored order already cancelled; payment is declined")
	}) {
		t.Errorf("no ignored step for the cancelled order in\n  %s", strings.Join(bat.rows, "\n  "))
	}
	for _, id := range fresh {
		if n := len(b.sim.Authorizations(id)); n != 1 {
			t.Errorf("order %s: the provider holds %d authorizations, want 1", id, n)
		}
	}
	if n := len(b.sim.Authorizations(decided)) + len(b.sim.Authorizations(cancelled)); n != 0 {
		t.Errorf("the provider was asked about decided or cancelled orders (%d authorizations)", n)
	}
	before, err := b.batchOn(b.oneByOne, seed, orders, msgs)
	if err != nil {
		t.Fatalf("HandleBatch one by one: %v", err)
	}
	sameResults(t, before, bat)
	t.Logf("authorize_payment, %d messages: %d statements one by one in the runner's fast path (%d under savepoints, Handle each), %d set-based",
		len(msgs), before.stmts, per.stmts, bat.stmts)
	if bat.stmts > 5 {
		t.Errorf("the batch sent %d statements, want at most 5 (insert, lock, update payments, insert ops, saga log)", bat.stmts)
	}
}

// authorizeAt makes a real authorization of orderID at the simulator
// (key = order id, as authorize_payment's) and returns it.
func (b *payBench) authorizeAt(orderID string, total int64) provider.Authorization {
	b.t.Helper()
	a, err := b.client.Authorize(context.Background(), orderID, provider.AuthorizeRequest{OrderID: orderID, CustomerID: "c-pay-batch", Amount: total, Currency: "EUR"})
	if err != nil || a.Status != provider.StatusAuthorized {
		b.t.Fatalf("authorize %s: %+v, %v", orderID, a, err)
	}
	return a
}

// paymentRow is the seed of an order's payments.payments row.
func paymentRow(orderID string, amount int64, status, authID string, cancelled bool) string {
	return fmt.Sprintf(`INSERT INTO payments.payments (order_id, customer_id, currency, amount, status, authorization_id, order_cancelled)
		VALUES ('%s', 'c-pay-batch', 'EUR', %d, '%s', NULLIF('%s', ''), %t);`, orderID, amount, status, authID, cancelled)
}

// TestCaptureBatchIsHandleMessageByMessage: the set-based path of
// capture_payment leaves the same rows and emits the same events as
// Handle message by message, over captures, a duplicate confirmation, a
// declined payment and one captured before; in a fixed number of
// statements; each authorization is captured once at the provider.
func TestCaptureBatchIsHandleMessageByMessage(t *testing.T) {
	b := newPayBench(t)
	var orders, auths []string
	var msgs []*event.Event
	var seed strings.Builder
	for i := range 12 {
		id := uuid.NewString()
		total := int64(2000 + 100*i)
		a := b.authorizeAt(id, total)
		orders, auths = append(orders, id), append(auths, a.ID)
		seed.WriteString(paymentRow(id, total, "authorized", a.ID, false))
		msgs = append(msgs, confirmed(t, id, total, a.ID))
	}
	msgs = slices.Insert(msgs, 7, confirmed(t, orders[1], 2100, auths[1])) // a duplicate confirmation
	declined, captured := uuid.NewString(), uuid.NewString()
	orders = append(orders, declined, captured)
	seed.WriteString(paymentRow(declined, 900, "declined", "", false))
	seed.WriteString(paymentRow(captured, 800, "captured", "auth-seeded", false))
	msgs = slices.Insert(msgs, 2, confirmed(t, declined, 900, ""))
	msgs = append(msgs, confirmed(t, captured, 800, "auth-seeded"))

	per, bat := b.agree(seed.String(), orders, msgs)

	var captures, silent int
	for _, evs := range bat.outs {
		switch ts := types(evs); {
		case len(ts) == 0:
			silent++
		case slices.Equal(ts, []string{events.PaymentCapturedV1}):
			captures++
		default:
			t.Errorf("a message emitted %v", ts)
		}
	}
	if captures != 12 || silent != 3 {
		t.Errorf("%d captured, %d silent; want 12 and 3 (duplicate, declined, captured before)", captures, silent)
	}
	for _, want := range []string{
		"log " + orders[1] + " capture_payment payments " + msgs[8].ID() + " " + events.OrderConfirmedV1 + " ignored payment is captured",
		"log " + declined + " capture_payment payments " + msgs[2].ID() + " " + events.OrderConfirmedV1 + " ignored payment is declined",
	} {
		if !slices.ContainsFunc(bat.rows, func(r string) bool { return strings.HasPrefix(r, want) }) {
			t.Errorf("no row %q in\n  %s", want, strings.Join(bat.rows, "\n  "))
		}
	}
	for _, r := range bat.rows {
		if strings.HasPrefix(r, "payment ") && !strings.Contains(r, "confirmed=t ") {
			t.Errorf("not marked confirmed: %s", r)
		}
	}
	for _, id := range orders[:12] {
		if got := b.sim.Authorizations(id); len(got) != 1 || got[0].Status != provider.StatusCaptured {
			t.Errorf("order %s: the provider holds %+v, want one captured authorization", id, got)
		}
	}
	before, err := b.batchOn(b.oneByOne, seed.String(), orders, msgs)
	if err != nil {
		t.Fatalf("HandleBatch one by one: %v", err)
	}
	sameResults(t, before, bat)
	t.Logf("capture_payment, %d messages: %d statements one by one in the runner's fast path (%d under savepoints, Handle each), %d set-based",
		len(msgs), before.stmts, per.stmts, bat.stmts)
	if bat.stmts > 4 {
		t.Errorf("the batch sent %d statements, want at most 4 (lock, insert ops, update payments, saga log)", bat.stmts)
	}
}

// TestAuthorizeBatchVoidsALostAuthorizationAsHandleDoes: a batch with
// orders cancelled before anything was recorded (the void-lost path: the
// provider holds an authorization, a decline, or nothing) stays on the
// set-based path and leaves the same rows and events as Handle message
// by message; two reservations of such an order in one batch are left
// to Handle.
func TestAuthorizeBatchVoidsALostAuthorizationAsHandleDoes(t *testing.T) {
	b := newPayBench(t)
	fresh, held, declined, nothing := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	orders := []string{fresh, held, declined, nothing}
	b.authorizeAt(held, 1000)
	if _, err := b.client.Authorize(context.Background(), declined, provider.AuthorizeRequest{
		OrderID: declined, CustomerID: "c-pay-batch", Amount: 1000 + provider.DeclineAmountSuffix, Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	msgs := []*event.Event{reserved(t, fresh, "c-pay-batch", 1000), reserved(t, held, "c-pay-batch", 1000),
		reserved(t, declined, "c-pay-batch", 1000+provider.DeclineAmountSuffix), reserved(t, nothing, "c-pay-batch", 1000)}
	seed := paymentRow(held, 1000, "new", "", true) + ";" + paymentRow(declined, 1000+provider.DeclineAmountSuffix, "new", "", true) +
		";" + paymentRow(nothing, 1000, "new", "", true)

	_, bat := b.agree(seed, orders, msgs)
	want := [][]string{{events.PaymentAuthorizedV1}, {events.PaymentAuthorizedV1, events.PaymentVoidedV1}, nil, nil}
	for i, w := range want {
		if got := types(bat.outs[i]); !slices.Equal(got, w) {
			t.Errorf("message %d emitted %v, want %v", i, got, w)
		}
	}
	if a := b.sim.Authorizations(held); len(a) != 1 || a[0].Status != provider.StatusVoided {
		t.Errorf("the provider holds %+v for the lost authorization, want one, voided", a)
	}

	twice := []*event.Event{reserved(t, nothing, "c-pay-batch", 1000), reserved(t, fresh, "c-pay-batch", 1000), reserved(t, nothing, "c-pay-batch", 1000)}
	if _, err := b.batch(seed, orders, twice); err == nil {
		t.Error("HandleBatch succeeded with two reservations of a void-lost order")
	}
}

// TestCaptureBatchLeavesARefundToHandle: a batch with an order cancelled
// before its capture fails before any capture; message by message the
// order is captured and refunded, the other captured.
func TestCaptureBatchLeavesARefundToHandle(t *testing.T) {
	b := newPayBench(t)
	plain, cancelled := uuid.NewString(), uuid.NewString()
	pa, ca := b.authorizeAt(plain, 3000), b.authorizeAt(cancelled, 3100)
	orders := []string{plain, cancelled}
	seed := paymentRow(plain, 3000, "authorized", pa.ID, false) + paymentRow(cancelled, 3100, "authorized", ca.ID, true)
	msgs := []*event.Event{confirmed(t, plain, 3000, pa.ID), confirmed(t, cancelled, 3100, ca.ID)}
	if _, err := b.batch(seed, orders, msgs); err == nil {
		t.Fatal("HandleBatch succeeded with a cancelled order's capture in the batch")
	}
	for _, id := range orders {
		if got := b.sim.Authorizations(id); len(got) != 1 || got[0].Status != provider.StatusAuthorized {
			t.Errorf("the failed batch changed %s at the provider: %+v", id, got)
		}
	}
	per := b.perMessage(seed, orders, msgs)
	if per.errs[0] != nil || per.errs[1] != nil {
		t.Fatalf("Handle: %v, %v", per.errs[0], per.errs[1])
	}
	if got := types(per.outs[0]); !slices.Equal(got, []string{events.PaymentCapturedV1}) {
		t.Errorf("plain order emitted %v", got)
	}
	if got := types(per.outs[1]); !slices.Equal(got, []string{events.PaymentCapturedV1, events.PaymentRefundedV1}) {
		t.Errorf("cancelled order emitted %v", got)
	}
}

// TestCaptureBatchWithoutAPaymentFails: a confirmation of an order
// payments has no row for fails the batch, as it fails Handle.
func TestCaptureBatchWithoutAPaymentFails(t *testing.T) {
	b := newPayBench(t)
	known, unknown := uuid.NewString(), uuid.NewString()
	ka := b.authorizeAt(known, 3000)
	msgs := []*event.Event{confirmed(t, known, 3000, ka.ID), confirmed(t, unknown, 3000, "auth-x")}
	_, err := b.batch(paymentRow(known, 3000, "authorized", ka.ID, false), []string{known, unknown}, msgs)
	if err == nil || !strings.Contains(err.Error(), "no authorization yet") {
		t.Fatalf("HandleBatch = %v, want no authorization yet", err)
	}
	if got := b.sim.Authorizations(known); got[0].Status != provider.StatusAuthorized {
		t.Errorf("the failed batch captured: %+v", got)
	}
}

// TestAuthorizeBatchProviderFailure: a provider call that fails fails the
// batch; message by message Handle then behaves as before: the refused
// order's message fails permanently, the others are authorized with the
// provider's first answer (one authorization each, whether or not the
// batch's calls reached it); during an outage every message waits
// (unavailable, not permanent).
func TestAuthorizeBatchProviderFailure(t *testing.T) {
	b := newPayBench(t)
	t.Run("refused", func(t *testing.T) {
		var orders []string
		var msgs []*event.Event
		for range 6 {
			id := uuid.NewString()
			orders = append(orders, id)
			msgs = append(msgs, reserved(t, id, "c-pay-batch", 1500))
		}
		refused := orders[3]
		// Someone used the order's key for another request: the provider
		// refuses authorize_payment's (422, key reused).
		if _, err := b.client.Authorize(context.Background(), refused,
			provider.AuthorizeRequest{OrderID: refused, CustomerID: "c-other", Amount: 1, Currency: "EUR"}); err != nil {
			t.Fatal(err)
		}
		_, err := b.batch("", orders, msgs)
		if !errors.Is(err, provider.ErrRefused) {
			t.Fatalf("HandleBatch = %v, want the provider's refusal", err)
		}
		per := b.perMessage("", orders, msgs)
		for i, err := range per.errs {
			switch {
			case orders[i] == refused:
				if !runner.IsPermanent(err) || !errors.Is(err, provider.ErrRefused) {
					t.Errorf("Handle of the refused order = %v, want a permanent refusal", err)
				}
			case err != nil:
				t.Errorf("Handle of order %s: %v", orders[i], err)
			default:
				held := b.sim.Authorizations(orders[i])
				if len(held) != 1 {
					t.Fatalf("order %s: the provider holds %d authorizations, want 1", orders[i], len(held))
				}
				var got events.PaymentAuthorized
				if len(per.outs[i]) != 1 || events.DecodeData(per.outs[i][0], &got) != nil || got.AuthorizationID != held[0].ID {
					t.Errorf("order %s emitted %v, want payments.authorized of %s", orders[i], types(per.outs[i]), held[0].ID)
				}
			}
		}
	})
	t.Run("outage", func(t *testing.T) {
		var orders []string
		var msgs []*event.Event
		for range 3 {
			id := uuid.NewString()
			orders = append(orders, id)
			msgs = append(msgs, reserved(t, id, "c-pay-batch", 1500))
		}
		f := b.sim.Faults()
		f.Outage = provider.OutageError
		if err := b.sim.SetFaults(f); err != nil {
			t.Fatal(err)
		}
		defer func() {
			f.Outage = provider.OutageOff
			_ = b.sim.SetFaults(f)
		}()
		if _, err := b.batch("", orders, msgs); !errors.Is(err, provider.ErrUnavailable) {
			t.Fatalf("HandleBatch = %v, want unavailable", err)
		}
		per := b.perMessage("", orders, msgs)
		for i, err := range per.errs {
			if !errors.Is(err, provider.ErrUnavailable) || runner.IsPermanent(err) {
				t.Errorf("Handle of order %s = %v, want unavailable (a delayed redelivery)", orders[i], err)
			}
		}
	})
}

// TestBatchCallsTheProviderConcurrently: the provider calls of a batch
// overlap (at most 8 at once) instead of running one after another.
func TestBatchCallsTheProviderConcurrently(t *testing.T) {
	b := newPayBench(t)
	f := b.sim.Faults()
	f.Latency = provider.Duration(20 * time.Millisecond)
	if err := b.sim.SetFaults(f); err != nil {
		t.Fatal(err)
	}
	var orders []string
	var reservations, confirmations []*event.Event
	var seed strings.Builder
	for range 20 {
		id := uuid.NewString()
		orders = append(orders, id)
		reservations = append(reservations, reserved(t, id, "c-pay-batch", 1000))
	}
	b.calls.peak.Store(0)
	if _, err := b.batch("", orders, reservations); err != nil {
		t.Fatal(err)
	}
	if p := b.calls.peak.Load(); p < 2 || p > 8 {
		t.Errorf("authorize: peak %d provider calls at once, want 2..8", p)
	}
	for _, id := range orders {
		a := b.authorizeAt(id, 1000) // the batch's authorization, replayed by its key
		seed.WriteString(paymentRow(id, 1000, "authorized", a.ID, false))
		confirmations = append(confirmations, confirmed(t, id, 1000, a.ID))
	}
	b.calls.peak.Store(0)
	if _, err := b.batch(seed.String(), orders, confirmations); err != nil {
		t.Fatal(err)
	}
	if p := b.calls.peak.Load(); p < 2 || p > 8 {
		t.Errorf("capture: peak %d provider calls at once, want 2..8", p)
	}
}

// TestPaymentsWorkThroughABacklogInBatches: the saga wired as serve wires
// it, with payments started after 40 orders were reserved, so its
// consumer fetches them in batches and the set-based paths run (capture
// too: the confirmations come in a burst). Every order ends as message
// by message it would: confirmed and captured once, or declined and
// cancelled; one authorization per order at the provider; nothing
// dead-lettered.
func TestPaymentsWorkThroughABacklogInBatches(t *testing.T) {
	s := sagatest.Start(t, sagatest.Options{Roles: []string{"orders", "inventory"}, Deadline: time.Minute})
	sku := "PAYB-" + uuid.NewString()[:8]
	s.Restock(sku, 100)
	var ids []string
	declined := map[string]bool{}
	for i := range 40 {
		price := int64(1000 + 100*i)
		if i%7 == 3 {
			price += provider.DeclineAmountSuffix // insufficient_funds
		}
		id := s.PlaceOrder("c-pay-backlog", events.OrderLine{SKU: sku, Quantity: 1, UnitPrice: price})
		ids = append(ids, id)
		declined[id] = i%7 == 3
	}
	s.Eventually(wait, "40 orders reserved", func() bool {
		var n int
		s.Query(&n, `SELECT count(*) FROM inventory.stock_orders WHERE order_id::text = ANY($1)`, ids)
		return n == len(ids)
	})
	s.StartRole("payments")
	for _, id := range ids {
		if declined[id] {
			s.WaitOrder(id, events.StatusCancelled, wait)
			s.Eventually(wait, "payment of "+id+" declined", func() bool { return s.Payment(id) == "declined" })
			continue
		}
		s.WaitOrder(id, events.StatusConfirmed, wait)
		s.Eventually(wait, "payment of "+id+" captured", func() bool { return s.Payment(id) == "captured" })
	}
	for _, id := range ids {
		held := s.Provider.Authorizations(id)
		want := provider.StatusCaptured
		if declined[id] {
			want = provider.StatusDeclined
		}
		if len(held) != 1 || held[0].Status != want {
			t.Errorf("order %s: the provider holds %+v, want one %s authorization", id, held, want)
		}
		log := s.SagaLog(id)
		for _, st := range []string{"authorize_payment:authorized", "capture_payment:captured"} {
			if n := count(log, st); !declined[id] && n != 1 {
				t.Errorf("order %s: %d %s in the saga log %v, want 1", id, n, st, log)
			}
		}
		if declined[id] && count(log, "authorize_payment:declined") != 1 {
			t.Errorf("order %s: saga log %v, want one authorize_payment:declined", id, log)
		}
	}
	if n := s.DeadLetters(); n != 0 {
		t.Errorf("%d messages dead-lettered", n)
	}
}

func count(xs []string, x string) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}
