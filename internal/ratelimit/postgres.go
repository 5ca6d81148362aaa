package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres keeps buckets in core.rate_limits: one conditional upsert per
// request, atomic under the row lock, so concurrent instances serialise on
// the bucket's row. Kept as the measured alternative to KV (see the
// package benchmarks); expired rows are removed by Sweep.
type Postgres struct {
	pool *pgxpool.Pool
}

// NewPostgres wires the store.
func NewPostgres(pool *pgxpool.Pool) (*Postgres, error) {
	if pool == nil {
		return nil, errors.New("ratelimit: a pool is required")
	}
	return &Postgres{pool: pool}, nil
}

// Take implements Store.
func (s *Postgres) Take(ctx context.Context, bucket string, now time.Time, l Limit) (Decision, error) {
	n, t, tau := now.UnixNano(), l.interval(), l.tolerance()
	var tat int64
	err := s.pool.QueryRow(ctx, `
		INSERT INTO core.rate_limits AS r (bucket, tat_ns, expires_ns) VALUES ($1, $2::bigint + $3, $2::bigint + $3 + $4)
		ON CONFLICT (bucket) DO UPDATE
		   SET tat_ns = GREATEST(r.tat_ns, $2) + $3, expires_ns = GREATEST(r.tat_ns, $2) + $3 + $4
		 WHERE GREATEST(r.tat_ns, $2) + $3 - $2 <= $4
		RETURNING tat_ns`, bucket, n, t, tau).Scan(&tat)
	if err == nil {
		_, d := gcra(n, tat-t, l) // tat-t is the state this request started from
		return d, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Decision{}, fmt.Errorf("rate limit %s: %w", bucket, err)
	}
	// Denied: read the state for Retry-After.
	if err := s.pool.QueryRow(ctx, `SELECT tat_ns FROM core.rate_limits WHERE bucket = $1`, bucket).Scan(&tat); err != nil {
		return Decision{}, fmt.Errorf("rate limit %s: read: %w", bucket, err)
	}
	_, d := gcra(n, tat, l)
	d.Allowed = false // a refill between the two statements still denies this request
	return d, nil
}

// Sweep deletes buckets that are full again (their state no longer matters).
func (s *Postgres) Sweep(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM core.rate_limits WHERE expires_ns < $1`, time.Now().UnixNano())
	if err != nil {
		return 0, fmt.Errorf("sweep rate limits: %w", err)
	}
	return tag.RowsAffected(), nil
}
