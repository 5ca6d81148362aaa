package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
)

// RebuildOptions tune a rebuild.
type RebuildOptions struct {
	// BatchSize bounds one transaction while replaying (default 5000).
	BatchSize int
	// Progress, when set, is called after every batch with the position
	// reached and the stream's head when the rebuild started.
	Progress func(pos, head uint64)
	// BeforeSwitch, when set, runs after the new version caught up and
	// before the views switch (tests use it to race the live worker).
	BeforeSwitch func(ctx context.Context) error
	// KeepOld keeps the previous version's tables after the switch
	// (default: dropped).
	KeepOld bool
	Log     *slog.Logger
}

// RebuildResult describes a finished rebuild.
type RebuildResult struct {
	Name       string
	OldVersion int // 0 when the projection had no live version
	NewVersion int
	Position   uint64 // the new version's checkpoint at the switch
	Events     int    // events applied
	Took       time.Duration
}

// switchLockTimeout bounds how long the switch waits for readers holding
// the views (a long analyst query): waiting longer would queue every new
// reader behind the switch. On timeout the switch is retried.
const switchLockTimeout = 3 * time.Second

// Rebuild builds the next version of p from the start of the EVENTS stream
// into new tables while the live version keeps serving and updating, then
// switches readers atomically:
//
//  1. create proj.<table>_v<N+1> LIKE the template, checkpoint 0, not live;
//  2. replay the stream in large batches on one session with
//     synchronous_commit off, each committed with the new version's
//     checkpoint (a crashed rebuild is simply started again: the leftover
//     version is dropped first, so losing its last commits to a crash is
//     harmless);
//  3. once caught up, one transaction locks the checkpoint rows (the live
//     worker waits), applies what the live version has and the new one
//     lacks, points every view public.<table> at the new tables (CREATE OR
//     REPLACE VIEW: the column list must stay compatible) and flips live;
//  4. drops the old version's tables.
//
// Readers never see a half-built version: before the switch the views
// point at the old tables, after it at complete new ones. A session
// advisory lock allows one rebuild per projection at a time.
func Rebuild(ctx context.Context, pool *pgxpool.Pool, js jetstream.JetStream, p Projection, opts RebuildOptions) (RebuildResult, error) {
	start := time.Now()
	if opts.BatchSize <= 0 {
		opts.BatchSize = 5000
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	res := RebuildResult{Name: p.Name()}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("rebuild %s: %w", p.Name(), err)
	}
	defer conn.Release()
	lockKey := "tradewind.rebuild." + p.Name()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, lockKey).Scan(&got); err != nil {
		return res, fmt.Errorf("rebuild %s: advisory lock: %w", p.Name(), err)
	}
	if !got {
		return res, fmt.Errorf("rebuild %s: %w", p.Name(), ErrRebuildRunning)
	}
	defer func() {
		bg := context.WithoutCancel(ctx)
		_, _ = conn.Exec(bg, `RESET synchronous_commit`)
		_, _ = conn.Exec(bg, `SELECT pg_advisory_unlock(hashtext($1))`, lockKey)
	}()
	// The replay's commits need not wait for the WAL flush (see above).
	// The switch runs on another connection with the server's setting, and
	// its synchronous commit flushes the WAL of every batch before it.
	if _, err := conn.Exec(ctx, `SET synchronous_commit = off`); err != nil {
		return res, fmt.Errorf("rebuild %s: %w", p.Name(), err)
	}

	stream, err := ReadStream(ctx, js)
	if err != nil {
		return res, fmt.Errorf("rebuild %s: %w", p.Name(), err)
	}
	nv, err := prepareVersion(ctx, pool, p, stream)
	if err != nil {
		return res, err
	}
	res.NewVersion = nv
	head := stream.LastSeq

	src, err := openSource(ctx, js, p.Name()+"-rebuild", p.Subjects(), 1, 2*opts.BatchSize)
	if err != nil {
		return res, err
	}
	defer src.close()

	// Replay: a goroutine fetches the next batch from JetStream while this
	// one writes the previous to PostgreSQL. It stops at the first batch
	// that reaches the head (pending 0); the switch then reads the source
	// itself.
	type fetched struct {
		evs     []Event
		pending uint64
		err     error
	}
	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	batches := make(chan fetched, 2)
	go func() {
		defer close(batches)
		for {
			evs, pending, err := src.next(fetchCtx, opts.BatchSize, time.Second, 0)
			prepare(p, evs)
			select {
			case batches <- fetched{evs, pending, err}:
			case <-fetchCtx.Done():
				return
			}
			if err != nil || pending == 0 {
				return
			}
		}
	}()
	var last uint64
	for {
		// A closed channel (the fetcher stopped at the head) reads as an
		// empty batch with nothing pending: go (back) to the switch, whose
		// catch-up reads the source itself.
		f := <-batches
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		evs, pending, err := f.evs, f.pending, f.err
		if err != nil {
			return res, err
		}
		if len(evs) > 0 {
			upTo := evs[len(evs)-1].Seq
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				n, err := applyBatch(ctx, tx, p, nv, last, evs, upTo, pending)
				res.Events += n
				return err
			})
			if err != nil {
				return res, fmt.Errorf("rebuild %s: %w", p.Name(), err)
			}
			last = upTo
			if opts.Progress != nil {
				opts.Progress(min(last, head), head)
			}
		}
		if pending > 0 {
			continue
		}
		// Caught up with what the stream held a moment ago: switch.
		if opts.BeforeSwitch != nil {
			if err := opts.BeforeSwitch(ctx); err != nil {
				return res, err
			}
		}
		old, pos, n, err := switchTo(ctx, pool, js, src, p, nv, last, opts.Log)
		res.Events += n
		if errors.Is(err, errRetrySwitch) {
			opts.Log.Info("switch postponed; catching up again", "projection", p.Name(), "reason", err)
			continue
		}
		if err != nil {
			return res, err
		}
		res.OldVersion, res.Position = old, pos
		break
	}
	if opts.Progress != nil {
		opts.Progress(head, head)
	}
	if res.OldVersion > 0 && !opts.KeepOld {
		if err := dropVersion(ctx, pool, p, res.OldVersion); err != nil {
			return res, err
		}
	}
	res.Took = time.Since(start)
	return res, nil
}

// prepareVersion drops versions a crashed rebuild left behind and creates
// the tables and the checkpoint row of the next version, recording the
// stream it is built from.
func prepareVersion(ctx context.Context, pool *pgxpool.Pool, p Projection, stream Stream) (int, error) {
	cps, err := Checkpoints(ctx, pool)
	if err != nil {
		return 0, err
	}
	nv := 1
	for _, c := range cps {
		if c.Name != p.Name() {
			continue
		}
		nv = max(nv, c.Version+1)
		if !c.Live {
			if err := dropVersion(ctx, pool, p, c.Version); err != nil {
				return 0, err
			}
		}
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, t := range p.Tables() {
			if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s (LIKE %s INCLUDING ALL)`,
				PhysicalTable(t, nv), templateTable(t))); err != nil {
				return fmt.Errorf("create %s v%d: %w", t, nv, err)
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO public.projection_checkpoints (name, version, last_seq, live, stream_created) VALUES ($1, $2, 0, false, $3)`, p.Name(), nv, stream.Created)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("rebuild %s: prepare v%d: %w", p.Name(), nv, err)
	}
	return nv, nil
}

var errRetrySwitch = errors.New("retry the switch")

// switchTo makes version nv live; see Rebuild. It returns the old live
// version, the position of the new one and the events applied here.
func switchTo(ctx context.Context, pool *pgxpool.Pool, js jetstream.JetStream, src *source, p Projection, nv int, last uint64, log *slog.Logger) (old int, pos uint64, applied int, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = '%dms'`, switchLockTimeout.Milliseconds())); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+cpCols+` FROM public.projection_checkpoints WHERE name = $1 ORDER BY version FOR UPDATE`, p.Name())
		if err != nil {
			return fmt.Errorf("lock checkpoints: %w", err)
		}
		var liveSeq uint64
		var live *Checkpoint
		for rows.Next() {
			c, err := scanCheckpoint(rows)
			if err != nil {
				rows.Close()
				return err
			}
			if c.Live {
				old, liveSeq, live = c.Version, c.LastSeq, &c
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if live != nil {
			// A live version built from another incarnation of the stream
			// (the reason for this rebuild) has nothing to catch up with:
			// its positions count in a stream that is gone.
			s, err := ReadStream(ctx, js)
			if err != nil {
				return err
			}
			if err := CheckStream(*live, s); err != nil {
				log.Info("replacing a stale live version", "projection", p.Name(), "reason", err)
				liveSeq = 0
			}
		}
		// The live worker now waits on the lock: apply what it applied and
		// we have not, so the position never moves backwards at the switch.
		for last < liveSeq {
			evs, pending, err := src.next(ctx, 5000, 500*time.Millisecond, 0)
			if err != nil {
				return err
			}
			prepare(p, evs)
			if len(evs) == 0 {
				head, ok, err := caughtUpTo(ctx, js, src)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("%w: behind the live version (%d < %d) and nothing arrives", errRetrySwitch, last, liveSeq)
				}
				// Nothing of ours lies between last and the head.
				if _, err := applyBatch(ctx, tx, p, nv, last, nil, max(head, liveSeq), 0); err != nil {
					return err
				}
				last = max(head, liveSeq)
				break
			}
			upTo := evs[len(evs)-1].Seq
			n, err := applyBatch(ctx, tx, p, nv, last, evs, upTo, pending)
			if err != nil {
				return err
			}
			applied += n
			last = upTo
		}
		for _, t := range p.Tables() {
			if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE OR REPLACE VIEW %s AS SELECT * FROM %s`,
				viewName(t), PhysicalTable(t, nv))); err != nil {
				return fmt.Errorf("point view %s at v%d: %w", t, nv, err)
			}
		}
		// Two statements: the one-live-version index is checked per row.
		if _, err := tx.Exec(ctx, `UPDATE public.projection_checkpoints SET live = false WHERE name = $1 AND live`, p.Name()); err != nil {
			return fmt.Errorf("retire live version: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE public.projection_checkpoints SET live = true, updated_at = now() WHERE name = $1 AND version = $2`, p.Name(), nv); err != nil {
			return fmt.Errorf("make v%d live: %w", nv, err)
		}
		pos = last
		return nil
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
		log.Warn("switch waited too long for readers; retrying", "projection", p.Name())
		return 0, 0, 0, fmt.Errorf("%w: %s", errRetrySwitch, pgErr.Message)
	}
	if err != nil {
		if errors.Is(err, errRetrySwitch) {
			return 0, 0, 0, err
		}
		return 0, 0, 0, fmt.Errorf("rebuild %s: switch to v%d: %w", p.Name(), nv, err)
	}
	return old, pos, applied, nil
}

// dropVersion drops version v's tables and checkpoint (never the live one).
func dropVersion(ctx context.Context, pool *pgxpool.Pool, p Projection, v int) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var live bool
		err := tx.QueryRow(ctx, `SELECT live FROM public.projection_checkpoints WHERE name = $1 AND version = $2 FOR UPDATE`, p.Name(), v).Scan(&live)
		if err == nil && live {
			return fmt.Errorf("drop %s v%d: it is live", p.Name(), v)
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("drop %s v%d: %w", p.Name(), v, err)
		}
		names := make([]string, 0, len(p.Tables()))
		for _, t := range p.Tables() {
			names = append(names, PhysicalTable(t, v))
		}
		if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+strings.Join(names, ", ")); err != nil {
			return fmt.Errorf("drop %s v%d tables: %w", p.Name(), v, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM public.projection_checkpoints WHERE name = $1 AND version = $2`, p.Name(), v); err != nil {
			return fmt.Errorf("drop %s v%d checkpoint: %w", p.Name(), v, err)
		}
		_, err = tx.Exec(ctx, `DELETE FROM public.projection_rejects WHERE name = $1 AND version = $2`, p.Name(), v)
		return err
	})
}
