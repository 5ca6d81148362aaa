// Package pgtx holds the ways Tradewind shapes a PostgreSQL transaction
// beyond what pgx does by itself.
//
// Tail queues the tail of a transaction: writes that nothing in the
// transaction reads back (the saga log, the outbox), so that the
// transaction's owner sends them in one round trip just before commit
// instead of one round trip each. Invariants: a queued write is sent in the
// transaction it was queued in and before its commit (Flush), or not at all
// (the attempt is rolled back); writes are sent in the order they were
// queued. Hazard: a queued write's error surfaces at Flush, not where it
// was queued, so the owner must treat a failed Flush as a failure of the
// handlers that queued.
//
// AsyncCommit begins a transaction whose commit does not wait for its WAL
// flush, in the BEGIN's round trip.
//
// Hand-written because it is a context key around pgx.Batch, pgx's own
// pipelining, and a pgx.TxOptions; there is nothing more to it.
package pgtx

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// AsyncCommit begins a transaction with synchronous_commit off, sent with
// BEGIN in one simple-protocol round trip. Only for writes whose loss in a
// PostgreSQL crash is repaired from elsewhere (read models from the stream,
// deletes of published outbox rows); saga state commits synchronously.
var AsyncCommit = pgx.TxOptions{BeginQuery: "BEGIN; SET LOCAL synchronous_commit = off"}

// Tail is one transaction attempt's queued writes.
type Tail struct {
	b pgx.Batch
}

type key struct{}

// With returns a context under which From finds a new, empty Tail.
func With(ctx context.Context) (context.Context, *Tail) {
	t := &Tail{}
	return context.WithValue(ctx, key{}, t), t
}

// From returns the context's Tail, or nil: without one, writers execute
// their statements at once.
func From(ctx context.Context) *Tail {
	t, _ := ctx.Value(key{}).(*Tail)
	return t
}

// Queue adds a statement; its result callbacks (QueuedQuery.Query, Exec)
// run during Flush.
func (t *Tail) Queue(sql string, args ...any) *pgx.QueuedQuery {
	return t.b.Queue(sql, args...)
}

// Len is how many statements are queued.
func (t *Tail) Len() int { return t.b.Len() }

// Flush sends the queued statements in one round trip in tx and reads
// every result; the Tail is empty afterwards.
func (t *Tail) Flush(ctx context.Context, tx pgx.Tx) error {
	if t.b.Len() == 0 {
		return nil
	}
	n := t.b.Len()
	err := tx.SendBatch(ctx, &t.b).Close()
	t.b = pgx.Batch{}
	if err != nil {
		return fmt.Errorf("transaction tail (%d statements): %w", n, err)
	}
	return nil
}
