package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/metrics"
	"github.com/tradewind/tradewind/internal/retry"
	"github.com/tradewind/tradewind/internal/tracing"
)

// WorkerConfig tunes a live worker.
type WorkerConfig struct {
	// BatchSize bounds the events applied in one transaction (default 500).
	BatchSize int
	// Linger is how long to wait for more events once one arrived while
	// the stream holds nothing more (default 5 ms): latency vs batch size.
	Linger time.Duration
	// IdleAdvance is how long the worker waits with nothing to apply before
	// advancing its checkpoint to the stream head (default 200 ms), so that
	// a position token of another context's event is "reached" too.
	IdleAdvance time.Duration
	// Tracer, when set, traces each applied batch as one span linked to
	// the traces of its events (a batch has many parents, so links).
	Tracer trace.Tracer
	// Guard, when set, receives the worker's stream checks (see
	// StaleGuard); without one the worker logs a stale stream itself.
	Guard *StaleGuard
	// StaleRecheck is how often a stale worker checks whether a rebuild
	// made its projection consistent again (default 1 s).
	StaleRecheck time.Duration
}

func (c *WorkerConfig) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.Linger <= 0 {
		c.Linger = 5 * time.Millisecond
	}
	if c.IdleAdvance <= 0 {
		c.IdleAdvance = 200 * time.Millisecond
	}
	if c.StaleRecheck <= 0 {
		c.StaleRecheck = time.Second
	}
}

// Worker keeps the live version of one projection up to date. Several
// workers of one projection (several processes) are safe: each batch locks
// the checkpoint row and skips what another already applied. When a
// rebuild switches the live version, the worker notices at its next batch
// and restarts from the new version's checkpoint.
type Worker struct {
	p       Projection
	js      jetstream.JetStream
	pool    *pgxpool.Pool
	cfg     WorkerConfig
	log     *slog.Logger
	running atomic.Bool
	stale   atomic.Pointer[error]
}

// NewWorker validates its dependencies.
func NewWorker(p Projection, js jetstream.JetStream, pool *pgxpool.Pool, cfg WorkerConfig, log *slog.Logger) (*Worker, error) {
	if p == nil || js == nil || pool == nil {
		return nil, errors.New("projector: projection, JetStream and pool are required")
	}
	if log == nil {
		log = slog.Default()
	}
	cfg.setDefaults()
	return &Worker{p: p, js: js, pool: pool, cfg: cfg, log: log.With("projection", p.Name())}, nil
}

// Name names the service.
func (w *Worker) Name() string { return "projection-" + w.p.Name() }

// Running reports whether the worker is consuming (for /readyz).
func (w *Worker) Running() bool { return w.running.Load() }

// NotReady explains why the worker refuses to run ("" when it does not):
// its checkpoint refers to another incarnation of the EVENTS stream (see
// CheckStream). /readyz reports it.
func (w *Worker) NotReady() string {
	if err := w.Stale(); err != nil {
		return err.Error()
	}
	return ""
}

// Stale returns why the projection's live version cannot be trusted
// (wrapping ErrStale), nil when it can.
func (w *Worker) Stale() error {
	if p := w.stale.Load(); p != nil {
		return *p
	}
	return nil
}

func (w *Worker) setStale(err error) {
	if err == nil {
		if w.stale.Swap(nil) != nil && w.cfg.Guard == nil {
			w.log.Info("projection consistent with the EVENTS stream again")
		}
		if w.cfg.Guard != nil {
			w.cfg.Guard.report(w.p.Name(), nil)
		}
		return
	}
	if w.stale.Swap(&err) == nil && w.cfg.Guard == nil {
		w.log.Error("READ MODEL STALE: refusing to apply events", "reason", err)
	}
	if w.cfg.Guard != nil {
		w.cfg.Guard.report(w.p.Name(), err)
	}
}

// checkStream reads the live checkpoint and the stream and checks one
// against the other; a checkpoint with no stream recorded records it.
func (w *Worker) checkStream(ctx context.Context) (Checkpoint, error) {
	cp, err := LiveCheckpoint(ctx, w.pool, w.p.Name())
	if err != nil {
		return cp, err
	}
	s, err := ReadStream(ctx, w.js)
	if err != nil {
		return cp, err
	}
	if err := CheckStream(cp, s); err != nil {
		return cp, err
	}
	if cp.StreamCreated == nil {
		if err := recordStream(ctx, w.pool, cp.Name, cp.Version, s); err != nil {
			return cp, err
		}
	}
	return cp, nil
}

// waitConsistent polls until the projection is consistent with the stream
// again (a rebuild switched in a version built from it) or ctx ends.
func (w *Worker) waitConsistent(ctx context.Context) {
	for ctx.Err() == nil {
		retry.Sleep(ctx, w.cfg.StaleRecheck)
		_, err := w.checkStream(ctx)
		if err == nil {
			w.setStale(nil)
			return
		}
		if errors.Is(err, ErrStale) {
			w.setStale(err)
		}
	}
}

// Run applies events until ctx ends, restarting after failures.
func (w *Worker) Run(ctx context.Context) error {
	return retry.Forever(ctx, retry.Backoff{Base: 500 * time.Millisecond, Max: 30 * time.Second}, w.log,
		"projection worker failed; restarting from its checkpoint", w.runOnce)
}

var errSwitched = errors.New("live version switched")

func (w *Worker) runOnce(ctx context.Context) error {
	cp, err := w.checkStream(ctx)
	if errors.Is(err, ErrStale) {
		// Applying the new stream's events on top of the old one's would
		// mix two histories: stay stale until a rebuild replaces the version.
		w.setStale(err)
		w.waitConsistent(ctx)
		return nil
	}
	if err != nil {
		return err
	}
	w.setStale(nil)
	src, err := openSource(ctx, w.js, w.p.Name(), w.p.Subjects(), cp.LastSeq+1, 2*w.cfg.BatchSize)
	if err != nil {
		return err
	}
	defer src.close()
	w.running.Store(true)
	defer w.running.Store(false)
	last := cp.LastSeq
	for ctx.Err() == nil {
		evs, pending, err := src.next(ctx, w.cfg.BatchSize, w.cfg.IdleAdvance, w.cfg.Linger)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			if ctx.Err() != nil {
				return nil
			}
			head, ok, err := caughtUpTo(ctx, w.js, src)
			if err != nil {
				return err
			}
			if ok && head < last {
				// The stream went backwards under us: restart, and let the
				// check at start say why.
				return fmt.Errorf("EVENTS stream's head %d is behind the checkpoint %d", head, last)
			}
			if !ok || head == last {
				continue
			}
			if err := w.advance(ctx, cp.Version, head); err != nil {
				if errors.Is(err, errSwitched) {
					return nil
				}
				return err
			}
			last = head
			continue
		}
		prepare(w.p, evs)
		upTo := evs[len(evs)-1].Seq
		if err := w.apply(ctx, cp.Version, evs, upTo, pending); err != nil {
			if errors.Is(err, errSwitched) {
				w.log.Info("live version switched; following it")
				return nil
			}
			return err
		}
		last = upTo
		metrics.SetProjectionLag(w.p.Name(), evs[len(evs)-1].Time)
	}
	return nil
}

// apply runs one batch in one transaction under the live checkpoint lock.
func (w *Worker) apply(ctx context.Context, version int, evs []Event, upTo, pending uint64) (err error) {
	if w.cfg.Tracer != nil {
		tps := make([]string, 0, len(evs))
		for _, e := range evs {
			if e.Traceparent != "" {
				tps = append(tps, e.Traceparent)
			}
		}
		var span trace.Span
		ctx, span = tracing.StartBatch(ctx, w.cfg.Tracer, "project "+w.p.Name(), tps)
		defer func() { tracing.End(span, err) }()
	}
	return pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		// The batch's commit does not wait for its WAL flush: the
		// checkpoint commits with the rows, and the stream (not an ack)
		// is the source, so a commit lost in a PostgreSQL crash loses
		// both together and the worker applies the batch again from the
		// older checkpoint. Saga state (the runner's inbox and outbox,
		// acked after commit) keeps synchronous commits.
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		cp, err := lockLive(ctx, tx, w.p.Name())
		if errors.Is(err, ErrNotLive) {
			// We waited on the old live row while a rebuild switched: the
			// row we locked is no longer live. Follow the new version.
			return errSwitched
		}
		if err != nil {
			return err
		}
		if cp.Version != version {
			return errSwitched
		}
		_, err = applyBatch(ctx, tx, w.p, version, cp.LastSeq, evs, upTo, pending)
		return err
	})
}

// advance moves the checkpoint to head when nothing of the projection's
// subjects lies between it and head.
func (w *Worker) advance(ctx context.Context, version int, head uint64) error {
	return pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		cp, err := lockLive(ctx, tx, w.p.Name())
		if errors.Is(err, ErrNotLive) {
			return errSwitched
		}
		if err != nil {
			return err
		}
		if cp.Version != version {
			return errSwitched
		}
		_, err = applyBatch(ctx, tx, w.p, version, cp.LastSeq, nil, head, 0)
		return err
	})
}

// caughtUpTo reports the stream's head when every message of the source's
// subjects up to it has been received (and, the caller guarantees,
// applied): the head is read first, then the consumer's info must show
// nothing pending and, as its last delivery, the last message received
// (the server's delivered stream sequence runs ahead over messages of
// other subjects, so only the consumer sequence tells what is in flight).
func caughtUpTo(ctx context.Context, js jetstream.JetStream, src *source) (uint64, bool, error) {
	st, err := js.Stream(ctx, broker.StreamEvents)
	if err != nil {
		return 0, false, fmt.Errorf("stream info: %w", err)
	}
	head := st.CachedInfo().State.LastSeq
	ci, err := src.cons.Info(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("consumer info: %w", err)
	}
	if ci.NumPending > 0 || ci.NumAckPending > 0 {
		return 0, false, nil
	}
	switch {
	case src.lastConsumer == "" && ci.Delivered.Consumer == 0:
	case src.lastConsumer == ci.Name && src.lastConsumerSeq == ci.Delivered.Consumer:
	default:
		return 0, false, nil
	}
	return head, true, nil
}
