// Command saga-dbos is the DBOS baseline of `make bench-saga`: Tradewind's
// order saga (reserve stock → authorize payment → confirm, with
// compensation when stock runs out or the payment is declined) written as a
// DBOS Transact for Go durable workflow, the way DBOS's documentation shows
// it: a workflow function registered before Launch, each step a
// RunAsTransaction on a data source so the application's writes and the
// step's checkpoint commit together, started with RunWorkflow and an
// idempotent workflow id (the order id), the result awaited with
// GetResult.
//
// It runs in the same PostgreSQL as the Tradewind run (its own database:
// DBOS's system schema "dbos" and the application's schema "shop"), drives
// --concurrency orders in flight for --duration, and prints one JSON object:
// completed orders/s, latency percentiles, CPU ms per order of this process
// and of the database's PostgreSQL backends, outcomes, and the result of an
// invariant check (every order terminal; per SKU on_hand = seeded −
// committed and nothing left reserved; a confirmed order captured exactly
// its total, a cancelled one holds nothing).
//
// It lives in its own Go module so Tradewind's module does not depend on
// DBOS.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dbos-inc/dbos-transact-golang/dbos"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Stock of the catalogue, as `tradewind load` seeds it: in-stock SKUs with
// a million units each and scarce SKUs with two.
const (
	plentiful   = 1_000_000
	scarceStock = 2
)

// Order is the workflow's input: what a PlaceOrder command carries.
type Order struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Lines    []Line `json:"lines"`
}

// Line is one SKU of an order.
type Line struct {
	SKU       string `json:"sku"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
}

// Total is what the order costs.
func (o Order) Total() int64 {
	var t int64
	for _, l := range o.Lines {
		t += l.Quantity * l.UnitPrice
	}
	return t
}

// Outcome is the workflow's result.
type Outcome struct {
	Status string `json:"status"` // confirmed or cancelled
	Reason string `json:"reason,omitempty"`
}

// saga holds the data source the steps write through.
type saga struct {
	ds *dbos.DataSource
}

// PlaceOrder is the durable workflow. Each step is checkpointed: after a
// crash, DBOS recovers the workflow and replays completed steps from their
// checkpoints, so each step's effect happens once.
func (s *saga) PlaceOrder(ctx dbos.Context, o Order) (Outcome, error) {
	reserved, err := dbos.RunAsTransaction(ctx, s.ds, s.reserve(o), dbos.WithStepName("reserve"))
	if err != nil {
		return Outcome{}, err
	}
	if !reserved {
		// Compensation: nothing was reserved, the order is cancelled.
		if _, err := dbos.RunAsTransaction(ctx, s.ds, s.cancel(o, "out_of_stock", false), dbos.WithStepName("cancel")); err != nil {
			return Outcome{}, err
		}
		return Outcome{Status: "cancelled", Reason: "out_of_stock"}, nil
	}
	authorized, err := dbos.RunAsTransaction(ctx, s.ds, s.authorize(o), dbos.WithStepName("authorize"))
	if err != nil {
		return Outcome{}, err
	}
	if !authorized {
		// Compensation: release the reservation, cancel the order.
		if _, err := dbos.RunAsTransaction(ctx, s.ds, s.cancel(o, "payment_declined", true), dbos.WithStepName("release")); err != nil {
			return Outcome{}, err
		}
		return Outcome{Status: "cancelled", Reason: "payment_declined"}, nil
	}
	if _, err := dbos.RunAsTransaction(ctx, s.ds, s.confirm(o), dbos.WithStepName("confirm")); err != nil {
		return Outcome{}, err
	}
	return Outcome{Status: "confirmed"}, nil
}

// reserve records the order and reserves every line, or none when a SKU
// lacks stock. Rows are locked in SKU order so concurrent orders never
// deadlock.
func (s *saga) reserve(o Order) dbos.Txn[bool] {
	return func(ctx context.Context, tx dbos.Tx) (bool, error) {
		if _, err := tx.Exec(ctx, `INSERT INTO shop.orders (id, customer, total, status) VALUES ($1, $2, $3, 'pending')`,
			o.ID, o.Customer, o.Total()); err != nil {
			return false, fmt.Errorf("insert order %s: %w", o.ID, err)
		}
		lines := sortedLines(o)
		for _, l := range lines {
			res, err := tx.Exec(ctx, `UPDATE shop.stock SET reserved = reserved + $2 WHERE sku = $1 AND on_hand - reserved >= $2`, l.SKU, l.Quantity)
			if err != nil {
				return false, fmt.Errorf("reserve %s for order %s: %w", l.SKU, o.ID, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return false, err
			}
			if n == 0 {
				return false, s.undoReservations(ctx, tx, o, lines, l.SKU)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO shop.reservations (order_id, sku, quantity, status) VALUES ($1, $2, $3, 'reserved')`,
				o.ID, l.SKU, l.Quantity); err != nil {
				return false, fmt.Errorf("record reservation of %s for order %s: %w", l.SKU, o.ID, err)
			}
		}
		return true, nil
	}
}

// undoReservations takes back, inside the reserving transaction, the lines
// reserved before SKU short was found short: the order reserves all or
// nothing.
func (s *saga) undoReservations(ctx context.Context, tx dbos.Tx, o Order, lines []Line, short string) error {
	for _, l := range lines {
		if l.SKU == short {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE shop.stock SET reserved = reserved - $2 WHERE sku = $1`, l.SKU, l.Quantity); err != nil {
			return fmt.Errorf("undo reservation of %s for order %s: %w", l.SKU, o.ID, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM shop.reservations WHERE order_id = $1 AND sku = $2`, o.ID, l.SKU); err != nil {
			return fmt.Errorf("undo reservation of %s for order %s: %w", l.SKU, o.ID, err)
		}
	}
	return nil
}

// authorize is the payment provider's authorization, kept as a ledger row:
// declined (deterministically) when the total ends in 51 or the customer id
// contains "decline", as Tradewind's provider simulator does.
func (s *saga) authorize(o Order) dbos.Txn[bool] {
	return func(ctx context.Context, tx dbos.Tx) (bool, error) {
		total := o.Total()
		ok := total%100 != 51 && !strings.Contains(o.Customer, "decline")
		status := "authorized"
		if !ok {
			status = "declined"
		}
		if _, err := tx.Exec(ctx, `INSERT INTO shop.payments (order_id, amount, status) VALUES ($1, $2, $3)`, o.ID, total, status); err != nil {
			return false, fmt.Errorf("authorize order %s: %w", o.ID, err)
		}
		return ok, nil
	}
}

// confirm captures the payment, commits the reserved stock and confirms
// the order.
func (s *saga) confirm(o Order) dbos.Txn[bool] {
	return func(ctx context.Context, tx dbos.Tx) (bool, error) {
		for _, l := range sortedLines(o) {
			if _, err := tx.Exec(ctx, `UPDATE shop.stock SET on_hand = on_hand - $2, reserved = reserved - $2 WHERE sku = $1`, l.SKU, l.Quantity); err != nil {
				return false, fmt.Errorf("commit %s for order %s: %w", l.SKU, o.ID, err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE shop.reservations SET status = 'committed' WHERE order_id = $1`, o.ID); err != nil {
			return false, fmt.Errorf("commit reservations of order %s: %w", o.ID, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE shop.payments SET status = 'captured', captured = amount WHERE order_id = $1`, o.ID); err != nil {
			return false, fmt.Errorf("capture order %s: %w", o.ID, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE shop.orders SET status = 'confirmed', updated_at = now() WHERE id = $1`, o.ID); err != nil {
			return false, fmt.Errorf("confirm order %s: %w", o.ID, err)
		}
		return true, nil
	}
}

// cancel cancels the order for reason; with release it first gives back
// the reserved stock.
func (s *saga) cancel(o Order, reason string, release bool) dbos.Txn[bool] {
	return func(ctx context.Context, tx dbos.Tx) (bool, error) {
		if release {
			for _, l := range sortedLines(o) {
				if _, err := tx.Exec(ctx, `UPDATE shop.stock SET reserved = reserved - $2 WHERE sku = $1`, l.SKU, l.Quantity); err != nil {
					return false, fmt.Errorf("release %s for order %s: %w", l.SKU, o.ID, err)
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE shop.reservations SET status = 'released' WHERE order_id = $1`, o.ID); err != nil {
				return false, fmt.Errorf("release reservations of order %s: %w", o.ID, err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE shop.orders SET status = 'cancelled', reason = $2, updated_at = now() WHERE id = $1`, o.ID, reason); err != nil {
			return false, fmt.Errorf("cancel order %s: %w", o.ID, err)
		}
		return true, nil
	}
}

func sortedLines(o Order) []Line {
	ls := append([]Line(nil), o.Lines...)
	sort.Slice(ls, func(i, j int) bool { return ls[i].SKU < ls[j].SKU })
	return ls
}

const schema = `
CREATE SCHEMA IF NOT EXISTS shop;
CREATE TABLE IF NOT EXISTS shop.stock (
	sku text PRIMARY KEY,
	on_hand bigint NOT NULL,
	reserved bigint NOT NULL DEFAULT 0,
	seeded bigint NOT NULL,
	CHECK (reserved >= 0 AND reserved <= on_hand)
);
CREATE TABLE IF NOT EXISTS shop.orders (
	id text PRIMARY KEY,
	customer text NOT NULL,
	total bigint NOT NULL,
	status text NOT NULL,
	reason text,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS shop.reservations (
	order_id text NOT NULL,
	sku text NOT NULL,
	quantity bigint NOT NULL,
	status text NOT NULL,
	PRIMARY KEY (order_id, sku)
);
CREATE TABLE IF NOT EXISTS shop.payments (
	order_id text PRIMARY KEY,
	amount bigint NOT NULL,
	captured bigint NOT NULL DEFAULT 0,
	status text NOT NULL
);`

// checks are the invariants of a run at rest; each query returns the
// number of violations.
var checks = []struct{ name, sql string }{
	{"order-terminal", `SELECT count(*) FROM shop.orders WHERE status NOT IN ('confirmed', 'cancelled')`},
	{"stock-at-rest", `SELECT count(*) FROM shop.stock WHERE reserved <> 0`},
	{"stock-balance", `SELECT count(*) FROM shop.stock s WHERE s.on_hand <> s.seeded - coalesce((
		SELECT sum(r.quantity) FROM shop.reservations r WHERE r.sku = s.sku AND r.status = 'committed'), 0)`},
	{"confirmed-order", `SELECT count(*) FROM shop.orders o LEFT JOIN shop.payments p ON p.order_id = o.id
		WHERE o.status = 'confirmed' AND (p.status IS DISTINCT FROM 'captured' OR p.captured <> o.total
		OR EXISTS (SELECT 1 FROM shop.reservations r WHERE r.order_id = o.id AND r.status <> 'committed'))`},
	{"cancelled-order", `SELECT count(*) FROM shop.orders o WHERE o.status = 'cancelled' AND (
		EXISTS (SELECT 1 FROM shop.payments p WHERE p.order_id = o.id AND p.status <> 'declined')
		OR EXISTS (SELECT 1 FROM shop.reservations r WHERE r.order_id = o.id AND r.status <> 'released'))`},
}

// Result is what one run prints.
type Result struct {
	Concurrency     int            `json:"concurrency"`
	Orders          int            `json:"orders"`
	Completed       int            `json:"completed"`
	Failed          int            `json:"failed"`
	Seconds         float64        `json:"seconds"`
	CompletedPerSec float64        `json:"completed_per_sec"`
	Latency         Latency        `json:"latency_ms"`
	CPUMsPerOrder   CPU            `json:"cpu_ms_per_order"`
	Outcomes        map[string]int `json:"outcomes"`
	Violations      map[string]int `json:"violations"`
	FirstError      string         `json:"first_error,omitempty"`
}

// Latency percentiles in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// CPU is CPU milliseconds per completed order, by process.
type CPU struct {
	App      float64 `json:"app"`
	Postgres float64 `json:"postgres"`
}

func main() {
	var (
		dbURL       = flag.String("database-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL database to use (it gets the schemas dbos and shop)")
		duration    = flag.Duration("duration", 20*time.Second, "how long to place orders")
		warmup      = flag.Duration("warmup", 3*time.Second, "orders placed before measuring")
		concurrency = flag.Int("concurrency", 16, "workflows in flight")
		skus        = flag.Int("skus", 50, "in-stock SKUs")
		oosPct      = flag.Int("oos", 0, "percent of orders asking for more of a scarce SKU than exists (compensation)")
		declinePct  = flag.Int("decline", 0, "percent of orders from a customer the provider declines (compensation)")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	res, err := run(context.Background(), log, *dbURL, *duration, *warmup, *concurrency, *skus, *oosPct, *declinePct)
	if err != nil {
		fmt.Fprintln(os.Stderr, "saga-dbos:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(res)
}

func run(ctx context.Context, log *slog.Logger, dbURL string, duration, warmup time.Duration, concurrency, skus, oosPct, declinePct int) (*Result, error) {
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, schema); err != nil {
		return nil, fmt.Errorf("create schema shop: %w", err)
	}
	catalogue, scarce, err := seed(ctx, pool, skus)
	if err != nil {
		return nil, err
	}

	// One pool for DBOS's system tables and the application's: each step's
	// writes and its checkpoint commit in one transaction.
	dctx, err := dbos.NewContext(ctx, dbos.Config{AppName: "tradewind-saga-bench", SystemDBPool: pool, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("dbos context: %w", err)
	}
	ds, err := dbos.NewDataSource(dctx, pool, dbos.WithDataSourceName("shop"))
	if err != nil {
		return nil, fmt.Errorf("dbos data source: %w", err)
	}
	s := &saga{ds: ds}
	dbos.RegisterWorkflow(dctx, s.PlaceOrder, dbos.WithWorkflowName("PlaceOrder"))
	if err := dbos.Launch(dctx); err != nil {
		return nil, fmt.Errorf("dbos launch: %w", err)
	}
	defer func() { _ = dbos.Shutdown(dctx, 5*time.Second) }()

	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	var seq atomic.Int64
	place := func(rnd *rand.Rand) (Outcome, time.Duration, error) {
		o := Order{ID: fmt.Sprintf("%s-%d", run, seq.Add(1)), Customer: fmt.Sprintf("customer-%d", rnd.IntN(100))}
		for _, i := range rnd.Perm(len(catalogue))[:1+rnd.IntN(3)] {
			o.Lines = append(o.Lines, Line{SKU: catalogue[i], Quantity: int64(1 + rnd.IntN(3)), UnitPrice: 100 * int64(1+i)})
		}
		switch p := rnd.IntN(100); {
		case p < oosPct:
			o.Lines = append(o.Lines, Line{SKU: scarce[rnd.IntN(len(scarce))], Quantity: scarceStock + 1, UnitPrice: 500})
		case p < oosPct+declinePct:
			o.Customer = fmt.Sprintf("decline-%d", rnd.IntN(5))
		}
		start := time.Now()
		h, err := dbos.RunWorkflow(dctx, s.PlaceOrder, o, dbos.WithWorkflowID(o.ID))
		if err != nil {
			return Outcome{}, 0, err
		}
		out, err := h.GetResult()
		return out, time.Since(start), err
	}

	res := &Result{Concurrency: concurrency, Outcomes: map[string]int{}, Violations: map[string]int{}}
	var (
		mu  sync.Mutex
		lat []time.Duration
	)
	phase := func(d time.Duration, record bool) {
		deadline := time.Now().Add(d)
		var wg sync.WaitGroup
		for w := range concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rnd := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
				for time.Now().Before(deadline) {
					out, took, err := place(rnd)
					if !record {
						continue
					}
					mu.Lock()
					res.Orders++
					if err != nil {
						res.Failed++
						if res.FirstError == "" {
							res.FirstError = err.Error()
						}
					} else {
						res.Completed++
						lat = append(lat, took)
						k := out.Status
						if out.Reason != "" {
							k += ":" + out.Reason
						}
						res.Outcomes[k]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	phase(warmup, false)
	self0, pg0 := selfTicks(), pgTicks(ctx, pool)
	start := time.Now()
	phase(duration, true)
	res.Seconds = time.Since(start).Seconds()
	self1, pg1 := selfTicks(), pgTicks(ctx, pool)

	if res.Completed > 0 {
		res.CompletedPerSec = float64(res.Completed) / res.Seconds
		n := float64(res.Completed)
		res.CPUMsPerOrder = CPU{App: ticksMS(self1-self0) / n, Postgres: ticksMS(diffTicks(pg0, pg1)) / n}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		at := func(p float64) float64 {
			i := max(0, min(int(p*float64(len(lat))+0.5)-1, len(lat)-1))
			return float64(lat[i].Microseconds()) / 1000
		}
		res.Latency = Latency{P50: at(0.5), P99: at(0.99), Max: at(1)}
	}
	for _, c := range checks {
		var n int
		if err := pool.QueryRow(ctx, c.sql).Scan(&n); err != nil {
			return nil, fmt.Errorf("check %s: %w", c.name, err)
		}
		res.Violations[c.name] = n
	}
	return res, nil
}

// seed creates the catalogue once per database: skus plentiful SKUs and
// five scarce ones.
func seed(ctx context.Context, pool *pgxpool.Pool, skus int) (catalogue, scarce []string, err error) {
	rows := [][]any{}
	for i := range skus {
		sku := fmt.Sprintf("SKU-%04d", i)
		catalogue = append(catalogue, sku)
		rows = append(rows, []any{sku, int64(plentiful), int64(plentiful)})
	}
	for i := range 5 {
		sku := fmt.Sprintf("SCARCE-%d", i)
		scarce = append(scarce, sku)
		rows = append(rows, []any{sku, int64(scarceStock), int64(scarceStock)})
	}
	b := &pgx.Batch{}
	for _, r := range rows {
		b.Queue(`INSERT INTO shop.stock (sku, on_hand, seeded) VALUES ($1, $2, $3) ON CONFLICT (sku) DO NOTHING`, r...)
	}
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, fmt.Errorf("seed stock: %w", err)
	}
	return catalogue, scarce, nil
}

// clkTck is the kernel's clock tick (USER_HZ), 100 on Linux.
const clkTck = 100

func ticksMS(t int64) float64 { return float64(t) * 1000 / clkTck }

// procTicks is utime+stime of pid in clock ticks (0 when it is gone).
func procTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

func selfTicks() int64 { return procTicks(os.Getpid()) }

// pgTicks is the CPU ticks of every backend connected to this database.
func pgTicks(ctx context.Context, pool *pgxpool.Pool) map[int]int64 {
	out := map[int]int64{}
	rows, err := pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			out[pid] = procTicks(pid)
		}
	}
	return out
}

// diffTicks is the CPU spent between two samples: backends that appeared
// count from zero; those that left are lost (the pool keeps them open).
func diffTicks(a, b map[int]int64) int64 {
	var t int64
	for pid, v := range b {
		t += v - a[pid]
	}
	return t
}
