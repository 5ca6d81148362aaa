package idempotency

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tradewind/tradewind/internal/testenv"
)

// TestResponseUpdateFindsRowsByKeyOnAnEmptyTable: planned while
// core.idempotency is (nearly) empty — as on a fresh database, and as a
// cached plan stays — the batch UPDATE must still look rows up by key, not
// scan the table (which it then did on every flush as the table grew).
func TestResponseUpdateFindsRowsByKeyOnAnEmptyTable(t *testing.T) {
	ctx := context.Background()
	base := testenv.Pool(t)
	pool, err := pgxpool.NewWithConfig(ctx, PoolConfig(base.Config()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	const n = 64 // a flush's worth of responses
	callers, keys, owners := make([]string, n), make([]string, n), make([][16]byte, n)
	statuses, headers, bodies := make([]int32, n), make([]string, n), make([][]byte, n)
	for i := range n {
		callers[i], keys[i], owners[i] = "c", uuid.NewString(), uuid.New()
		statuses[i], headers[i], bodies[i] = 202, "{}", []byte("{}")
	}
	plan := func(p *pgxpool.Pool) string {
		rows, err := p.Query(ctx, "EXPLAIN "+completeBatchSQL, callers, keys, owners, statuses, headers, bodies)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			b.WriteString(line + "\n")
		}
		return b.String()
	}
	if p := plan(base); !strings.Contains(p, "Seq Scan on idempotency") {
		t.Logf("the default settings no longer scan an empty table here, so this test proves less:\n%s", p)
	}
	if p := plan(pool); strings.Contains(p, "Seq Scan on idempotency") || !strings.Contains(p, "idempotency_pkey") {
		t.Fatalf("the store's pool plans the response UPDATE without the primary key:\n%s", p)
	}
}
