// The apply phase: one transaction per batch, set-based when every
// handler succeeds, a savepoint per message when one fails.

package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/outbox"
	"github.com/tradewind/tradewind/internal/pgtx"
	"github.com/tradewind/tradewind/internal/tracing"
)

func (r *Runner) process(ctx context.Context, msgs []jetstream.Msg) error {
	// A batch that started finishes even if shutdown begins meanwhile: its
	// transaction commits or rolls back, never dangles half-way.
	ctx = context.WithoutCancel(ctx)
	start := time.Now()
	r.stats.Batches.Add(1)
	items := make([]item, len(msgs))
	for i, m := range msgs {
		items[i].msg = m
		r.decode(&items[i])
	}
	if wait := r.holdFor(); wait > 0 {
		r.hold(items, wait)
		r.settle(ctx, items)
		r.observe(items, start)
		return nil
	}
	// While the batch is being handled its messages are kept "in progress",
	// so AckWait can stay short (a delivery lost with a broker node comes
	// back quickly) without a slow batch being redelivered under our feet.
	stopHeartbeat := r.heartbeat(msgs)
	defer stopHeartbeat()
	err := r.apply(ctx, items)
	stopHeartbeat() // before any ack or nak: a late InProgress would reset a nak's delay
	if err != nil {
		// Nothing of the batch committed (or we cannot know): every message
		// not already judged comes back; the inbox makes that safe.
		for i := range items {
			if items[i].outcome != deadLetter {
				items[i].outcome, items[i].delay = nak, time.Second
			}
		}
		r.settle(ctx, items)
		r.observe(items, start)
		return err
	}
	if r.committed != nil {
		var emitted []*event.Event
		for i := range items {
			if it := &items[i]; it.outcome == ack && !it.dup {
				emitted = append(emitted, it.emitted...)
			}
		}
		if len(emitted) > 0 {
			r.committed(emitted)
		}
	}
	if r.beforeAck != nil {
		if err := r.beforeAck(); err != nil {
			return fmt.Errorf("%w: %w", errStop, err)
		}
	}
	r.settle(ctx, items)
	r.observe(items, start)
	return nil
}

// errHeld is the reason of a message held back by Config.Hold.
var errHeld = errors.New("held: a dependency of the handler is unavailable")

// holdFor is Config.Hold's answer, 0 without one.
func (r *Runner) holdFor() time.Duration {
	if r.cfg.Hold == nil {
		return 0
	}
	return r.cfg.Hold()
}

// hold naks every message of the batch still pending with delay wait,
// untouched: nothing of it reached the database.
func (r *Runner) hold(items []item, wait time.Duration) {
	n := 0
	for i := range items {
		if it := &items[i]; it.outcome == pending {
			it.outcome, it.delay, it.reason = nak, wait, errHeld
			n++
		}
	}
	r.stats.Held.Add(int64(n))
	r.log.Info("batch held: a dependency of the handler is unavailable", "messages", n, "retry_in", wait)
}

// heartbeat sends InProgress for msgs every AckWait/3 until stopped.
func (r *Runner) heartbeat(msgs []jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(r.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-finished }) }
}

// observe reports a settled batch to the observer.
func (r *Runner) observe(items []item, start time.Time) {
	if r.obs == nil {
		return
	}
	for i := range items {
		it := &items[i]
		var attempt uint64
		if it.meta != nil {
			attempt = it.meta.NumDelivered
		}
		result := ResultApplied
		switch {
		case it.outcome == nak:
			result = ResultRetried
		case it.outcome == deadLetter:
			result = ResultDeadLettered
		case it.dup:
			result = ResultDuplicate
		}
		r.obs.ObserveMessage(r.cfg.Name, result, attempt, it.handled)
	}
	r.obs.ObserveBatch(r.cfg.Name, len(items), time.Since(start))
}

// errHandlerFailed ends the fast path: some handler failed.
var errHandlerFailed = errors.New("a handler failed")

// apply runs the batch's handlers in one transaction, commits it and
// publishes what it wrote to the outbox.
//
// The fast path uses no savepoints: one statement records every inbox row,
// the handlers run, and the saga log and outbox rows they queued go in one
// pipelined round trip before commit (pgtx.Tail). A savepoint per
// message costs round trips and, past 64 in one transaction, overflows
// PostgreSQL's per-backend subtransaction cache, which slows every other
// session's snapshots. Only when a handler fails is the fast transaction
// rolled back and the batch re-run with a savepoint per message, so that
// just the failing message (and its aggregate's later messages) are held
// back — unless Config.Hold now says a dependency is down, in which case
// the whole batch waits for it untouched. Handlers may therefore run
// twice for one delivery; they only touch the transaction (and idempotent
// external calls), so that is safe.
func (r *Runner) apply(ctx context.Context, items []item) error {
	err := r.applyFast(ctx, items)
	if !errors.Is(err, errHandlerFailed) {
		return err
	}
	// The failure may be the dependency going down (a breaker's trial
	// failed): message by message each would only meet it again.
	if wait := r.holdFor(); wait > 0 {
		r.hold(items, wait)
		return nil
	}
	r.stats.Fallbacks.Add(1)
	if r.obs != nil {
		r.obs.ObserveFallback(r.cfg.Name)
	}
	return r.applySafe(ctx, items)
}

func (r *Runner) applyFast(ctx context.Context, items []item) error {
	var fresh []string
	err := r.pub.Transact(ctx, r.pool, func(ctx context.Context, tx pgx.Tx, _ *outbox.Pending) (err error) {
		fresh, err = r.handleFast(ctx, tx, items)
		return err
	})
	if err != nil {
		return err
	}
	r.ackFast(items, fresh)
	return nil
}

// handleFast records the batch's new messages in the inbox, runs their
// handlers and writes what they emitted to the outbox, in tx; it returns
// the ids the inbox did not hold yet.
func (r *Runner) handleFast(ctx context.Context, tx pgx.Tx, items []item) ([]string, error) {
	ctx, tail := pgtx.With(ctx)
	var ids, types []string
	var seqs []int64
	for i := range items {
		if it := &items[i]; it.outcome == pending {
			ids = append(ids, it.ev.ID())
			types = append(types, it.ev.Type())
			seqs = append(seqs, int64(it.meta.Sequence.Stream))
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	fresh, err := r.inboxInsert(ctx, tx, ids, types, seqs)
	if err != nil {
		return nil, err
	}
	isNew := make(map[string]bool, len(fresh))
	for _, id := range fresh {
		isNew[id] = true
	}
	var todo []*item
	for i := range items {
		it := &items[i]
		if it.outcome != pending || !isNew[it.ev.ID()] {
			continue
		}
		isNew[it.ev.ID()] = false // a second copy in this batch is a duplicate
		todo = append(todo, it)
	}
	if err := r.lockBatch(ctx, tx, todo); err != nil {
		return nil, errHandlerFailed
	}
	out, herr := r.handleAll(ctx, tx, todo)
	if herr != nil {
		return nil, errHandlerFailed
	}
	if err := outbox.Add(ctx, tx, out...); err != nil {
		return nil, errHandlerFailed
	}
	// The saga log and the outbox rows the handlers queued, in one round
	// trip; their failure is the handlers' (the batch is redone one by one).
	if err := tail.Flush(ctx, tx); err != nil {
		return nil, errHandlerFailed
	}
	return fresh, nil
}

// ackFast judges a committed batch: every pending message is acked,
// counted as applied when its id is in fresh, else as a duplicate.
func (r *Runner) ackFast(items []item, fresh []string) {
	inserted := make(map[string]bool, len(fresh))
	for _, id := range fresh {
		inserted[id] = true
	}
	for i := range items {
		it := &items[i]
		if it.outcome != pending {
			continue
		}
		it.outcome = ack
		if inserted[it.ev.ID()] {
			inserted[it.ev.ID()] = false
			r.stats.Applied.Add(1)
		} else {
			it.dup = true
			r.stats.Duplicates.Add(1)
		}
	}
}

// inboxInsert records the batch's messages in the inbox and returns the
// ids it had not seen (all of them for an Idempotent handler, which keeps
// no inbox).
func (r *Runner) inboxInsert(ctx context.Context, tx pgx.Tx, ids, types []string, seqs []int64) ([]string, error) {
	if r.cfg.Idempotent {
		return ids, nil
	}
	rows, err := tx.Query(ctx, `
		INSERT INTO core.inbox (consumer, event_id, event_type, stream_seq)
		SELECT $1, e, t, s FROM unnest($2::text[], $3::text[], $4::bigint[]) AS u(e, t, s)
		ON CONFLICT DO NOTHING
		RETURNING event_id`, r.cfg.Name, ids, types, seqs)
	if err != nil {
		return nil, fmt.Errorf("inbox insert: %w", err)
	}
	fresh, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("inbox insert: %w", err)
	}
	return fresh, nil
}

// handlerContext carries the delivery and the message's logger.
func (r *Runner) handlerContext(ctx context.Context, it *item) context.Context {
	ctx = context.WithValue(ctx, deliveryKey{}, Delivery{
		Consumer: r.cfg.Name, Subject: it.subject(),
		StreamSeq: it.meta.Sequence.Stream, NumDelivered: it.meta.NumDelivered,
	})
	return context.WithValue(ctx, loggerKey{}, func() *slog.Logger { return r.logFor(it) })
}

// caused links emitted events to the message that caused them; with a
// tracer, the handler's span (in ctx) becomes their trace parent.
func (r *Runner) caused(ctx context.Context, it *item, out []*event.Event) []*event.Event {
	for _, e := range out {
		if events.StringExt(e, events.ExtCausationID) == "" {
			events.CausedBy(it.ev)(e)
		}
	}
	if r.tracer != nil {
		tracing.Stamp(ctx, it.ev, out)
	}
	return out
}

// lockBatch has a BatchLocker handler take the locks its reactions to its
// events will need; nothing for other handlers.
func (r *Runner) lockBatch(ctx context.Context, tx pgx.Tx, its []*item) error {
	bl, ok := r.h.(BatchLocker)
	if !ok || len(its) == 0 {
		return nil
	}
	evs := make([]*event.Event, len(its))
	for i, it := range its {
		evs[i] = it.ev
	}
	if err := bl.LockBatch(ctx, tx, evs); err != nil {
		return fmt.Errorf("%s: lock batch: %w", r.cfg.Name, err)
	}
	return nil
}

// applySafe applies the batch with a savepoint per message.
func (r *Runner) applySafe(ctx context.Context, items []item) error {
	return r.pub.Transact(ctx, r.pool, func(ctx context.Context, tx pgx.Tx, written *outbox.Pending) error {
		return r.handleSafe(ctx, tx, items, written)
	})
}

// handleSafe runs the batch's handlers in tx, each message under its own
// savepoint (applyOne).
func (r *Runner) handleSafe(ctx context.Context, tx pgx.Tx, items []item, written *outbox.Pending) error {
	var all []*item
	for i := range items {
		if items[i].outcome == pending {
			all = append(all, &items[i])
		}
	}
	if err := r.lockBatch(ctx, tx, all); err != nil {
		return err
	}
	parked := map[string]time.Duration{}
	for i := range items {
		it := &items[i]
		if it.outcome != pending {
			continue
		}
		key := events.PartitionKey(it.ev)
		if d, ok := parked[key]; ok && key != "" {
			// An earlier message of this aggregate failed in this batch:
			// this one waits behind it instead of overtaking it.
			it.outcome, it.delay = nak, d
			continue
		}
		if err := r.applyOne(ctx, tx, it, written); err != nil {
			return err
		}
		if it.outcome == nak {
			parked[key] = it.delay
		}
	}
	return nil
}

// applyOne applies one message under a savepoint. A returned error means
// the transaction itself is broken.
//
// Hazard: the outbox rows a rolled-back savepoint wrote stay recorded in
// the batch's Pending (outbox.Collect), so the message is handled under a
// Pending of its own that joins the batch's only when its savepoint is
// released.
func (r *Runner) applyOne(ctx context.Context, tx pgx.Tx, it *item, batch *outbox.Pending) error {
	start := time.Now()
	defer func() { it.handled = time.Since(start) }()
	if _, err := tx.Exec(ctx, "SAVEPOINT msg"); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	fresh, err := r.inboxInsert(ctx, tx, []string{it.ev.ID()}, []string{it.ev.Type()}, []int64{int64(it.meta.Sequence.Stream)})
	if err != nil {
		return err
	}
	if len(fresh) == 0 {
		r.stats.Duplicates.Add(1)
		it.outcome, it.dup = ack, true
		_, err := tx.Exec(ctx, "RELEASE SAVEPOINT msg")
		return err
	}
	ctx, own := outbox.Collect(ctx)
	out, herr := r.handle(ctx, tx, it)
	if herr == nil && len(out) > 0 {
		herr = outbox.Add(ctx, tx, out...)
	}
	if herr != nil {
		if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT msg"); err != nil {
			return fmt.Errorf("rollback to savepoint after %v: %w", herr, err)
		}
		r.judge(it, herr)
		return nil
	}
	if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT msg"); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	batch.Join(own)
	it.outcome = ack
	r.stats.Applied.Add(1)
	return nil
}
