package pgtx_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/internal/pgtx"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Queued writes reach the transaction only at Flush, in queue order, and
// a failing one fails Flush.
func TestQueuedWritesAreSentAtFlushInOrder(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE tail_test (n int PRIMARY KEY, at_flush bigint)`); err != nil {
		t.Fatal(err)
	}
	ctx, tail := pgtx.With(ctx)
	if pgtx.From(ctx) != tail || pgtx.From(context.Background()) != nil {
		t.Fatal("From does not find the context's tail")
	}
	var returned []int
	for n := 1; n <= 3; n++ {
		tail.Queue(`INSERT INTO tail_test VALUES ($1, (SELECT count(*) FROM tail_test)) RETURNING n`, n).Query(func(rows pgx.Rows) error {
			got, err := pgx.CollectRows(rows, pgx.RowTo[int])
			returned = append(returned, got...)
			return err
		})
	}
	var before int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM tail_test`).Scan(&before); err != nil || before != 0 {
		t.Fatalf("%d rows before Flush (%v), want 0", before, err)
	}
	if err := tail.Flush(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if len(returned) != 3 || returned[0] != 1 || returned[2] != 3 {
		t.Fatalf("callbacks saw %v, want [1 2 3]", returned)
	}
	rows, _ := tx.Query(ctx, `SELECT at_flush FROM tail_test ORDER BY n`)
	seen, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(seen) != 3 || seen[0] != 0 || seen[1] != 1 || seen[2] != 2 {
		t.Fatalf("each insert saw %v rows before it (%v), want [0 1 2]: sent in queue order", seen, err)
	}
	if tail.Len() != 0 {
		t.Fatalf("%d statements left after Flush", tail.Len())
	}

	tail.Queue(`INSERT INTO tail_test VALUES (1, 0)`) // duplicate key
	if err := tail.Flush(ctx, tx); err == nil {
		t.Fatal("Flush of a failing statement returned nil")
	}
}

// AsyncCommit turns synchronous_commit off for its transaction only.
func TestAsyncCommitIsLocalToItsTransaction(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	setting := func(q interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}) string {
		var v string
		if err := q.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	tx, err := conn.BeginTx(ctx, pgtx.AsyncCommit)
	if err != nil {
		t.Fatal(err)
	}
	if got := setting(tx); got != "off" {
		t.Fatalf("inside: synchronous_commit = %s, want off", got)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := setting(conn); got != "on" {
		t.Fatalf("after commit, on the same connection: synchronous_commit = %s, want on", got)
	}
}
