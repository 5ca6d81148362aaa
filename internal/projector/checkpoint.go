package projector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Checkpoint is a row of public.projection_checkpoints.
type Checkpoint struct {
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	LastSeq   uint64    `json:"last_seq"`
	Live      bool      `json:"live"`
	Lag       uint64    `json:"lag"`
	UpdatedAt time.Time `json:"updated_at"`
	// StreamCreated is the creation time of the EVENTS stream LastSeq
	// counts in (see Incarnation); nil until a worker or rebuild records it.
	StreamCreated *time.Time `json:"stream_created,omitempty"`
}

// querier is what reads checkpoints: a pool, a connection or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

var _ querier = (*pgxpool.Pool)(nil)

const cpCols = `name, version, last_seq, live, lag, updated_at, stream_created`

func scanCheckpoint(row pgx.Row) (Checkpoint, error) {
	var c Checkpoint
	var last, lag int64
	err := row.Scan(&c.Name, &c.Version, &last, &c.Live, &lag, &c.UpdatedAt, &c.StreamCreated)
	c.LastSeq, c.Lag = uint64(last), uint64(lag)
	return c, err
}

// LiveCheckpoint returns the live version's checkpoint of projection name.
func LiveCheckpoint(ctx context.Context, q querier, name string) (Checkpoint, error) {
	c, err := scanCheckpoint(q.QueryRow(ctx,
		`SELECT `+cpCols+` FROM public.projection_checkpoints WHERE name = $1 AND live`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("projection %s: %w (are migrations applied?)", name, ErrNotLive)
	}
	if err != nil {
		return c, fmt.Errorf("projection %s: read checkpoint: %w", name, err)
	}
	return c, nil
}

// lockLive reads the live checkpoint FOR UPDATE: live workers and the
// rebuild's switch serialise on this row.
func lockLive(ctx context.Context, tx pgx.Tx, name string) (Checkpoint, error) {
	c, err := scanCheckpoint(tx.QueryRow(ctx,
		`SELECT `+cpCols+` FROM public.projection_checkpoints WHERE name = $1 AND live FOR UPDATE`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("projection %s: %w", name, ErrNotLive)
	}
	if err != nil {
		return c, fmt.Errorf("projection %s: lock checkpoint: %w", name, err)
	}
	return c, nil
}

// Checkpoints lists every checkpoint row (live versions and rebuilds in
// progress), by name and version.
func Checkpoints(ctx context.Context, q querier) ([]Checkpoint, error) {
	rows, err := q.Query(ctx, `SELECT `+cpCols+` FROM public.projection_checkpoints ORDER BY name, version`)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	defer rows.Close()
	var out []Checkpoint
	for rows.Next() {
		c, err := scanCheckpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("list checkpoints: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// WaitFor waits until the live version of projection name has applied
// stream position seq, polling its checkpoint, for at most timeout. It
// returns the position reached; ErrBehind when the timeout passed first.
// seq 0 returns at once. The caller bounds timeout (the read API: 2 s).
func WaitFor(ctx context.Context, q querier, name string, seq uint64, timeout time.Duration) (uint64, error) {
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	for {
		c, err := LiveCheckpoint(ctx, q, name)
		if err != nil {
			return 0, err
		}
		if c.LastSeq >= seq {
			return c.LastSeq, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return c.LastSeq, fmt.Errorf("projection %s at %d, want %d: %w", name, c.LastSeq, seq, ErrBehind)
		}
		t := time.NewTimer(min(delay, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return c.LastSeq, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}
