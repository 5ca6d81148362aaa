package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/runner"
)

// These tests use the harness of confirm_commit_batch_test.go: one
// uncommitted transaction, the per-message run and the batch run each
// under a savepoint rolled back after its rows are read.

// routeOneByOne hands msgs to r's reactors message by message (release
// then return for each, as the runner's fallback does), with one step log
// flushed at the end.
func routeOneByOne(r *Router, msgs []runner.Msg) func(pgx.Tx) ([][]*event.Event, error) {
	return func(tx pgx.Tx) ([][]*event.Event, error) {
		ctx, log := withStepLog(context.Background(), nil)
		out := make([][]*event.Event, len(msgs))
		for i, m := range msgs {
			evs, err := r.route(ctx, tx, m.Event)
			if err != nil {
				return nil, fmt.Errorf("message %d: %w", i, err)
			}
			out[i] = evs
		}
		return out, log.flush(ctx, tx)
	}
}

// sagaLogByOrderQuery is sagaLogQuery with each order's rows together:
// the batch logs release_stock's steps of the whole group before
// return_stock's, so steps of different orders may be written in another
// order than one by one; an order's own steps keep theirs.
const sagaLogByOrderQuery = `
	SELECT concat_ws(' ', order_id, step, participant, event_id, event_type, outcome, coalesce(detail, '-'),
		coalesce(emitted_type, '-'), emitted_id IS NOT NULL, at)
	FROM core.saga_log WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, id`

func cancelled(t *testing.T, orderID, reason, previous string) runner.Msg {
	t.Helper()
	ev, err := events.New(events.OrderCancelledV1, orderID, events.OrderCancelled{OrderID: orderID, CustomerID: "c-batch",
		Currency: "EUR", Total: 1500, Reason: reason, PreviousStatus: previous, CancelledAt: time.Now().UTC().Format(time.RFC3339Nano)},
		events.WithCorrelation("corr-"+orderID))
	if err != nil {
		t.Fatal(err)
	}
	return runner.Msg{Ctx: context.Background(), Event: ev}
}

func stockRejected(t *testing.T, orderID, reason string) runner.Msg {
	t.Helper()
	ev, err := events.New(events.StockRejectedV1, orderID, events.StockRejected{OrderID: orderID, Reason: reason, SKU: "sku-x", Requested: 2},
		events.WithCorrelation("corr-"+orderID))
	if err != nil {
		t.Fatal(err)
	}
	return runner.Msg{Ctx: context.Background(), Event: ev}
}

func paymentDeclined(t *testing.T, orderID string) runner.Msg {
	t.Helper()
	ev, err := events.New(events.PaymentDeclinedV1, orderID, events.PaymentDeclined{OrderID: orderID, Amount: 1500, Currency: "EUR", Code: "card_declined"},
		events.WithCorrelation("corr-"+orderID))
	if err != nil {
		t.Fatal(err)
	}
	return runner.Msg{Ctx: context.Background(), Event: ev}
}

func stockRouter(t *testing.T) *Router {
	t.Helper()
	r, err := NewRouter(ReleaseStock{}, ReturnStock{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// eventTypes renders what each message emitted, "-" for nothing.
func eventTypes(out [][]*event.Event) []string {
	var got []string
	for _, evs := range out {
		var ts []string
		for _, e := range evs {
			ts = append(ts, e.Type())
		}
		if len(ts) == 0 {
			ts = []string{"-"}
		}
		got = append(got, strings.Join(ts, "+"))
	}
	return got
}

// TestReleaseReturnBatchEqualsOneByOne: one batch of orders.cancelled
// through release_stock and return_stock (a reserved order twice, once
// spelled in capitals; a committed order twice; an order inventory has
// not seen, twice — a release before the reservation leaves a tombstone;
// an order already released; a rejected one; orders sharing SKUs) leaves
// the same inventory, reservations, stock_orders and saga log rows and
// emits the same events as Handle message by message, in a fixed number
// of statements.
func TestReleaseReturnBatchEqualsOneByOne(t *testing.T) {
	tx := seedTx(t)
	p := "CX-" + uuid.NewString()[:8] + "-"
	a, b, c := p+"A", p+"b", p+"C"
	resv, resv2, comm, unseen, rel, rej := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	seedStock(t, tx, map[string][2]int64{a: {10, 2}, b: {10, 2}, c: {5, 0}}, []stockOrder{
		{resv, stockReserved, []events.StockLine{{SKU: a, Quantity: 2}, {SKU: b, Quantity: 1}}},
		{resv2, stockReserved, []events.StockLine{{SKU: b, Quantity: 1}}},
		{comm, stockCommitted, []events.StockLine{{SKU: a, Quantity: 1}, {SKU: c, Quantity: 2}}},
		{rel, stockReleased, []events.StockLine{{SKU: a, Quantity: 4}}},
		{rej, "rejected", nil},
	})
	ids := []string{resv, resv2, comm, unseen, rel, rej}
	msgs := []runner.Msg{
		cancelled(t, resv, events.CancelPaymentDeclined, events.StatusPending),
		cancelled(t, comm, events.CancelCustomer, events.StatusConfirmed),
		cancelled(t, unseen, events.CancelCustomer, events.StatusPending),
		cancelled(t, strings.ToUpper(resv), events.CancelCustomer, events.StatusPending),
		cancelled(t, rel, events.CancelTimeout, events.StatusPending),
		cancelled(t, rej, events.CancelOutOfStock, events.StatusPending),
		cancelled(t, unseen, events.CancelCustomer, events.StatusPending),
		cancelled(t, resv2, events.CancelTimeout, events.StatusPending),
		cancelled(t, comm, events.CancelCustomer, events.StatusConfirmed),
	}
	dump := func(tx pgx.Tx) string {
		return dumpRows(t, tx,
			query{"inventory", `SELECT row_to_json(i)::text FROM core.inventory i WHERE sku = ANY($1) ORDER BY sku`, []any{[]string{a, b, c}}},
			query{"reservations", `SELECT row_to_json(r)::text FROM core.reservations r WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, sku`, []any{ids}},
			query{"stock_orders", `SELECT row_to_json(s)::text FROM core.stock_orders s WHERE order_id = ANY($1::uuid[]) ORDER BY order_id`, []any{ids}},
			query{"saga", sagaLogByOrderQuery, []any{ids}})
	}
	r := stockRouter(t)
	each, err := underSavepoint(t, tx, routeOneByOne(r, msgs), dump)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := underSavepoint(t, tx, func(tx pgx.Tx) ([][]*event.Event, error) {
		return r.HandleBatch(context.Background(), tx, msgs)
	}, dump)
	if err != nil {
		t.Fatalf("HandleBatch: %v", err)
	}
	if batch.rows != each.rows {
		t.Errorf("rows after the batch:\n%s\nafter one by one:\n%s", batch.rows, each.rows)
	}
	if err := sameEvents(each.out, batch.out); err != nil {
		t.Errorf("events of the batch differ from one by one: %v", err)
	}
	// The outcomes themselves, so that equal but wrong runs fail too.
	R, T := events.StockReleasedV1, events.StockReturnedV1
	if got, want := eventTypes(batch.out), []string{R, T, "-", "-", "-", "-", "-", R, "-"}; !slices.Equal(got, want) {
		t.Errorf("batch emitted %q, want %q", got, want)
	}
	for _, want := range []string{
		fmt.Sprintf(`"sku":"%s","on_hand":11,"reserved":0`, a), // released 2, returned 1
		fmt.Sprintf(`"sku":"%s","on_hand":10,"reserved":0`, b), // released 1 + 1
		fmt.Sprintf(`"sku":"%s","on_hand":7,"reserved":0`, c),  // returned 2
		fmt.Sprintf(`"order_id":"%s","status":"cancelled"`, unseen),
		"nothing reserved yet",
	} {
		if !strings.Contains(batch.rows, want) {
			t.Errorf("rows after the batch:\n%s\nwant %s", batch.rows, want)
		}
	}
	if n := strings.Count(batch.rows, "nothing reserved yet"); n != 1 {
		t.Errorf("%d tombstone steps, want 1 (the second cancellation of the unseen order finds the tombstone)", n)
	}
	// release: tombstones, statuses, lines, SKUs, three updates; return:
	// statuses, lines, SKUs, three updates; the saga log.
	if batch.statements != 14 {
		t.Errorf("the batch took %d statements, want 14 (one by one: %d)", batch.statements, each.statements)
	}
	t.Logf("%d messages: %d statements one by one, %d in a batch", len(msgs), each.statements, batch.statements)
}

// TestReleaseTombstoneStopsALateReservation: after a batch released an
// order inventory had not seen, its orders.placed reserves nothing, as
// after Handle.
func TestReleaseTombstoneStopsALateReservation(t *testing.T) {
	tx := seedTx(t)
	sku := "CX-" + uuid.NewString()[:8]
	seedStock(t, tx, map[string][2]int64{sku: {5, 0}}, nil)
	id := uuid.NewString()
	placed, err := events.New(events.OrderPlacedV1, id, events.OrderPlaced{OrderID: id, CustomerID: "c-batch", Currency: "EUR", Total: 1500,
		Lines: []events.OrderLine{{SKU: sku, Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	r := stockRouter(t)
	for name, release := range map[string]func(pgx.Tx) ([][]*event.Event, error){
		"batch": func(tx pgx.Tx) ([][]*event.Event, error) {
			return r.HandleBatch(context.Background(), tx, []runner.Msg{cancelled(t, id, events.CancelCustomer, events.StatusPending)})
		},
		"one by one": routeOneByOne(r, []runner.Msg{cancelled(t, id, events.CancelCustomer, events.StatusPending)}),
	} {
		res, err := underSavepoint(t, tx, func(tx pgx.Tx) ([][]*event.Event, error) {
			if _, err := release(tx); err != nil {
				return nil, err
			}
			return ReserveStock{}.HandleBatch(context.Background(), tx, []runner.Msg{{Ctx: context.Background(), Event: placed}})
		}, func(tx pgx.Tx) string {
			return dumpRows(t, tx, query{"inventory", `SELECT row_to_json(i)::text FROM core.inventory i WHERE sku = $1`, []any{sku}})
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(res.out[0]) != 0 || !strings.Contains(res.rows, `"on_hand":5,"reserved":0`) {
			t.Errorf("%s: orders.placed after the tombstone emitted %v, rows %s; want nothing reserved", name, res.out[0], res.rows)
		}
	}
}

// TestCancelPendingBatchEqualsOneByOne: batches of inventory.rejected and
// of payments.declined (a pending order twice, once spelled in capitals,
// with different reasons; an order already confirmed; one already
// cancelled) leave the same order rows and saga log and emit the same
// events as Handle message by message, in three statements.
func TestCancelPendingBatchEqualsOneByOne(t *testing.T) {
	tx := seedTx(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	clock := func() time.Time { return now }
	p1, p2, conf, canc := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	seedOrder(t, tx, p1, events.StatusPending, now.Add(time.Minute))
	seedOrder(t, tx, p2, events.StatusPending, now.Add(time.Minute))
	seedOrder(t, tx, conf, events.StatusConfirmed, now.Add(time.Minute))
	seedOrder(t, tx, canc, events.StatusCancelled, now.Add(time.Minute))
	ids := []string{p1, p2, conf, canc}
	dump := func(tx pgx.Tx) string {
		return dumpRows(t, tx,
			query{"orders", `SELECT row_to_json(o)::text FROM core.orders o WHERE order_id = ANY($1::uuid[]) ORDER BY order_id`, []any{ids}},
			query{"saga", sagaLogQuery, []any{ids}})
	}
	C := events.OrderCancelledV1
	for _, tc := range []struct {
		name string
		h    Reactor
		msgs []runner.Msg
		want []string
	}{
		{"cancel_on_rejection", &CancelOnRejection{now: clock}, []runner.Msg{
			stockRejected(t, p1, events.RejectOutOfStock),
			stockRejected(t, conf, events.RejectOutOfStock),
			stockRejected(t, strings.ToUpper(p1), events.RejectUnknownSKU),
			stockRejected(t, canc, events.RejectOutOfStock),
			stockRejected(t, p2, events.RejectUnknownSKU),
		}, []string{C, "-", "-", "-", C}},
		{"cancel_on_decline", &CancelOnDecline{now: clock}, []runner.Msg{
			paymentDeclined(t, strings.ToUpper(p2)),
			paymentDeclined(t, conf),
			paymentDeclined(t, p2),
			paymentDeclined(t, canc),
			paymentDeclined(t, p1),
		}, []string{C, "-", "-", "-", C}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			each, err := underSavepoint(t, tx, oneByOne(tc.h, tc.msgs), dump)
			if err != nil {
				t.Fatal(err)
			}
			batch, err := underSavepoint(t, tx, throughRouter(t, tc.h, tc.msgs), dump)
			if err != nil {
				t.Fatalf("HandleBatch: %v", err)
			}
			if batch.rows != each.rows {
				t.Errorf("rows after the batch:\n%s\nafter one by one:\n%s", batch.rows, each.rows)
			}
			if err := sameEvents(each.out, batch.out); err != nil {
				t.Errorf("events of the batch differ from one by one: %v", err)
			}
			if got := eventTypes(batch.out); !slices.Equal(got, tc.want) {
				t.Errorf("batch emitted %q, want %q", got, tc.want)
			}
			// lock, cancel, saga log.
			if batch.statements != 3 {
				t.Errorf("the batch took %d statements, want 3 (one by one: %d)", batch.statements, each.statements)
			}
			t.Logf("%d messages: %d statements one by one, %d in a batch", len(tc.msgs), each.statements, batch.statements)
		})
	}
}

// TestCancelPendingBatchFailsOnAnUnknownOrder: an order not recorded yet
// fails the batch with errUnknownOrder (the runner redoes it message by
// message and retries that one), as Handle fails that message.
func TestCancelPendingBatchFailsOnAnUnknownOrder(t *testing.T) {
	tx := seedTx(t)
	known := uuid.NewString()
	seedOrder(t, tx, known, events.StatusPending, time.Now().Add(time.Minute))
	h := NewCancelOnDecline()
	msgs := []runner.Msg{paymentDeclined(t, known), paymentDeclined(t, uuid.NewString())}
	none := func(pgx.Tx) string { return "" }
	if _, err := underSavepoint(t, tx, func(tx pgx.Tx) ([][]*event.Event, error) {
		return h.HandleBatch(context.Background(), tx, msgs)
	}, none); !errors.Is(err, errUnknownOrder) {
		t.Errorf("HandleBatch = %v, want errUnknownOrder", err)
	}
	if _, err := underSavepoint(t, tx, oneByOne(h, msgs[1:]), none); !errors.Is(err, errUnknownOrder) {
		t.Errorf("Handle = %v, want errUnknownOrder", err)
	}
}

// TestCancellationBatchesCostAFixedNumberOfStatements: 60 cancellations
// of reserved orders (sharing SKUs) and 60 declines cost as many
// statements in a batch as a few do.
func TestCancellationBatchesCostAFixedNumberOfStatements(t *testing.T) {
	const n = 60
	tx := seedTx(t)
	now := time.Now().UTC()
	p := "CXN-" + uuid.NewString()[:8] + "-"
	skus := []string{p + "a", p + "b", p + "c"}
	var cancels, declines []runner.Msg
	var stock []stockOrder
	for i := range n {
		id := uuid.NewString()
		seedOrder(t, tx, id, events.StatusPending, now.Add(time.Minute))
		declines = append(declines, paymentDeclined(t, id))
		stock = append(stock, stockOrder{id, stockReserved, []events.StockLine{{SKU: skus[i%3], Quantity: 1}, {SKU: skus[(i+1)%3], Quantity: 2}}})
		cancels = append(cancels, cancelled(t, id, events.CancelPaymentDeclined, events.StatusPending))
	}
	seedStock(t, tx, map[string][2]int64{skus[0]: {500, 60}, skus[1]: {500, 60}, skus[2]: {500, 60}}, stock)
	none := func(pgx.Tx) string { return "" }
	r := stockRouter(t)
	decline := &CancelOnDecline{now: func() time.Time { return now }}
	for _, tc := range []struct {
		name          string
		each, batch   func(pgx.Tx) ([][]*event.Event, error)
		perMsg, fixed int
	}{
		// insert, status, lines, SKUs, three updates; return's status.
		{"release_stock+return_stock", routeOneByOne(r, cancels), func(tx pgx.Tx) ([][]*event.Event, error) {
			return r.HandleBatch(context.Background(), tx, cancels)
		}, 8, 9},
		{"cancel_on_decline", oneByOne(decline, declines), throughRouter(t, decline, declines), 2, 3},
	} {
		each, err := underSavepoint(t, tx, tc.each, none)
		if err != nil {
			t.Fatal(err)
		}
		batch, err := underSavepoint(t, tx, tc.batch, none)
		if err != nil {
			t.Fatal(err)
		}
		if each.statements != tc.perMsg*n+1 || batch.statements != tc.fixed {
			t.Errorf("%s: %d statements one by one, %d in a batch; want %d and %d", tc.name, each.statements, batch.statements, tc.perMsg*n+1, tc.fixed)
		}
		t.Logf("%s, %d messages: %d statements one by one, %d in a batch", tc.name, n, each.statements, batch.statements)
	}
}
