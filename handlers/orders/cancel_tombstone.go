package orders

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// CancelTombstoneTTL is how long the orders participant remembers a
// customer's cancel for an order it has not seen placed
// (orders.cancel_tombstones). It outlives the COMMANDS stream's retention
// (7 days), so the place command of an early cancel cannot still be in
// the stream when its tombstone goes. Hazard: a place command published
// more than this long after its cancel is placed and runs normally; the
// cancel is forgotten.
const CancelTombstoneTTL = 8 * 24 * time.Hour

// orderIDLockClass is the first key of the advisory locks that serialise
// placing an order with an early cancel of it (the two-key form, apart
// from the one-key locks other packages take).
const orderIDLockClass = 0x74770001

// lockOrderID takes the transaction-scoped advisory lock of an order id.
// place_order takes it after inserting the order and cancel_order before
// tombstoning an unknown one: whichever comes second waits for the first
// to commit and then, at READ COMMITTED, sees its row — so a cancel is
// never tombstoned for an order placed at the same moment without the
// placement finding the tombstone.
//
// Hazard: the lock is held until commit, so a batch of N place commands
// holds N advisory locks. PostgreSQL's shared lock table holds
// max_locks_per_transaction × (max_connections + max_prepared_transactions)
// locks (6 400 by default), far above the default batch of 100; a
// TRADEWIND_BATCH_SIZE in the thousands needs max_locks_per_transaction
// raised, or place commands fail with "out of shared memory".
func lockOrderID(ctx context.Context, tx pgx.Tx, orderID string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, orderIDLockClass, orderID); err != nil {
		return fmt.Errorf("lock order id %s: %w", orderID, err)
	}
	return nil
}

// rememberCancel records a cancel command for an order not placed yet. A
// second cancel of the same order keeps the first.
func rememberCancel(ctx context.Context, tx pgx.Tx, orderID, commandID string, now time.Time, ttl time.Duration) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO orders.cancel_tombstones (order_id, command_id, requested_at, expires_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (order_id) DO NOTHING`, orderID, commandID, now, now.Add(ttl))
	if err != nil {
		return fmt.Errorf("remember cancel of order %s: %w", orderID, err)
	}
	return nil
}

// takeCancels takes the locks of order ids that were just inserted (in
// sorted order, so two batches cannot deadlock) and deletes their
// tombstones; it returns, by order id, the cancel command's id of each
// unexpired one it found (keyed by the canonical form of the id). Both statements go in one round trip; each sees
// what committed before it ran.
func takeCancels(ctx context.Context, tx pgx.Tx, orderIDs []string, now time.Time) (map[string]string, error) {
	if len(orderIDs) == 0 {
		return nil, nil
	}
	sorted := slices.Clone(orderIDs)
	slices.Sort(sorted)
	b := &pgx.Batch{}
	b.Queue(`SELECT count(pg_advisory_xact_lock($1, hashtext(o))) FROM unnest($2::text[]) AS u(o)`, orderIDLockClass, sorted)
	b.Queue(`DELETE FROM orders.cancel_tombstones WHERE order_id = ANY($1::uuid[]) RETURNING order_id::text, command_id, expires_at`, sorted)
	res := tx.SendBatch(ctx, b)
	defer func() { _ = res.Close() }()
	if _, err := res.Exec(); err != nil {
		return nil, fmt.Errorf("lock %d order ids: %w", len(sorted), err)
	}
	rows, err := res.Query()
	if err != nil {
		return nil, fmt.Errorf("early cancels of %d orders: %w", len(sorted), err)
	}
	found := map[string]string{}
	for rows.Next() {
		var orderID, commandID string
		var expires time.Time
		if err := rows.Scan(&orderID, &commandID, &expires); err != nil {
			return nil, fmt.Errorf("early cancels of %d orders: %w", len(sorted), err)
		}
		if now.Before(expires) { // expired: forgotten, as if purged
			found[orderID] = commandID
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("early cancels of %d orders: %w", len(sorted), err)
	}
	return found, res.Close()
}

// PurgeCancelTombstones deletes up to limit tombstones expired at now and
// returns how many went. The deadline sweeper calls it in its transaction.
func PurgeCancelTombstones(ctx context.Context, tx pgx.Tx, now time.Time, limit int) (int64, error) {
	tag, err := tx.Exec(ctx, `
		DELETE FROM orders.cancel_tombstones WHERE order_id IN (
			SELECT order_id FROM orders.cancel_tombstones WHERE expires_at <= $1
			ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, now, limit)
	if err != nil {
		return 0, fmt.Errorf("purge expired cancel tombstones: %w", err)
	}
	return tag.RowsAffected(), nil
}
