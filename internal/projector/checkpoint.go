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

// lockLive reads the live checkpoints of names FOR UPDATE, in one
// statement that locks them in name order (the sort runs below the row
// locks), so that groups, whatever their members, never deadlock on
// one another; a rebuild's switch locks one name's rows only. A name
// missing from the result has no live row any more: the caller waited on
// it while a rebuild switched its live version (the row it waited for was
// retired, and the new one is not in its snapshot).
func lockLive(ctx context.Context, tx pgx.Tx, names []string) (map[string]Checkpoint, error) {
	rows, err := tx.Query(ctx, `SELECT `+cpCols+` FROM public.projection_checkpoints
		WHERE name = ANY($1) AND live ORDER BY name FOR UPDATE`, names)
	if err != nil {
		return nil, fmt.Errorf("lock checkpoints of %v: %w", names, err)
	}
	defer rows.Close()
	out := make(map[string]Checkpoint, len(names))
	for rows.Next() {
		c, err := scanCheckpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("lock checkpoints of %v: %w", names, err)
		}
		out[c.Name] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lock checkpoints of %v: %w", names, err)
	}
	return out, nil
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
