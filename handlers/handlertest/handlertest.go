// Package handlertest holds what the participants' tests share to check a
// reaction's set-based path (HandleBatch) against its per-message path
// (Handle): a transaction that is never committed, savepoints that count
// the statements sent, row dumps and event comparisons; every event a
// reaction emits under it is validated against its schema (in production
// nothing validates them again: schemas.CheckEmitted).
//
// The tests run against the package's real database (internal/testenv),
// inside one transaction rolled back when the test ends: seed rows are
// invisible to any other test (a sweeper of a saga system included) and
// nothing is left behind under -count=N. The per-message run and the
// batch run each work under a savepoint rolled back after its state is
// read, so both start from the same rows and their results compare
// exactly.
package handlertest

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tradewind/tradewind/handlers"
	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/schemas"
)

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

// SeedTx begins the test's transaction, rolled back when the test ends.
func SeedTx(t *testing.T) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	tx, err := testenv.Pool(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}

// MustExec runs a statement in tx or fails the test.
func MustExec(t *testing.T, tx pgx.Tx, sql string, args ...any) {
	t.Helper()
	if _, err := tx.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", strings.Join(strings.Fields(sql), " "), err)
	}
}

// Run is what one path (per message or batch) did: what each message
// emitted, the rows it left, and the statements it sent.
type Run struct {
	Out        [][]*event.Event
	Rows       string
	Statements int
}

// UnderSavepoint runs f on a counting savepoint of tx, reads the rows
// with dump, and rolls the savepoint back.
func UnderSavepoint(t *testing.T, tx pgx.Tx, f func(pgx.Tx) ([][]*event.Event, error), dump func(pgx.Tx) string) (Run, error) {
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
		return Run{}, err
	}
	for _, evs := range out {
		for _, e := range evs {
			if err := schemas.ValidateEvent(e); err != nil {
				t.Errorf("emitted %s %s does not match its schema: %v", e.Type(), e.ID(), err)
			}
		}
	}
	return Run{Out: out, Rows: dump(sp), Statements: c.n}, nil
}

// OneByOne hands msgs to the reactors with Handle, message by message
// and, for each message, reactor by reactor (as the Router routes one
// message to the reactors of its type), as the runner's fallback does:
// the steps go to one step log, written at the end (handlers.BufferSteps).
func OneByOne(msgs []runner.Msg, hs ...handlers.Reactor) func(pgx.Tx) ([][]*event.Event, error) {
	return func(tx pgx.Tx) ([][]*event.Event, error) {
		ctx, flush := handlers.BufferSteps(context.Background())
		out := make([][]*event.Event, len(msgs))
		for i, m := range msgs {
			for _, h := range hs {
				evs, err := h.Handle(ctx, tx, m.Event)
				if err != nil {
					return nil, fmt.Errorf("message %d: %s: %w", i, h.Reaction().Step, err)
				}
				out[i] = append(out[i], evs...)
			}
		}
		return out, flush(ctx, tx)
	}
}

// ThroughRouter handles msgs as the runner's set-based path does.
func ThroughRouter(t *testing.T, msgs []runner.Msg, hs ...handlers.Reactor) func(pgx.Tx) ([][]*event.Event, error) {
	t.Helper()
	r, err := handlers.NewRouter(hs...)
	if err != nil {
		t.Fatal(err)
	}
	return func(tx pgx.Tx) ([][]*event.Event, error) { return r.HandleBatch(context.Background(), tx, msgs) }
}

// Query is one text column's rows to compare between runs.
type Query struct {
	Name, SQL string
	Args      []any
}

// DumpRows renders every row of the queries, one per line.
func DumpRows(t *testing.T, tx pgx.Tx, qs ...Query) string {
	t.Helper()
	var b strings.Builder
	for _, q := range qs {
		rows, err := tx.Query(context.Background(), q.SQL, q.Args...)
		if err != nil {
			t.Fatalf("%s: %v", q.Name, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", q.Name, err)
		}
		fmt.Fprintf(&b, "%s:\n  %s\n", q.Name, strings.Join(lines, "\n  "))
	}
	return b.String()
}

// SagaLogQuery selects the saga log rows of the orders $1, in the order
// they were written, without what differs between runs (row id, emitted
// event id).
const SagaLogQuery = `
	SELECT concat_ws(' ', order_id, step, participant, event_id, event_type, outcome, coalesce(detail, '-'),
		coalesce(emitted_type, '-'), emitted_id IS NOT NULL, at)
	FROM core.saga_log WHERE order_id = ANY($1::uuid[]) ORDER BY id`

// SagaLogByOrderQuery is SagaLogQuery with each order's rows together:
// a batch through several reactors of one type logs the first reactor's
// steps of the whole group before the next one's, so steps of different
// orders may be written in another order than one by one; an order's own
// steps keep theirs.
const SagaLogByOrderQuery = `
	SELECT concat_ws(' ', order_id, step, participant, event_id, event_type, outcome, coalesce(detail, '-'),
		coalesce(emitted_type, '-'), emitted_id IS NOT NULL, at)
	FROM core.saga_log WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, id`

// SameEvents reports how two runs' emissions differ in content: every
// attribute, extension and the data, except the id and time each new
// event gets.
func SameEvents(a, b [][]*event.Event) error {
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

// EventTypes renders what each message emitted, "-" for nothing.
func EventTypes(out [][]*event.Event) []string {
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

// BatchAgreesWithOneByOne runs evs through r twice on the same rows, each
// time in a transaction rolled back at the end: set-based (HandleBatch)
// and message by message (Handle). Both must emit the same events (type
// and data, per message) and leave the same rows (snapshot) and saga log
// steps for orders. It returns the set-based run's emissions.
func BatchAgreesWithOneByOne(t *testing.T, pool *pgxpool.Pool, r *handlers.Router, evs []*event.Event, orders []string,
	snapshot func(context.Context, pgx.Tx) string) [][]*event.Event {
	t.Helper()
	ctx := context.Background()
	run := func(batch bool) (emitted string, out [][]*event.Event, rows string) {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if batch {
			msgs := make([]runner.Msg, len(evs))
			for i, ev := range evs {
				msgs[i] = runner.Msg{Ctx: ctx, Event: ev}
			}
			if out, err = r.HandleBatch(ctx, tx, msgs); err != nil {
				t.Fatalf("HandleBatch: %v", err)
			}
		} else {
			for _, ev := range evs {
				o, err := r.Handle(ctx, tx, ev)
				if err != nil {
					t.Fatalf("Handle %s: %v", ev.ID(), err)
				}
				out = append(out, o)
			}
		}
		var b strings.Builder
		for i, o := range out {
			for _, e := range o {
				fmt.Fprintf(&b, "%d %s %s %s\n", i, e.Type(), e.Subject(), e.Data())
			}
		}
		return b.String(), out, snapshot(ctx, tx) + SagaSteps(t, ctx, tx, orders)
	}
	batchEmitted, out, batchRows := run(true)
	oneEmitted, _, oneRows := run(false)
	if batchEmitted != oneEmitted {
		t.Errorf("emitted set-based:\n%s\none by one:\n%s", batchEmitted, oneEmitted)
	}
	if batchRows != oneRows {
		t.Errorf("rows set-based:\n%s\none by one:\n%s", batchRows, oneRows)
	}
	return out
}

// SagaSteps lists the saga log steps of orders, in the order logged.
func SagaSteps(t *testing.T, ctx context.Context, tx pgx.Tx, orders []string) string {
	t.Helper()
	return RowsText(t, ctx, tx, `
		SELECT order_id, step, participant, event_type, outcome, coalesce(detail, ''), coalesce(emitted_type, '')
		FROM core.saga_log WHERE order_id = ANY($1::uuid[]) ORDER BY id`, orders)
}

// RowsText renders a query's rows, one line each.
func RowsText(t *testing.T, ctx context.Context, tx pgx.Tx, sql string, args ...any) string {
	t.Helper()
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(&b, vals...)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
