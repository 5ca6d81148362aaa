// Package runner turns JetStream's at-least-once delivery into
// exactly-once effects in PostgreSQL.
//
// The protocol, per batch of messages from one durable pull consumer:
//
//  1. open one transaction; insert (consumer, event id) of every message
//     into core.inbox — a conflict means the message was applied before,
//     so it is skipped (an Idempotent handler keeps no inbox: it makes a
//     redelivery a no-op itself);
//  2. otherwise call the handlers with the transaction (set-based where
//     they can); the events they return go into core.outbox in the same
//     transaction;
//  3. commit, publish the outbox rows, then ack. When a handler fails the
//     transaction is redone with a savepoint per message, so a failing
//     message rolls back only its savepoint and is nak'ed with backoff;
//     after MaxDeliver attempts, or at once for invalid input and permanent
//     errors, it is dead-lettered.
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
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/cenats"
	"github.com/tradewind/tradewind/internal/outbox"
	"github.com/tradewind/tradewind/internal/retry"
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

// BatchLocker is a Handler that takes the row locks its reactions to a
// batch will need up front, in one stable order, at the start of the
// batch's transaction on both paths (before the handlers on the fast
// path, before the first savepoint on the other). Handlers that lock rows
// message after message (the savepoint path) or group after group then
// find them held, so two batches sharing rows cannot deadlock on them.
// evs are the batch's decoded events in stream order (on the savepoint
// path also those the inbox may find applied before: a superset is safe).
type BatchLocker interface {
	Handler
	LockBatch(ctx context.Context, tx pgx.Tx, evs []*event.Event) error
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
	Name string
	// Durable is the JetStream consumer's name when it is not Name: the
	// consumer of one partition (internal/lease), e.g. orders-events-p3,
	// whose messages keep Name's inbox, metrics and dead letters, so that
	// partitioning a consumer re-applies nothing. Empty: Name.
	Durable        string
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
	// Hold, when set, is asked before each batch whether a dependency
	// the handler calls is known to be down (an open circuit breaker):
	// a positive answer naks every message of the batch with that delay
	// before any transaction is opened, so while the dependency is down
	// a redelivery costs the database nothing (instead of the fast path,
	// its rollback and a savepoint per message, each failing the same
	// way). Hazard: messages of the batch that would not have needed the
	// dependency wait too, and JetStream counts these deliveries (size
	// MaxDeliver as RetryAfter says).
	Hold func() time.Duration
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
	// ObserveFallback is called when a batch's fast path failed and the
	// batch is redone with a savepoint per message (a handler failed).
	ObserveFallback(consumer string)
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

// Stats are the runner's counters since start. Retried counts every nak;
// Held the naks of batches held back by Config.Hold (among Retried);
// Fallbacks the batches redone with a savepoint per message because a
// handler failed on the fast path.
type Stats struct {
	Applied, Duplicates, Retried, DeadLettered, Batches atomic.Int64
	Held, Fallbacks                                     atomic.Int64
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
	if cfg.Durable != "" {
		r.log = r.log.With("durable", cfg.Durable)
	}
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
	durable := r.cfg.Durable
	if durable == "" {
		durable = r.cfg.Name
	}
	return broker.ConsumerSpec{
		Name:           durable,
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
