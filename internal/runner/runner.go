// Package runner turns JetStream's at-least-once delivery into
// exactly-once effects in PostgreSQL.
//
// The protocol, per batch of messages from one durable pull consumer:
//
//  1. open one transaction; for each message, under a savepoint, insert
//     (consumer, event id) into core.inbox — a conflict means the message
//     was applied before, so it is skipped;
//  2. otherwise call the handler with the transaction; the events it
//     returns go into core.outbox in the same transaction;
//  3. commit, then ack. A message whose handler fails rolls back only its
//     savepoint and is nak'ed with backoff; after MaxDeliver attempts, or at
//     once for invalid input and permanent errors, it is dead-lettered.
//
// A crash before commit loses nothing (redelivery); a crash after commit and
// before ack redelivers a message whose inbox row makes it a no-op. Handlers
// never commit, publish or ack.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/cenats"
	"github.com/tradewind/tradewind/internal/outbox"
	"github.com/tradewind/tradewind/internal/pgtx"
	"github.com/tradewind/tradewind/internal/retry"
	"github.com/tradewind/tradewind/internal/tracing"
	"github.com/tradewind/tradewind/schemas"
)

// Handler reacts to one message inside the batch's transaction and returns
// the events to emit. It must not commit, publish or ack; whatever it writes
// is rolled back if it returns an error.
type Handler interface {
	Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error)
}

// BatchHandler is a Handler with a set-based path: HandleBatch handles
// every fresh message of a batch at once (one statement per table rather
// than per message) and returns what each emits, out[i] for msgs[i]. Any
// error sends the whole batch to the per-message savepoint path (Handle),
// which finds the failing message, so HandleBatch need not say which one
// failed. It must take its row locks in a stable order (e.g. by key) so
// that two batches cannot deadlock.
type BatchHandler interface {
	Handler
	HandleBatch(ctx context.Context, tx pgx.Tx, msgs []Msg) ([][]*event.Event, error)
}

// Msg is one message of a batch: its event, and the context a handler
// of it alone would get (its delivery, logger and trace span).
type Msg struct {
	Ctx   context.Context
	Event *event.Event
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	return f(ctx, tx, ev)
}

// Config describes one consumer.
type Config struct {
	// Name is the durable consumer's name and the inbox key. Renaming it
	// re-consumes the whole stream (the new name has no inbox rows).
	Name           string
	Stream         string
	FilterSubjects []string
	// BatchSize bounds one transaction and the client's pre-buffer, so no
	// message waits in the client long enough to pass its AckWait.
	BatchSize int
	// Linger is how long to wait for more messages once one arrived, when
	// the previous batch held more than one (under load); a lone message
	// after a lone message is handled at once.
	Linger     time.Duration
	MaxDeliver int
	AckWait    time.Duration
	// Backoff gives the nak delay before attempt n+1 (n = attempts so far).
	Backoff func(attempt int) time.Duration
	// MaxPayload bounds a message's data.
	MaxPayload int
	// Upcast, when set, rewrites old versions of a message to the shape the
	// handler expects, after validation against the original's schema.
	Upcast func(*event.Event) (*event.Event, error)
	// Trusted skips the JSON Schema check of each message: set it only for
	// streams that nothing but Tradewind's outbox writes (EVENTS, under the
	// NATS permissions of docs/security.md), whose events were validated
	// once when they entered the outbox (outbox.Add). Commands from
	// producers are never trusted.
	Trusted bool
	// Idempotent says the handler itself makes a redelivered message a
	// no-op (the notifier: a notification's id derives from its cause's and
	// is unique), so the runner writes no inbox row for it. Copies of one
	// message within a batch are still handled once.
	Idempotent bool
}

func (c *Config) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.Linger <= 0 {
		c.Linger = 2 * time.Millisecond
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 5
	}
	if c.AckWait <= 0 {
		c.AckWait = 10 * time.Second
	}
	if c.Backoff == nil {
		c.Backoff = ExponentialBackoff(500*time.Millisecond, time.Minute)
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = cenats.DefaultMaxPayload
	}
}

// ExponentialBackoff doubles from base, capped at max, with full jitter
// (retry.Backoff).
func ExponentialBackoff(base, max time.Duration) func(int) time.Duration {
	return retry.Backoff{Base: base, Max: max}.Delay
}

// Option configures a Runner.
type Option func(*Runner)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(r *Runner) { r.log = l } }

// WithPublisher publishes the outbox rows of every batch straight after
// its commit (see outbox.Publisher); without it the relay publishes them.
func WithPublisher(p *outbox.Publisher) Option { return func(r *Runner) { r.pub = p } }

// WithCommitted runs f after every commit with the events the batch
// emitted (they are in the outbox, durably). It must be cheap: it runs on
// the runner's goroutine. Metrics that must not count rolled-back work
// (saga outcomes) hang here.
func WithCommitted(f func(emitted []*event.Event)) Option { return func(r *Runner) { r.committed = f } }

// WithObserver reports measurements (batch sizes, processing times,
// results, redeliveries) to o; internal/metrics.ConsumerObserver is the
// Prometheus implementation.
func WithObserver(o Observer) Option { return func(r *Runner) { r.obs = o } }

// Observer receives a runner's measurements. It is called on the hot path,
// from the runner's goroutine: implementations must be cheap, must not
// block and must be safe for concurrent use (runners share one).
type Observer interface {
	// ObserveBatch is called once per batch, after every message of it is
	// settled, with the time since the batch was fetched.
	ObserveBatch(consumer string, size int, elapsed time.Duration)
	// ObserveMessage is called once per settled message with its result
	// (ResultApplied, ResultDuplicate, ResultRetried, ResultDeadLettered),
	// its delivery attempt (1 = first delivery) and the time spent in the
	// inbox check, handler and outbox write (0 when they did not run).
	ObserveMessage(consumer, result string, attempt uint64, handled time.Duration)
}

// Results reported to an Observer.
const (
	ResultApplied      = "applied"
	ResultDuplicate    = "duplicate"
	ResultRetried      = "retried"
	ResultDeadLettered = "dead_lettered"
)

// WithBeforeAck is a test hook run between commit and ack; when it returns
// an error the runner stops without acking, as a crash would.
func WithBeforeAck(f func() error) Option { return func(r *Runner) { r.beforeAck = f } }

// Runner consumes one durable consumer.
type Runner struct {
	cfg       Config
	js        jetstream.JetStream
	pool      *pgxpool.Pool
	h         Handler
	log       *slog.Logger
	pub       *outbox.Publisher // nil: the relay publishes
	committed func([]*event.Event)
	beforeAck func() error
	obs       Observer
	tracer    trace.Tracer // nil: no spans (see WithTracer)

	running atomic.Bool
	stats   Stats
}

// Stats are the runner's counters since start.
type Stats struct {
	Applied, Duplicates, Retried, DeadLettered, Batches atomic.Int64
}

// New validates the configuration and wires a runner.
func New(cfg Config, js jetstream.JetStream, pool *pgxpool.Pool, h Handler, opts ...Option) (*Runner, error) {
	var errs []error
	if cfg.Name == "" {
		errs = append(errs, errors.New("name is required"))
	}
	if cfg.Stream == "" || len(cfg.FilterSubjects) == 0 {
		errs = append(errs, errors.New("stream and filter subjects are required"))
	}
	if js == nil || pool == nil || h == nil {
		errs = append(errs, errors.New("JetStream, pool and handler are required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("runner %q: %w", cfg.Name, err)
	}
	cfg.setDefaults()
	r := &Runner{cfg: cfg, js: js, pool: pool, h: h, log: slog.Default()}
	for _, o := range opts {
		o(r)
	}
	r.log = r.log.With("consumer", cfg.Name)
	return r, nil
}

// Name is the consumer's name.
func (r *Runner) Name() string { return r.cfg.Name }

// Running reports whether the consume loop is active (for /readyz).
func (r *Runner) Running() bool { return r.running.Load() }

// Stats returns the live counters.
func (r *Runner) Stats() *Stats { return &r.stats }

// Spec is the durable consumer the runner needs.
func (r *Runner) Spec() broker.ConsumerSpec {
	return broker.ConsumerSpec{
		Name:           r.cfg.Name,
		Stream:         r.cfg.Stream,
		FilterSubjects: r.cfg.FilterSubjects,
		MaxDeliver:     r.cfg.MaxDeliver,
		AckWait:        r.cfg.AckWait,
		MaxAckPending:  max(1000, 4*r.cfg.BatchSize),
	}
}

// Run creates or updates the durable consumer and processes batches until
// ctx ends. Transient failures (database or broker down) are retried; Run
// returns only when ctx ends or a WithBeforeAck hook fails.
func (r *Runner) Run(ctx context.Context) error {
	var cons jetstream.Consumer
	if err := retry.Until(ctx, retry.Backoff{Base: time.Second, Max: 30 * time.Second}, r.log, "cannot create consumer; retrying",
		func(ctx context.Context) (err error) {
			cons, err = broker.EnsureConsumer(ctx, r.js, r.Spec())
			return err
		}); err != nil {
		return nil // ctx ended
	}
	return retry.Forever(ctx, retry.Backoff{Base: 500 * time.Millisecond, Max: 30 * time.Second}, r.log, "consume loop failed; restarting",
		func(ctx context.Context) error {
			err := r.consume(ctx, cons)
			if errors.Is(err, errStop) {
				return retry.Permanent(err)
			}
			return err
		})
}

var errStop = errors.New("runner stopped by hook")

// bufferedOnly is the wait for a next message that takes what the client
// has already pulled (NextMaxWait needs a positive duration).
const bufferedOnly = 50 * time.Microsecond

func (r *Runner) consume(ctx context.Context, cons jetstream.Consumer) error {
	it, err := cons.Messages(
		jetstream.PullMaxMessages(r.cfg.BatchSize),
		jetstream.PullExpiry(5*time.Second),
	)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	defer it.Stop()
	r.running.Store(true)
	defer r.running.Store(false)
	batch := make([]jetstream.Msg, 0, r.cfg.BatchSize)
	last := 0 // size of the previous batch
	for ctx.Err() == nil {
		batch = batch[:0]
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("next message: %w", err)
		}
		batch = append(batch, m)
		// Linger only under load: after a lone message, take only what the
		// client already holds, so an idle system adds no wait to a hop.
		linger := r.cfg.Linger
		if last <= 1 {
			linger = bufferedOnly
		}
		for len(batch) < r.cfg.BatchSize {
			m, err := it.Next(jetstream.NextMaxWait(linger))
			if err != nil {
				break
			}
			batch = append(batch, m)
		}
		last = len(batch)
		if err := r.process(ctx, batch); err != nil {
			if errors.Is(err, errStop) {
				return err
			}
			r.log.Warn("batch failed; its messages will be redelivered", "size", len(batch), "err", err)
			retry.Sleep(ctx, 250*time.Millisecond)
		}
	}
	return nil
}

type outcome int

const (
	pending    outcome = iota
	ack                // applied, or a duplicate
	nak                // retry after delay
	deadLetter         // give up: publish to DLQ, then terminate
)

type item struct {
	msg     jetstream.Msg
	meta    *jetstream.MsgMetadata
	ev      *event.Event
	outcome outcome
	delay   time.Duration
	reason  error
	dup     bool           // acked because the inbox had it
	emitted []*event.Event // what the handler emitted (committed with the batch)
	handled time.Duration  // time in applyOne
	log     *slog.Logger   // built on first use by logFor
}

// logFor returns the message's logger: every line carries the event id,
// type, correlation id and trace id (when the message decoded), so one
// grep follows a message and its saga. Payloads are never logged.
func (r *Runner) logFor(it *item) *slog.Logger {
	if it.log != nil {
		return it.log
	}
	attrs := []any{"subject", it.msg.Subject()}
	if it.meta != nil {
		attrs = append(attrs, "stream_seq", it.meta.Sequence.Stream, "attempt", it.meta.NumDelivered)
	}
	if it.ev != nil {
		attrs = append(attrs, "event_id", it.ev.ID(), "type", it.ev.Type(),
			"correlation_id", events.StringExt(it.ev, events.ExtCorrelationID),
			"trace_id", TraceID(events.StringExt(it.ev, events.ExtTraceparent)))
	} else if h := it.msg.Headers(); h != nil {
		// Undecodable: log what the headers say, unvalidated.
		attrs = append(attrs, "event_id", h.Get("ce-id"), "type", h.Get("ce-type"))
	}
	it.log = r.log.With(attrs...)
	return it.log
}

// TraceID extracts the trace id from a W3C traceparent
// ("00-<trace id>-<span id>-<flags>"); "" when it is malformed.
func TraceID(traceparent string) string {
	if len(traceparent) != 55 || traceparent[2] != '-' || traceparent[35] != '-' || traceparent[52] != '-' {
		return ""
	}
	return traceparent[3:35]
}

type loggerKey struct{}

// LoggerFrom returns the logger of the message being handled (with its
// event id, type, correlation id and trace id), or slog.Default() outside
// a handler.
func LoggerFrom(ctx context.Context) *slog.Logger {
	if f, ok := ctx.Value(loggerKey{}).(func() *slog.Logger); ok {
		return f()
	}
	return slog.Default()
}

// Delivery describes the message being handled; handlers read it with
// DeliveryFrom (projections use the stream sequence as their position).
type Delivery struct {
	Consumer     string
	Subject      string
	StreamSeq    uint64
	NumDelivered uint64
}

type deliveryKey struct{}

// DeliveryFrom returns the delivery of the message being handled.
func DeliveryFrom(ctx context.Context) (Delivery, bool) {
	d, ok := ctx.Value(deliveryKey{}).(Delivery)
	return d, ok
}

func (r *Runner) decode(it *item) {
	meta, err := it.msg.Metadata()
	if err != nil {
		it.outcome, it.reason = deadLetter, fmt.Errorf("read metadata: %w", err)
		return
	}
	it.meta = meta
	ev, err := cenats.DecodeLimit(it.msg.Headers(), it.msg.Data(), r.cfg.MaxPayload)
	if err == nil {
		err = subjectMatches(it.msg.Subject(), ev)
	}
	if err == nil && !r.cfg.Trusted {
		err = schemas.ValidateEvent(ev)
	}
	if err == nil && r.cfg.Upcast != nil {
		ev, err = r.cfg.Upcast(ev)
	}
	if err != nil {
		it.outcome, it.reason = deadLetter, Invalid(err)
		return
	}
	it.ev = ev
}

// subjectMatches refuses a message published on a subject other than its
// type's (and aggregate's): NATS permissions say who may publish on which
// subject, so a type smuggled onto another subject would bypass them.
func subjectMatches(subject string, ev *event.Event) error {
	want, err := events.NATSSubject(ev)
	if err != nil {
		return err
	}
	if subject != want {
		return fmt.Errorf("event %s of type %s arrived on subject %s, its type belongs on %s", ev.ID(), ev.Type(), subject, want)
	}
	return nil
}

func (r *Runner) process(ctx context.Context, msgs []jetstream.Msg) error {
	// A batch that started finishes even if shutdown begins meanwhile: its
	// transaction commits or rolls back, never dangles half-way.
	ctx = context.WithoutCancel(ctx)
	// While the batch is being handled its messages are kept "in progress",
	// so AckWait can stay short (a delivery lost with a broker node comes
	// back quickly) without a slow batch being redelivered under our feet.
	stopHeartbeat := r.heartbeat(msgs)
	defer stopHeartbeat()
	start := time.Now()
	r.stats.Batches.Add(1)
	items := make([]item, len(msgs))
	for i, m := range msgs {
		items[i].msg = m
		r.decode(&items[i])
	}
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
// the handlers run, one statement writes every outbox row. A savepoint per
// message costs round trips and, past 64 in one transaction, overflows
// PostgreSQL's per-backend subtransaction cache, which slows every other
// session's snapshots. Only when a handler fails is the fast transaction
// rolled back and the batch re-run with a savepoint per message, so that
// just the failing message (and its aggregate's later messages) are held
// back. Handlers may therefore run twice for one delivery; they only touch
// the transaction (and idempotent external calls), so that is safe.
func (r *Runner) apply(ctx context.Context, items []item) error {
	err := r.applyFast(ctx, items)
	if !errors.Is(err, errHandlerFailed) {
		return err
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

// handlerContext carries the delivery and the message's logger.
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

func (r *Runner) handlerContext(ctx context.Context, it *item) context.Context {
	ctx = context.WithValue(ctx, deliveryKey{}, Delivery{
		Consumer: r.cfg.Name, Subject: it.msg.Subject(),
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

// applySafe applies the batch with a savepoint per message.
func (r *Runner) applySafe(ctx context.Context, items []item) error {
	return r.pub.Transact(ctx, r.pool, func(ctx context.Context, tx pgx.Tx, written *outbox.Pending) error {
		return r.handleSafe(ctx, tx, items, written)
	})
}

// handleSafe runs the batch's handlers in tx, each message under its own
// savepoint (applyOne).
func (r *Runner) handleSafe(ctx context.Context, tx pgx.Tx, items []item, written *outbox.Pending) error {
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

// judge decides between retry and dead letter for a failed message.
func (r *Runner) judge(it *item, err error) {
	attempt := int(it.meta.NumDelivered)
	var re *retryError
	switch {
	case IsPermanent(err):
		it.outcome, it.reason = deadLetter, err
	case errors.As(err, &re):
		// The handler asked to wait (e.g. a circuit breaker is open):
		// a delayed redelivery that does not fail the message.
		it.outcome, it.delay, it.reason = nak, re.after, err
	case attempt >= r.cfg.MaxDeliver:
		it.outcome, it.reason = deadLetter, fmt.Errorf("gave up after %d attempts: %w", attempt, err)
	default:
		it.outcome, it.delay, it.reason = nak, r.cfg.Backoff(attempt), err
	}
	if it.outcome == nak {
		r.logFor(it).Warn("message failed; will retry", "retry_in", it.delay, "err", err)
	}
}

// settle acks, naks or dead-letters every message of the batch.
func (r *Runner) settle(ctx context.Context, items []item) {
	for i := range items {
		it := &items[i]
		switch it.outcome {
		case ack:
			_ = it.msg.Ack()
		case nak:
			r.stats.Retried.Add(1)
			_ = it.msg.NakWithDelay(it.delay)
		case deadLetter:
			if err := r.deadLetter(ctx, it); err != nil {
				r.logFor(it).Error("cannot dead-letter; message will be redelivered", "err", err)
				it.outcome = nak
				_ = it.msg.NakWithDelay(time.Second)
				continue
			}
			r.stats.DeadLettered.Add(1)
			_ = it.msg.TermWithReason(truncate(it.reason.Error(), 200))
		}
	}
}

// Dead-letter headers, beside the original message's headers.
const (
	HdrDLQConsumer = "Tradewind-Dlq-Consumer"
	HdrDLQSubject  = "Tradewind-Dlq-Subject"
	HdrDLQStream   = "Tradewind-Dlq-Stream"
	HdrDLQSeq      = "Tradewind-Dlq-Stream-Seq"
	HdrDLQAttempts = "Tradewind-Dlq-Attempts"
	HdrDLQReason   = "Tradewind-Dlq-Reason"
	HdrDLQTime     = "Tradewind-Dlq-Time"
)

// DeadLetterSubject is where a consumer's dead letters go.
func DeadLetterSubject(consumer, originalSubject string) string {
	return events.DeadLetterPrefix + consumer + "." + originalSubject
}

func (r *Runner) deadLetter(ctx context.Context, it *item) error {
	m := nats.NewMsg(DeadLetterSubject(r.cfg.Name, it.msg.Subject()))
	for k, v := range it.msg.Headers() {
		if k == nats.MsgIdHdr || len(k) > 4 && k[:4] == "Nats" {
			continue
		}
		m.Header[k] = v
	}
	m.Data = it.msg.Data()
	var seq, attempts uint64
	if it.meta != nil {
		seq, attempts = it.meta.Sequence.Stream, it.meta.NumDelivered
	}
	m.Header.Set(HdrDLQConsumer, r.cfg.Name)
	m.Header.Set(HdrDLQSubject, it.msg.Subject())
	m.Header.Set(HdrDLQStream, r.cfg.Stream)
	m.Header.Set(HdrDLQSeq, strconv.FormatUint(seq, 10))
	m.Header.Set(HdrDLQAttempts, strconv.FormatUint(attempts, 10))
	m.Header.Set(HdrDLQReason, truncate(it.reason.Error(), 2000))
	m.Header.Set(HdrDLQTime, time.Now().UTC().Format(time.RFC3339Nano))
	// One dead letter per (consumer, stream position), even if this is redone.
	m.Header.Set(nats.MsgIdHdr, fmt.Sprintf("dlq:%s:%s:%d", r.cfg.Name, r.cfg.Stream, seq))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := r.js.PublishMsg(pctx, m); err != nil {
		return fmt.Errorf("publish dead letter of seq %d: %w", seq, err)
	}
	r.logFor(it).Error("message dead-lettered", "attempts", attempts, "reason", it.reason.Error())
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
