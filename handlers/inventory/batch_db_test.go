package inventory

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/handlers/handlertest"
	"github.com/tradewind/tradewind/internal/runner"
)

// stockOrder is an order as inventory knows it, for seeding.
type stockOrder struct {
	id, status string
	lines      []events.StockLine
}

func seedStock(t *testing.T, tx pgx.Tx, inventory map[string][2]int64, orders []stockOrder) {
	t.Helper()
	for sku, oh := range inventory {
		handlertest.MustExec(t, tx, `INSERT INTO inventory.inventory (sku, on_hand, reserved) VALUES ($1, $2, $3)`, sku, oh[0], oh[1])
	}
	for _, o := range orders {
		handlertest.MustExec(t, tx, `INSERT INTO inventory.stock_orders (order_id, status) VALUES ($1, $2)`, o.id, o.status)
		for _, l := range o.lines {
			handlertest.MustExec(t, tx, `INSERT INTO inventory.reservations (order_id, sku, quantity, status) VALUES ($1, $2, $3, $4)`,
				o.id, l.SKU, l.Quantity, o.status)
		}
	}
}

func confirmed(t *testing.T, orderID string) runner.Msg {
	t.Helper()
	ev, err := events.New(events.OrderConfirmedV1, orderID, events.OrderConfirmed{OrderID: orderID, CustomerID: "c-batch",
		Currency: "EUR", Total: 1500, AuthorizationID: "auth", ConfirmedAt: time.Now().UTC().Format(time.RFC3339Nano)})
	if err != nil {
		t.Fatal(err)
	}
	return runner.Msg{Ctx: context.Background(), Event: ev}
}

// TestCommitBatchEqualsOneByOne: one batch of orders.confirmed (orders
// sharing SKUs, one order twice, one whose reservation was released by a
// cancellation) leaves the same inventory, reservations, stock_orders and
// saga log rows and emits the same events as Handle message by message,
// in a fixed number of statements.
func TestCommitBatchEqualsOneByOne(t *testing.T) {
	tx := handlertest.SeedTx(t)
	p := "CB-" + uuid.NewString()[:8] + "-"
	// Mixed case: byte order and the database's collation may sort them
	// differently; an event's lines are in the database's order either way.
	a, b, c := p+"A", p+"b", p+"C"
	one, twice, released, small := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	seedStock(t, tx, map[string][2]int64{a: {10, 3}, b: {10, 4}, c: {5, 1}}, []stockOrder{
		{one, stockReserved, []events.StockLine{{SKU: a, Quantity: 2}, {SKU: b, Quantity: 1}}},
		{twice, stockReserved, []events.StockLine{{SKU: b, Quantity: 3}, {SKU: c, Quantity: 1}}},
		{released, stockReleased, []events.StockLine{{SKU: a, Quantity: 4}}},
		{small, stockReserved, []events.StockLine{{SKU: a, Quantity: 1}}},
	})
	ids := []string{one, twice, released, small}
	msgs := []runner.Msg{confirmed(t, twice), confirmed(t, one), confirmed(t, released), confirmed(t, twice), confirmed(t, small)}
	dump := func(tx pgx.Tx) string {
		return handlertest.DumpRows(t, tx,
			handlertest.Query{Name: "inventory", SQL: `SELECT row_to_json(i)::text FROM inventory.inventory i WHERE sku = ANY($1) ORDER BY sku`, Args: []any{[]string{a, b, c}}},
			handlertest.Query{Name: "reservations", SQL: `SELECT row_to_json(r)::text FROM inventory.reservations r WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, sku`, Args: []any{ids}},
			handlertest.Query{Name: "stock_orders", SQL: `SELECT row_to_json(s)::text FROM inventory.stock_orders s WHERE order_id = ANY($1::uuid[]) ORDER BY order_id`, Args: []any{ids}},
			handlertest.Query{Name: "saga", SQL: handlertest.SagaLogQuery, Args: []any{ids}})
	}

	h := CommitStock{}
	each, err := handlertest.UnderSavepoint(t, tx, handlertest.OneByOne(msgs, h), dump)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := handlertest.UnderSavepoint(t, tx, handlertest.ThroughRouter(t, msgs, h), dump)
	if err != nil {
		t.Fatalf("HandleBatch: %v", err)
	}
	if batch.Rows != each.Rows {
		t.Errorf("rows after the batch:\n%s\nafter one by one:\n%s", batch.Rows, each.Rows)
	}
	if err := handlertest.SameEvents(each.Out, batch.Out); err != nil {
		t.Errorf("events of the batch differ from one by one: %v", err)
	}
	wantInv := fmt.Sprintf(`"sku":"%s","on_hand":7,"reserved":0`, a) // 10 - (2 + 1); reserved 3 - 3
	if !strings.Contains(batch.Rows, wantInv) {
		t.Errorf("rows after the batch:\n%s\nwant %s", batch.Rows, wantInv)
	}
	var got []int
	for _, evs := range batch.Out {
		got = append(got, len(evs))
	}
	if want := []int{1, 1, 0, 0, 1}; !slices.Equal(got, want) {
		t.Errorf("events per message %v, want %v", got, want)
	}
	// stock_orders, reservations, inventory locked; three updates; saga log.
	if batch.Statements != 7 {
		t.Errorf("the batch took %d statements, want 7 (one by one: %d)", batch.Statements, each.Statements)
	}
	t.Logf("%d messages: %d statements one by one, %d in a batch", len(msgs), each.Statements, batch.Statements)
}

// TestCommitBatchFailsOnAnOrderWithoutReservation: an order inventory has
// no row of fails the batch (the runner redoes it message by message and
// retries that one), as Handle fails that message.
func TestCommitBatchFailsOnAnOrderWithoutReservation(t *testing.T) {
	tx := handlertest.SeedTx(t)
	sku := "CB-" + uuid.NewString()[:8]
	known := uuid.NewString()
	seedStock(t, tx, map[string][2]int64{sku: {5, 1}}, []stockOrder{{known, stockReserved, []events.StockLine{{SKU: sku, Quantity: 1}}}})
	msgs := []runner.Msg{confirmed(t, known), confirmed(t, uuid.NewString())}
	h := CommitStock{}
	if _, err := handlertest.UnderSavepoint(t, tx, func(tx pgx.Tx) ([][]*event.Event, error) {
		return h.HandleBatch(context.Background(), tx, msgs)
	}, func(pgx.Tx) string { return "" }); err == nil || !strings.Contains(err.Error(), "no reservation yet") {
		t.Errorf("HandleBatch = %v, want no reservation yet", err)
	}
	if _, err := handlertest.UnderSavepoint(t, tx, handlertest.OneByOne(msgs[1:], h), func(pgx.Tx) string { return "" }); err == nil || !strings.Contains(err.Error(), "no reservation yet") {
		t.Errorf("Handle = %v, want no reservation yet", err)
	}
}

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

func stockRouter(t *testing.T) *handlers.Router {
	t.Helper()
	r, err := handlers.NewRouter(ReleaseStock{}, ReturnStock{})
	if err != nil {
		t.Fatal(err)
	}
	return r
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
	tx := handlertest.SeedTx(t)
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
		return handlertest.DumpRows(t, tx,
			handlertest.Query{Name: "inventory", SQL: `SELECT row_to_json(i)::text FROM inventory.inventory i WHERE sku = ANY($1) ORDER BY sku`, Args: []any{[]string{a, b, c}}},
			handlertest.Query{Name: "reservations", SQL: `SELECT row_to_json(r)::text FROM inventory.reservations r WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, sku`, Args: []any{ids}},
			handlertest.Query{Name: "stock_orders", SQL: `SELECT row_to_json(s)::text FROM inventory.stock_orders s WHERE order_id = ANY($1::uuid[]) ORDER BY order_id`, Args: []any{ids}},
			handlertest.Query{Name: "saga", SQL: handlertest.SagaLogByOrderQuery, Args: []any{ids}})
	}
	r := stockRouter(t)
	each, err := handlertest.UnderSavepoint(t, tx, handlertest.OneByOne(msgs, ReleaseStock{}, ReturnStock{}), dump)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := handlertest.UnderSavepoint(t, tx, func(tx pgx.Tx) ([][]*event.Event, error) {
		return r.HandleBatch(context.Background(), tx, msgs)
	}, dump)
	if err != nil {
		t.Fatalf("HandleBatch: %v", err)
	}
	if batch.Rows != each.Rows {
		t.Errorf("rows after the batch:\n%s\nafter one by one:\n%s", batch.Rows, each.Rows)
	}
	if err := handlertest.SameEvents(each.Out, batch.Out); err != nil {
		t.Errorf("events of the batch differ from one by one: %v", err)
	}
	// The outcomes themselves, so that equal but wrong runs fail too.
	R, T := events.StockReleasedV1, events.StockReturnedV1
	if got, want := handlertest.EventTypes(batch.Out), []string{R, T, "-", "-", "-", "-", "-", R, "-"}; !slices.Equal(got, want) {
		t.Errorf("batch emitted %q, want %q", got, want)
	}
	for _, want := range []string{
		fmt.Sprintf(`"sku":"%s","on_hand":11,"reserved":0`, a), // released 2, returned 1
		fmt.Sprintf(`"sku":"%s","on_hand":10,"reserved":0`, b), // released 1 + 1
		fmt.Sprintf(`"sku":"%s","on_hand":7,"reserved":0`, c),  // returned 2
		fmt.Sprintf(`"order_id":"%s","status":"cancelled"`, unseen),
		"nothing reserved yet",
	} {
		if !strings.Contains(batch.Rows, want) {
			t.Errorf("rows after the batch:\n%s\nwant %s", batch.Rows, want)
		}
	}
	if n := strings.Count(batch.Rows, "nothing reserved yet"); n != 1 {
		t.Errorf("%d tombstone steps, want 1 (the second cancellation of the unseen order finds the tombstone)", n)
	}
	// release: tombstones, statuses, lines, SKUs, three updates; return:
	// statuses, lines, SKUs, three updates; the saga log.
	if batch.Statements != 14 {
		t.Errorf("the batch took %d statements, want 14 (one by one: %d)", batch.Statements, each.Statements)
	}
	t.Logf("%d messages: %d statements one by one, %d in a batch", len(msgs), each.Statements, batch.Statements)
}

// TestReleaseTombstoneStopsALateReservation: after a batch released an
// order inventory had not seen, its orders.placed reserves nothing, as
// after Handle.
func TestReleaseTombstoneStopsALateReservation(t *testing.T) {
	tx := handlertest.SeedTx(t)
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
		"one by one": handlertest.OneByOne([]runner.Msg{cancelled(t, id, events.CancelCustomer, events.StatusPending)}, ReleaseStock{}, ReturnStock{}),
	} {
		res, err := handlertest.UnderSavepoint(t, tx, func(tx pgx.Tx) ([][]*event.Event, error) {
			if _, err := release(tx); err != nil {
				return nil, err
			}
			return ReserveStock{}.HandleBatch(context.Background(), tx, []runner.Msg{{Ctx: context.Background(), Event: placed}})
		}, func(tx pgx.Tx) string {
			return handlertest.DumpRows(t, tx, handlertest.Query{Name: "inventory", SQL: `SELECT row_to_json(i)::text FROM inventory.inventory i WHERE sku = $1`, Args: []any{sku}})
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(res.Out[0]) != 0 || !strings.Contains(res.Rows, `"on_hand":5,"reserved":0`) {
			t.Errorf("%s: orders.placed after the tombstone emitted %v, rows %s; want nothing reserved", name, res.Out[0], res.Rows)
		}
	}
}

// TestBatchesCostAFixedNumberOfStatements: 60 commits and 60
// cancellations of reserved orders (orders sharing SKUs) cost as many
// statements in a batch as a few do; one by one they cost 6 and 8 per
// message (plus the saga log).
func TestBatchesCostAFixedNumberOfStatements(t *testing.T) {
	const n = 60
	tx := handlertest.SeedTx(t)
	p := "CBN-" + uuid.NewString()[:8] + "-"
	skus := []string{p + "a", p + "b", p + "c"}
	var commits, cancels []runner.Msg
	var stock []stockOrder
	for i := range n {
		id := uuid.NewString()
		stock = append(stock, stockOrder{id, stockReserved, []events.StockLine{{SKU: skus[i%3], Quantity: 1}, {SKU: skus[(i+1)%3], Quantity: 2}}})
		commits = append(commits, confirmed(t, id))
		cancels = append(cancels, cancelled(t, id, events.CancelPaymentDeclined, events.StatusPending))
	}
	seedStock(t, tx, map[string][2]int64{skus[0]: {500, 60}, skus[1]: {500, 60}, skus[2]: {500, 60}}, stock)
	none := func(pgx.Tx) string { return "" }
	for _, tc := range []struct {
		name          string
		hs            []handlers.Reactor
		msgs          []runner.Msg
		each, inBatch int
	}{
		// stock_orders, reservations, inventory locked; three updates; saga log.
		{"commit_stock", []handlers.Reactor{CommitStock{}}, commits, 6*n + 1, 7},
		// insert, status, lines, SKUs, three updates; return's status; saga log.
		{"release_stock+return_stock", []handlers.Reactor{ReleaseStock{}, ReturnStock{}}, cancels, 8*n + 1, 9},
	} {
		each, err := handlertest.UnderSavepoint(t, tx, handlertest.OneByOne(tc.msgs, tc.hs...), none)
		if err != nil {
			t.Fatal(err)
		}
		batch, err := handlertest.UnderSavepoint(t, tx, handlertest.ThroughRouter(t, tc.msgs, tc.hs...), none)
		if err != nil {
			t.Fatal(err)
		}
		if each.Statements != tc.each || batch.Statements != tc.inBatch {
			t.Errorf("%s: %d statements one by one, %d in a batch; want %d and %d", tc.name, each.Statements, batch.Statements, tc.each, tc.inBatch)
		}
		t.Logf("%s, %d messages: %d statements one by one, %d in a batch", tc.name, n, each.Statements, batch.Statements)
	}
}
