package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tradewind/tradewind/internal/store"
	"github.com/tradewind/tradewind/internal/testenv"
)

// relkind is the kind of relation name ('r' table, 'v' view), "" when
// there is none.
func relkind(t *testing.T, pool *pgxpool.Pool, name string) string {
	t.Helper()
	var kind *string
	if err := pool.QueryRow(context.Background(), `SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)`, name).Scan(&kind); err != nil &&
		!errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	if kind == nil {
		return ""
	}
	return *kind
}

// TestParticipantTablesMoveToTheirSchemas: migration 01300 moves the
// participants' tables out of core with their constraints (checks and
// foreign keys still hold), leaves views of the old names through which
// the previous release's statements (upserts, FOR UPDATE, joins' updates)
// still work, and its down step puts the tables back.
func TestParticipantTablesMoveToTheirSchemas(t *testing.T) {
	ctx := context.Background()
	dbURL := testenv.FreshDatabaseURL(t)
	pool := testenv.PoolOn(t, dbURL)

	moved := map[string]string{
		"orders": "orders", "cancel_tombstones": "orders", "customers": "orders",
		"inventory": "inventory", "stock_orders": "inventory", "reservations": "inventory",
		"restocks": "inventory", "products": "inventory", "categories": "inventory",
		"payments": "payments", "payment_ops": "payments",
	}
	for table, schema := range moved {
		if k := relkind(t, pool, schema+"."+table); k != "r" {
			t.Errorf("%s.%s: relkind %q, want a table", schema, table, k)
		}
		if k := relkind(t, pool, "core."+table); k != "v" {
			t.Errorf("core.%s: relkind %q, want the previous release's view", table, k)
		}
	}
	for _, infra := range []string{"core.inbox", "core.outbox", "core.saga_log"} {
		if k := relkind(t, pool, infra); k != "r" {
			t.Errorf("%s: relkind %q, want a table left in core", infra, k)
		}
	}

	exec := func(sql string, args ...any) error {
		_, err := pool.Exec(ctx, sql, args...)
		return err
	}
	code := func(err error) string {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return pgErr.Code
		}
		return ""
	}
	sku, order := "MV-"+uuid.NewString()[:8], uuid.NewString()
	// The previous release's restock and reservation, through the views.
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO core.inventory (sku, on_hand) VALUES ($1, $2)
			ON CONFLICT (sku) DO UPDATE SET on_hand = core.inventory.on_hand + excluded.on_hand, updated_at = now()`, []any{sku, 5}},
		{`INSERT INTO core.inventory (sku, on_hand) VALUES ($1, $2)
			ON CONFLICT (sku) DO UPDATE SET on_hand = core.inventory.on_hand + excluded.on_hand, updated_at = now()`, []any{sku, 2}},
		{`INSERT INTO core.stock_orders (order_id, status) VALUES ($1, 'reserved') ON CONFLICT DO NOTHING`, []any{order}},
		{`INSERT INTO core.reservations (order_id, sku, quantity, status) VALUES ($1, $2, 3, 'reserved')`, []any{order, sku}},
		{`UPDATE core.inventory i SET reserved = i.reserved + t.q FROM (VALUES ($1::text, 3::bigint)) AS t(s, q) WHERE i.sku = t.s`, []any{sku}},
		{`INSERT INTO core.payments (order_id, customer_id, currency, amount) VALUES ($1, 'c', 'EUR', 100) ON CONFLICT (order_id) DO NOTHING`, []any{order}},
	} {
		if err := exec(q.sql, q.args...); err != nil {
			t.Fatalf("previous release: %s: %v", q.sql, err)
		}
	}
	var onHand, reserved int64
	if err := pool.QueryRow(ctx, `SELECT on_hand, reserved FROM inventory.inventory WHERE sku = $1`, sku).Scan(&onHand, &reserved); err != nil ||
		onHand != 7 || reserved != 3 {
		t.Fatalf("inventory.inventory: on_hand %d reserved %d (%v), want 7 and 3", onHand, reserved, err)
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var status string
		return tx.QueryRow(ctx, `SELECT status FROM core.payments WHERE order_id = $1 FOR UPDATE`, order).Scan(&status)
	})
	if err != nil {
		t.Errorf("previous release: lock a payment through core.payments: %v", err)
	}
	// The constraints moved with the tables.
	if c := code(exec(`UPDATE inventory.inventory SET reserved = on_hand + 1 WHERE sku = $1`, sku)); c != "23514" {
		t.Errorf("reserved above on_hand: code %q, want a check violation (23514)", c)
	}
	if c := code(exec(`INSERT INTO inventory.reservations (order_id, sku, quantity, status) VALUES ($1, 'no-such-sku', 1, 'reserved')`, order)); c != "23503" {
		t.Errorf("a reservation of an unknown SKU: code %q, want a foreign key violation (23503)", c)
	}
	if c := code(exec(`INSERT INTO payments.payment_ops (order_id, op, provider_id, idempotency_key, amount, event_id)
		VALUES ($1, 'capture', 'p', 'k', 1, 'e')`, uuid.NewString())); c != "23503" {
		t.Errorf("an operation of an unknown payment: code %q, want a foreign key violation (23503)", c)
	}

	// Down (and whatever later migrations sit above it) puts the tables
	// back in core with their rows; up moves them again.
	for i := 0; relkind(t, pool, "core.inventory") != "r"; i++ {
		if i == 20 {
			t.Fatal("core.inventory is not a table after 20 down steps")
		}
		if err := store.MigrateDown(ctx, dbURL); err != nil {
			t.Fatalf("down: %v", err)
		}
	}
	for table := range moved {
		if k := relkind(t, pool, "core."+table); k != "r" {
			t.Errorf("after down: core.%s: relkind %q, want a table", table, k)
		}
	}
	if err := pool.QueryRow(ctx, `SELECT on_hand FROM core.inventory WHERE sku = $1`, sku).Scan(&onHand); err != nil || onHand != 7 {
		t.Errorf("after down: core.inventory on_hand %d (%v), want 7", onHand, err)
	}
	if err := store.Migrate(ctx, dbURL); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if k := relkind(t, pool, "inventory.inventory"); k != "r" {
		t.Errorf("up again: inventory.inventory: relkind %q, want a table", k)
	}
}
