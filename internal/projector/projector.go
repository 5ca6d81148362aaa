// Package projector builds read models from the EVENTS stream.
//
// The protocol, per projection:
//
//  1. consume the projection's subjects in stream order (an ordered
//     consumer starting after the checkpoint; the checkpoint in PostgreSQL
//     is the only cursor, so there is no second one to disagree with it);
//  2. per batch, one transaction: lock the projection's live checkpoint
//     row, drop every event whose stream sequence is <= last_seq (already
//     applied: a replay, a redelivery, a second instance), apply the rest
//     with set-based writes, and advance last_seq to the batch's last
//     sequence;
//  3. commit. A crash before commit re-reads the batch; after commit, the
//     checkpoint makes it a no-op.
//
// The live path runs the protocol for several projections at once (see
// Group): one consumer for the union of their subjects from the lowest
// checkpoint, and per batch one transaction in which each projection gets
// its own events above its own checkpoint.
//
// Each read model lives in versioned tables proj.<table>_v<N> created
// LIKE the template proj.<table>_tmpl (whose shape migrations own), and
// readers query the view public.<table> over the live version. A rebuild
// fills version N+1 from the start of the stream and switches the views in
// one transaction (see Rebuild).
package projector

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tradewind/tradewind/internal/pgtx"
)

// Projection is one read model. Apply must be deterministic: given the
// same events in the same order it writes the same rows, so that a rebuild
// equals the live version. It reads and writes only its own tables (t),
// never another projection's, since versions are rebuilt independently.
type Projection interface {
	// Name identifies the projection in projection_checkpoints.
	Name() string
	// Tables are the logical names of the projection's tables; each has a
	// template proj.<name>_tmpl and a view public.<name>.
	Tables() []string
	// Subjects are the EVENTS subject filters the projection consumes.
	Subjects() []string
	// Apply writes the effects of a batch of new events (ascending stream
	// sequence, all above the checkpoint) inside tx. A batch may hold
	// several events of one aggregate. An event that cannot be understood
	// is passed to b.Reject, not returned as an error: an error fails the
	// whole batch, which is retried forever.
	Apply(ctx context.Context, tx pgx.Tx, b *Batch) error
}

// Event is a message from the EVENTS stream as projections see it: the
// CloudEvent attributes they use and the raw JSON data. Decoding the data
// is the projection's job (it knows the type).
type Event struct {
	Seq     uint64    // stream sequence: the position
	ID      string    // ce-id
	Type    string    // ce-type
	Subject string    // ce-subject (aggregate id)
	Time    time.Time // ce-time
	Data    []byte
	// Traceparent is the ce-traceparent extension (W3C), "" when absent.
	Traceparent string
	// Prepared is what the projection's Prepare made of the event, if it
	// implements Preparer (nil otherwise).
	Prepared any
	// natsSubject is the message's subject on EVENTS: a group routes the
	// event to the projections whose filters match it.
	natsSubject string
}

// Preparer is implemented by projections that can do part of their work
// per event outside the transaction (typically decoding the JSON data):
// a rebuild calls Prepare for the next batch while the previous one is
// being written, so decoding overlaps with PostgreSQL's work. Prepare must
// not touch the database and must leave its result in ev.Prepared.
type Preparer interface {
	Prepare(ev *Event)
}

func prepare(p Projection, evs []Event) {
	if pr, ok := p.(Preparer); ok {
		for i := range evs {
			pr.Prepare(&evs[i])
		}
	}
}

// Batch is what Apply receives.
type Batch struct {
	Events  []Event
	version int
	rejects []reject
}

type reject struct {
	ev     *Event
	reason string
}

// Version is the version being written (the live one, or the one a
// rebuild is filling).
func (b *Batch) Version() int { return b.version }

// Table returns the sanitised physical name of the logical table name in
// the version being written, e.g. proj."orders_v2".
func (b *Batch) Table(name string) string { return PhysicalTable(name, b.version) }

// Reject records that ev was skipped because of err (for instance data
// that does not decode). Rejected events land in public.projection_rejects
// in the batch's transaction; a rebuild rejects the same ones.
func (b *Batch) Reject(ev *Event, err error) {
	b.rejects = append(b.rejects, reject{ev: ev, reason: err.Error()})
}

// PhysicalTable is the sanitised name of table name at version v.
func PhysicalTable(name string, v int) string {
	return pgx.Identifier{"proj", name + "_v" + strconv.Itoa(v)}.Sanitize()
}

func templateTable(name string) string { return pgx.Identifier{"proj", name + "_tmpl"}.Sanitize() }
func viewName(name string) string      { return pgx.Identifier{"public", name}.Sanitize() }

// Sentinel errors.
var (
	// ErrUnknownProjection: no projection of that name is registered.
	ErrUnknownProjection = errors.New("unknown projection")
	// ErrNotLive: the projection has no live version (migrations missing).
	ErrNotLive = errors.New("projection has no live version")
	// ErrBehind: WaitFor's timeout passed before the position was reached.
	ErrBehind = errors.New("projection has not reached the position yet")
	// ErrRebuildRunning: another rebuild of the projection holds the lock.
	ErrRebuildRunning = errors.New("a rebuild of this projection is already running")
	// ErrRejected: the projection could not understand the event.
	ErrRejected = errors.New("event rejected")
)

// decode turns a JetStream message into an Event without building a full
// CloudEvent: projections only need the attributes above. Messages on
// EVENTS were validated against their schema when published.
func decodeMsg(m jetstream.Msg, seq uint64) Event {
	h := m.Headers()
	ev := Event{Seq: seq, ID: h.Get("ce-id"), Type: h.Get("ce-type"), Subject: h.Get("ce-subject"), Data: m.Data(),
		Traceparent: h.Get("ce-traceparent"), natsSubject: m.Subject()}
	if ts := h.Get("ce-time"); ts != "" {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			// At PostgreSQL's precision (pgx truncates to microseconds), so
			// a value computed from an event time in memory equals one
			// computed from the same time read back from a table: a replay
			// must reproduce the live rows exactly.
			ev.Time = t.UTC().Truncate(time.Microsecond)
		}
	}
	return ev
}

// applyBatch applies events (those above last_seq) with version v's tables
// in tx, records rejects and advances the checkpoint to upTo (the last
// sequence consumed, which may exceed the last event's when the tail of a
// batch was skipped). It returns how many events were applied.
func applyBatch(ctx context.Context, tx pgx.Tx, p Projection, v int, lastSeq uint64, evs []Event, upTo uint64, lag uint64) (int, error) {
	i := 0
	for i < len(evs) && evs[i].Seq <= lastSeq {
		i++
	}
	b := &Batch{Events: evs[i:], version: v}
	if len(b.Events) > 0 {
		if err := p.Apply(ctx, tx, b); err != nil {
			return 0, fmt.Errorf("projection %s v%d: apply %d events from seq %d: %w", p.Name(), v, len(b.Events), b.Events[0].Seq, err)
		}
	}
	// With a transaction tail (the live group's), the writes below are
	// queued on it and sent with the other members' before commit.
	tail := pgtx.From(ctx)
	exec := func(what, sql string, args ...any) error {
		if tail != nil {
			tail.Queue(sql, args...)
			return nil
		}
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			return fmt.Errorf("projection %s: %s: %w", p.Name(), what, err)
		}
		return nil
	}
	for _, r := range b.rejects {
		if err := exec(fmt.Sprintf("record reject of seq %d", r.ev.Seq), `
			INSERT INTO public.projection_rejects (name, version, seq, event_id, event_type, reason)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
			p.Name(), v, int64(r.ev.Seq), r.ev.ID, r.ev.Type, r.reason); err != nil {
			return 0, err
		}
	}
	if upTo > lastSeq {
		// Only the live version's progress is announced.
		if err := exec(fmt.Sprintf("advance checkpoint to %d", upTo), `
			WITH cp AS (
				UPDATE public.projection_checkpoints SET last_seq = $3, lag = $4, updated_at = now()
				WHERE name = $1 AND version = $2 RETURNING live)
			SELECT pg_notify('tradewind_projection', $1) FROM cp WHERE live`,
			p.Name(), v, int64(upTo), int64(lag)); err != nil {
			return 0, err
		}
	}
	return len(b.Events), nil
}

// ApplyOne applies a single event to the live version of p inside tx
// without touching the checkpoint: for running a projection under the
// consumer runner, whose inbox then provides the exactly-once guarantee.
// A rejected event is returned as an error wrapping ErrRejected.
func ApplyOne(ctx context.Context, tx pgx.Tx, p Projection, ev Event) error {
	cp, err := LiveCheckpoint(ctx, tx, p.Name())
	if err != nil {
		return err
	}
	b := &Batch{Events: []Event{ev}, version: cp.Version}
	if err := p.Apply(ctx, tx, b); err != nil {
		return err
	}
	if len(b.rejects) > 0 {
		return fmt.Errorf("projection %s, event %s: %w: %s", p.Name(), ev.ID, ErrRejected, b.rejects[0].reason)
	}
	return nil
}
