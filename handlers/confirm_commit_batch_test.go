package handlers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
)

// These tests run against the package's real database, inside one
// transaction that is never committed: the seed rows are invisible to any
// other test (a sweeper of a saga system included) and nothing is left
// behind under -count=N. The per-message run and the batch run each work
// under a savepoint rolled back after its state is read, so both start
// from the same rows and their results can be compared exactly.

// countingTx counts the statements (round trips) sent through a real
// transaction.
type countingTx struct {
	pgx.Tx
	n int
}

func (c *countingTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	c.n++
	return c.Tx.Exec(ctx, sql, args...)
}

func (c *countingTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c.n++
	return c.Tx.Query(ctx, sql, args...)
}

func (c *countingTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c.n++
	return c.Tx.QueryRow(ctx, sql, args...)
}

// seedTx begins the test's transaction, rolled back when the test ends.
func seedTx(t *testing.T) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	tx, err := testenv.Pool(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}

func mustExec(t *testing.T, tx pgx.Tx, sql string, args ...any) {
	t.Helper()
	if _, err := tx.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", strings.Join(strings.Fields(sql), " "), err)
	}
}

// run is what one path (per message or batch) did: what each message
// emitted, the rows it left, and the statements it sent.
type run struct {
	out        [][]*event.Event
	rows       string
	statements int
}

// underSavepoint runs f on a counting savepoint of tx, reads the rows
// with dump, and rolls the savepoint back.
func underSavepoint(t *testing.T, tx pgx.Tx, f func(pgx.Tx) ([][]*event.Event, error), dump func(pgx.Tx) string) (run, error) {
	t.Helper()
	ctx := context.Background()
	sp, err := tx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sp.Rollback(ctx) }()
	c := &countingTx{Tx: sp}
	out, err := f(c)
	if err != nil {
		return run{}, err
	}
	return run{out: out, rows: dump(sp), statements: c.n}, nil
}

// oneByOne handles msgs with Handle, in order, as the runner's fallback
// does (the Router's step log, flushed at the end).
func oneByOne(h Reactor, msgs []runner.Msg) func(pgx.Tx) ([][]*event.Event, error) {
	return func(tx pgx.Tx) ([][]*event.Event, error) {
		ctx, log := withStepLog(context.Background(), nil)
		out := make([][]*event.Event, len(msgs))
		for i, m := range msgs {
			evs, err := h.Handle(ctx, tx, m.Event)
			if err != nil {
				return nil, fmt.Errorf("message %d: %w", i, err)
			}
			out[i] = evs
		}
		return out, log.flush(ctx, tx)
	}
}

// throughRouter handles msgs as the runner's set-based path does.
func throughRouter(t *testing.T, h Reactor, msgs []runner.Msg) func(pgx.Tx) ([][]*event.Event, error) {
	r, err := NewRouter(h)
	if err != nil {
		t.Fatal(err)
	}
	return func(tx pgx.Tx) ([][]*event.Event, error) { return r.HandleBatch(context.Background(), tx, msgs) }
}

// query is one text column's rows to compare between runs.
type query struct {
	name, sql string
	args      []any
}

// dumpRows renders every row of the queries, one per line.
func dumpRows(t *testing.T, tx pgx.Tx, qs ...query) string {
	t.Helper()
	var b strings.Builder
	for _, q := range qs {
		rows, err := tx.Query(context.Background(), q.sql, q.args...)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		fmt.Fprintf(&b, "%s:\n  %s\n", q.name, strings.Join(lines, "\n  "))
	}
	return b.String()
}

// sagaLogQuery selects the saga log rows of the orders $1, in the order
// they were written, without what differs between runs (row id, emitted
// event id).
const sagaLogQuery = `
	SELECT concat_ws(' ', order_id, step, participant, event_id, event_type, outcome, coalesce(detail, '-'),
		coalesce(emitted_type, '-'), emitted_id IS NOT NULL, at)
	FROM core.saga_log WHERE order_id = ANY($1::uuid[]) ORDER BY id`

// sameEvents reports how two runs' emissions differ in content: every
// attribute, extension and the data, except the id and time each new
// event gets.
func sameEvents(a, b [][]*event.Event) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d results, want %d", len(b), len(a))
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return fmt.Errorf("message %d: %d events, want %d", i, len(b[i]), len(a[i]))
		}
		for j := range a[i] {
			x, y := a[i][j], b[i][j]
			if x.Type() != y.Type() || x.Source() != y.Source() || x.Subject() != y.Subject() ||
				x.DataSchema() != y.DataSchema() || x.DataContentType() != y.DataContentType() ||
				!maps.Equal(x.Extensions(), y.Extensions()) || string(x.Data()) != string(y.Data()) {
				return fmt.Errorf("message %d event %d:\n%s\nwant\n%s", i, j, y, x)
			}
		}
	}
	return nil
}

func authorized(t *testing.T, orderID, authID string) runner.Msg {
	t.Helper()
	ev, err := events.New(events.PaymentAuthorizedV1, orderID,
		events.PaymentAuthorized{OrderID: orderID, AuthorizationID: authID, Amount: 1500, Currency: "EUR"},
		events.WithCorrelation("corr-"+authID))
	if err != nil {
		t.Fatal(err)
	}
	return runner.Msg{Ctx: context.Background(), Event: ev}
}

// seedOrder inserts an order (in the test's transaction).
func seedOrder(t *testing.T, tx pgx.Tx, id, status string, deadline time.Time) {
	t.Helper()
	mustExec(t, tx, `
		INSERT INTO core.orders (order_id, customer_id, status, currency, total, lines, deadline, placed_by, created_at, correlation_id)
		VALUES ($1, 'c-batch', $2, 'EUR', 1500, '[]', $3, $4, $5, 'placed-'||$4)`,
		id, status, deadline, uuid.NewString(), deadline.Add(-time.Hour))
}

// TestConfirmBatchEqualsOneByOne: one batch of payments.authorized (two
// of one order, one spelled in capitals; an order past its deadline,
// twice; an order already cancelled; one already confirmed) leaves the
// same order rows and saga log and emits the same events as Handle
// message by message, in a fixed number of statements.
func TestConfirmBatchEqualsOneByOne(t *testing.T) {
	tx := seedTx(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	h := &ConfirmOrder{now: func() time.Time { return now }}
	fresh, twice, late, gone, done := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	seedOrder(t, tx, fresh, events.StatusPending, now.Add(time.Minute))
	seedOrder(t, tx, twice, events.StatusPending, now.Add(time.Minute))
	seedOrder(t, tx, late, events.StatusPending, now.Add(-time.Second))
	seedOrder(t, tx, gone, events.StatusCancelled, now.Add(time.Minute))
	seedOrder(t, tx, done, events.StatusConfirmed, now.Add(time.Minute))
	ids := []string{fresh, twice, late, gone, done}
	msgs := []runner.Msg{
		authorized(t, twice, "a1"),
		authorized(t, fresh, "a2"),
		authorized(t, late, "a3"),
		authorized(t, strings.ToUpper(twice), "a4"),
		authorized(t, gone, "a5"),
		authorized(t, late, "a6"),
		authorized(t, done, "a7"),
	}
	dump := func(tx pgx.Tx) string {
		return dumpRows(t, tx,
			query{"orders", `SELECT row_to_json(o)::text FROM core.orders o WHERE order_id = ANY($1::uuid[]) ORDER BY order_id`, []any{ids}},
			query{"saga", sagaLogQuery, []any{ids}})
	}

	each, err := underSavepoint(t, tx, oneByOne(h, msgs), dump)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := underSavepoint(t, tx, throughRouter(t, h, msgs), dump)
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
	var got []string
	for _, evs := range batch.out {
		switch {
		case len(evs) == 0:
			got = append(got, "-")
		case evs[0].Type() == events.OrderCancelledV1:
			var c events.OrderCancelled
			if err := events.DecodeData(evs[0], &c); err != nil {
				t.Fatal(err)
			}
			got = append(got, "cancelled "+c.Reason+" from "+c.PreviousStatus)
		default:
			got = append(got, evs[0].Type())
		}
	}
	want := []string{events.OrderConfirmedV1, events.OrderConfirmedV1, "cancelled timeout from pending", "-", "-", "-", "-"}
	if !slices.Equal(got, want) {
		t.Errorf("batch emitted %q, want %q", got, want)
	}
	// lock, confirm, cancel, saga log: whatever the batch's size.
	if batch.statements != 4 {
		t.Errorf("the batch took %d statements, want 4 (one by one: %d)", batch.statements, each.statements)
	}
	t.Logf("%d messages: %d statements one by one, %d in a batch", len(msgs), each.statements, batch.statements)
}

// TestConfirmBatchFailsOnAnUnknownOrder: an order not recorded yet fails
// the batch with errUnknownOrder (the runner redoes it message by message
// and retries that one), as Handle fails that message.
func TestConfirmBatchFailsOnAnUnknownOrder(t *testing.T) {
	tx := seedTx(t)
	h := NewConfirmOrder()
	known := uuid.NewString()
	seedOrder(t, tx, known, events.StatusPending, time.Now().Add(time.Minute))
	msgs := []runner.Msg{authorized(t, known, "k1"), authorized(t, uuid.NewString(), "u1")}
	if _, err := underSavepoint(t, tx, func(tx pgx.Tx) ([][]*event.Event, error) {
		return h.HandleBatch(context.Background(), tx, msgs)
	}, func(pgx.Tx) string { return "" }); !errors.Is(err, errUnknownOrder) {
		t.Errorf("HandleBatch = %v, want errUnknownOrder", err)
	}
	if _, err := underSavepoint(t, tx, oneByOne(h, msgs[1:]), func(pgx.Tx) string { return "" }); !errors.Is(err, errUnknownOrder) {
		t.Errorf("Handle = %v, want errUnknownOrder", err)
	}
}

// stockOrder is an order as inventory knows it, for seeding.
type stockOrder struct {
	id, status string
	lines      []events.StockLine
}

func seedStock(t *testing.T, tx pgx.Tx, inventory map[string][2]int64, orders []stockOrder) {
	t.Helper()
	for sku, oh := range inventory {
		mustExec(t, tx, `INSERT INTO core.inventory (sku, on_hand, reserved) VALUES ($1, $2, $3)`, sku, oh[0], oh[1])
	}
	for _, o := range orders {
		mustExec(t, tx, `INSERT INTO core.stock_orders (order_id, status) VALUES ($1, $2)`, o.id, o.status)
		for _, l := range o.lines {
			mustExec(t, tx, `INSERT INTO core.reservations (order_id, sku, quantity, status) VALUES ($1, $2, $3, $4)`,
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
	tx := seedTx(t)
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
		return dumpRows(t, tx,
			query{"inventory", `SELECT row_to_json(i)::text FROM core.inventory i WHERE sku = ANY($1) ORDER BY sku`, []any{[]string{a, b, c}}},
			query{"reservations", `SELECT row_to_json(r)::text FROM core.reservations r WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, sku`, []any{ids}},
			query{"stock_orders", `SELECT row_to_json(s)::text FROM core.stock_orders s WHERE order_id = ANY($1::uuid[]) ORDER BY order_id`, []any{ids}},
			query{"saga", sagaLogQuery, []any{ids}})
	}

	h := CommitStock{}
	each, err := underSavepoint(t, tx, oneByOne(h, msgs), dump)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := underSavepoint(t, tx, throughRouter(t, h, msgs), dump)
	if err != nil {
		t.Fatalf("HandleBatch: %v", err)
	}
	if batch.rows != each.rows {
		t.Errorf("rows after the batch:\n%s\nafter one by one:\n%s", batch.rows, each.rows)
	}
	if err := sameEvents(each.out, batch.out); err != nil {
		t.Errorf("events of the batch differ from one by one: %v", err)
	}
	wantInv := fmt.Sprintf(`"sku":"%s","on_hand":7,"reserved":0`, a) // 10 - (2 + 1); reserved 3 - 3
	if !strings.Contains(batch.rows, wantInv) {
		t.Errorf("rows after the batch:\n%s\nwant %s", batch.rows, wantInv)
	}
	var got []int
	for _, evs := range batch.out {
		got = append(got, len(evs))
	}
	if want := []int{1, 1, 0, 0, 1}; !slices.Equal(got, want) {
		t.Errorf("events per message %v, want %v", got, want)
	}
	// stock_orders, reservations, inventory locked; three updates; saga log.
	if batch.statements != 7 {
		t.Errorf("the batch took %d statements, want 7 (one by one: %d)", batch.statements, each.statements)
	}
	t.Logf("%d messages: %d statements one by one, %d in a batch", len(msgs), each.statements, batch.statements)
}

// TestCommitBatchFailsOnAnOrderWithoutReservation: an order inventory has
// no row of fails the batch (the runner redoes it message by message and
// retries that one), as Handle fails that message.
func TestCommitBatchFailsOnAnOrderWithoutReservation(t *testing.T) {
	tx := seedTx(t)
	sku := "CB-" + uuid.NewString()[:8]
	known := uuid.NewString()
	seedStock(t, tx, map[string][2]int64{sku: {5, 1}}, []stockOrder{{known, stockReserved, []events.StockLine{{SKU: sku, Quantity: 1}}}})
	msgs := []runner.Msg{confirmed(t, known), confirmed(t, uuid.NewString())}
	h := CommitStock{}
	if _, err := underSavepoint(t, tx, func(tx pgx.Tx) ([][]*event.Event, error) {
		return h.HandleBatch(context.Background(), tx, msgs)
	}, func(pgx.Tx) string { return "" }); err == nil || !strings.Contains(err.Error(), "no reservation yet") {
		t.Errorf("HandleBatch = %v, want no reservation yet", err)
	}
	if _, err := underSavepoint(t, tx, oneByOne(h, msgs[1:]), func(pgx.Tx) string { return "" }); err == nil || !strings.Contains(err.Error(), "no reservation yet") {
		t.Errorf("Handle = %v, want no reservation yet", err)
	}
}

// TestBatchesCostAFixedNumberOfStatements: 60 confirmations and 60
// commits (orders sharing SKUs) cost as many statements in a batch as a
// few do; one by one they cost 2 and 6 per message (plus the saga log).
func TestBatchesCostAFixedNumberOfStatements(t *testing.T) {
	const n = 60
	tx := seedTx(t)
	now := time.Now().UTC()
	p := "CBN-" + uuid.NewString()[:8] + "-"
	skus := []string{p + "a", p + "b", p + "c"}
	var confirms, commits []runner.Msg
	var stock []stockOrder
	for i := range n {
		id := uuid.NewString()
		seedOrder(t, tx, id, events.StatusPending, now.Add(time.Minute))
		confirms = append(confirms, authorized(t, id, fmt.Sprint("n", i)))
		stock = append(stock, stockOrder{id, stockReserved, []events.StockLine{{SKU: skus[i%3], Quantity: 1}, {SKU: skus[(i+1)%3], Quantity: 2}}})
		commits = append(commits, confirmed(t, id))
	}
	seedStock(t, tx, map[string][2]int64{skus[0]: {500, 60}, skus[1]: {500, 60}, skus[2]: {500, 60}}, stock)
	none := func(pgx.Tx) string { return "" }
	for _, tc := range []struct {
		name          string
		h             Reactor
		msgs          []runner.Msg
		each, inBatch int
	}{
		{"confirm_order", &ConfirmOrder{now: func() time.Time { return now }}, confirms, 2*n + 1, 3},
		{"commit_stock", CommitStock{}, commits, 6*n + 1, 7},
	} {
		each, err := underSavepoint(t, tx, oneByOne(tc.h, tc.msgs), none)
		if err != nil {
			t.Fatal(err)
		}
		batch, err := underSavepoint(t, tx, throughRouter(t, tc.h, tc.msgs), none)
		if err != nil {
			t.Fatal(err)
		}
		if each.statements != tc.each || batch.statements != tc.inBatch {
			t.Errorf("%s: %d statements one by one, %d in a batch; want %d and %d", tc.name, each.statements, batch.statements, tc.each, tc.inBatch)
		}
		t.Logf("%s, %d messages: %d statements one by one, %d in a batch", tc.name, n, each.statements, batch.statements)
	}
}
