package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tradewind/tradewind/internal/store"
	"github.com/tradewind/tradewind/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestAnalystRoleReadsTheReadModelsAndNothingElse: the role made by
// GrantAnalyst logs in, reads every read model view and the checkpoints,
// and is refused saga state, users' notifications and any write.
func TestAnalystRoleReadsTheReadModelsAndNothingElse(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Pool(t)
	role := "tw_analyst_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	t.Cleanup(func() {
		_, _ = pool.Exec(ctx, "DROP OWNED BY "+role)
		_, _ = pool.Exec(ctx, "DROP ROLE IF EXISTS "+role)
	})
	views, err := store.GrantAnalyst(ctx, pool, role, "s3cret-"+role)
	if err != nil {
		t.Fatal(err)
	}
	if views < 10 {
		t.Fatalf("granted %d views, want every read model's (at least 10)", views)
	}
	if _, err := store.GrantAnalyst(ctx, pool, role, "s3cret-"+role); err != nil {
		t.Fatalf("a second run (after an upgrade): %v", err)
	}

	cfg, err := pgx.ParseConfig(testenv.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Password = role, "s3cret-"+role
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("the analyst cannot log in: %v", err)
	}
	defer func() { _ = conn.Close(ctx) }()

	for _, q := range []string{
		`SELECT count(*) FROM orders`,
		`SELECT count(*) FROM sales_daily`,
		`SELECT count(*) FROM customers_history`,
		`SELECT count(*) FROM projection_checkpoints`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Errorf("%s: %v, want rows", q, err)
		}
	}
	for _, q := range []string{
		`SELECT count(*) FROM orders.orders`,
		`SELECT count(*) FROM payments.payments`,
		`SELECT count(*) FROM inventory.inventory`,
		`SELECT count(*) FROM core.orders`,
		`SELECT count(*) FROM notifications`,
		`DELETE FROM projection_rejects`,
		`UPDATE projection_checkpoints SET lag = 0`,
		`CREATE TABLE public.analyst_scratch (x int)`,
	} {
		_, err := conn.Exec(ctx, q)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s: %v, want permission denied (42501)", q, err)
		}
	}
}
