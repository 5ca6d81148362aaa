package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/retry"
)

// ConsumerRef names a durable consumer whose state a Poller reports.
type ConsumerRef struct {
	Stream, Name string
	// DeadLetters is the consumer name its dead letters carry
	// (dlq.<name>.…); empty: Name. A partition's consumer (orders-events-p3)
	// dead-letters under its plan's name (orders-events).
	DeadLetters string
}

func (c ConsumerRef) deadLetters() string {
	if c.DeadLetters != "" {
		return c.DeadLetters
	}
	return c.Name
}

// PollerConfig says what a Poller reads. Each process polls the consumers
// it runs, so every series has an owner; several instances of one role
// report the same values (aggregate with max by consumer).
type PollerConfig struct {
	// Interval between polls (default 5s). Polls never run on the hot path.
	Interval time.Duration
	// JS and Consumers: pending, ack-pending and redelivered per consumer,
	// and the DLQ size per consumer.
	JS        jetstream.JetStream
	Consumers []ConsumerRef
	// DLQStream holds dead letters at dlq.<consumer>.<subject> (default "DLQ").
	DLQStream string
	// Pool, when set, polls the outbox backlog (for processes running the
	// relay).
	Pool *pgxpool.Pool
	Log  *slog.Logger
}

// Poller reads broker and database state into gauges periodically.
type Poller struct {
	cfg PollerConfig
}

// NewPoller validates the configuration: it needs consumers with a
// JetStream context, a pool, or both.
func NewPoller(cfg PollerConfig) (*Poller, error) {
	if len(cfg.Consumers) > 0 && cfg.JS == nil {
		return nil, errors.New("metrics poller: consumers given without JetStream")
	}
	if len(cfg.Consumers) == 0 && cfg.Pool == nil {
		return nil, errors.New("metrics poller: nothing to poll (no consumers, no pool)")
	}
	for _, c := range cfg.Consumers {
		if c.Stream == "" || c.Name == "" {
			return nil, fmt.Errorf("metrics poller: consumer %+v needs a stream and a name", c)
		}
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.DLQStream == "" {
		cfg.DLQStream = "DLQ"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Poller{cfg: cfg}, nil
}

// Name names the poller as a service.
func (p *Poller) Name() string { return "metrics-poller" }

// Run polls at once and then every Interval until ctx ends. Failures are
// counted in PollErrors and logged at debug level; they never stop it.
func (p *Poller) Run(ctx context.Context) error {
	return retry.Every(ctx, p.cfg.Interval, p.cfg.Log, "", func(ctx context.Context) (bool, error) {
		if err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			p.cfg.Log.Debug("metrics poll failed", "err", err)
		}
		return false, nil
	})
}

// Poll runs one round and returns every failure joined.
func (p *Poller) Poll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Interval)
	defer cancel()
	var errs []error
	for _, c := range p.cfg.Consumers {
		if err := p.pollConsumer(ctx, c); err != nil {
			PollErrors.WithLabelValues("consumer").Inc()
			errs = append(errs, err)
		}
	}
	if len(p.cfg.Consumers) > 0 {
		if err := p.pollDLQ(ctx); err != nil {
			PollErrors.WithLabelValues("dlq").Inc()
			errs = append(errs, err)
		}
	}
	if p.cfg.Pool != nil {
		if err := p.pollOutbox(ctx); err != nil {
			PollErrors.WithLabelValues("outbox").Inc()
			errs = append(errs, err)
		}
		if err := p.pollTables(ctx); err != nil {
			PollErrors.WithLabelValues("tables").Inc()
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *Poller) pollConsumer(ctx context.Context, c ConsumerRef) error {
	cons, err := p.cfg.JS.Consumer(ctx, c.Stream, c.Name)
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", c.Name, c.Stream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("consumer %s on %s: info: %w", c.Name, c.Stream, err)
	}
	ConsumerPending.WithLabelValues(c.Name, c.Stream).Set(float64(info.NumPending))
	ConsumerAckPending.WithLabelValues(c.Name, c.Stream).Set(float64(info.NumAckPending))
	ConsumerRedelivered.WithLabelValues(c.Name, c.Stream).Set(float64(info.NumRedelivered))
	return nil
}

// pollDLQ counts dead letters per watched consumer from the DLQ stream's
// per-subject counts (dlq.<consumer>.<original subject>).
func (p *Poller) pollDLQ(ctx context.Context) error {
	st, err := p.cfg.JS.Stream(ctx, p.cfg.DLQStream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", p.cfg.DLQStream, err)
	}
	counts := make(map[string]uint64, len(p.cfg.Consumers))
	for _, c := range p.cfg.Consumers {
		counts[c.deadLetters()] = 0
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(events.DeadLetterPrefix+">"))
	if err != nil {
		return fmt.Errorf("stream %s: info: %w", p.cfg.DLQStream, err)
	}
	for subject, n := range info.State.Subjects {
		rest, ok := strings.CutPrefix(subject, events.DeadLetterPrefix)
		if !ok {
			continue
		}
		consumer, _, _ := strings.Cut(rest, ".")
		if _, watched := counts[consumer]; watched {
			counts[consumer] += n
		}
	}
	for name, n := range counts {
		DLQMessages.WithLabelValues(name).Set(float64(n))
	}
	return nil
}

func (p *Poller) pollOutbox(ctx context.Context) error {
	var n int64
	var age float64
	err := p.cfg.Pool.QueryRow(ctx,
		`SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 FROM core.outbox`).Scan(&n, &age)
	if err != nil {
		return fmt.Errorf("outbox backlog: %w", err)
	}
	OutboxBacklog.Set(float64(n))
	OutboxOldestAge.Set(max(age, 0))
	return nil
}

// pollTables exports the live and dead row versions of Tradewind's tables
// (schemas core, orders, inventory, payments, public and proj): dead ones that only grow mean vacuum
// does not keep up (or is off) and scans slow down.
func (p *Poller) pollTables(ctx context.Context) error {
	rows, err := p.cfg.Pool.Query(ctx, `
		SELECT schemaname || '.' || relname, n_live_tup, n_dead_tup FROM pg_stat_user_tables
		WHERE schemaname IN ('core', 'orders', 'inventory', 'payments', 'public', 'proj')`)
	if err != nil {
		return fmt.Errorf("table statistics: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var table string
		var live, dead int64
		if err := rows.Scan(&table, &live, &dead); err != nil {
			return fmt.Errorf("table statistics: %w", err)
		}
		TableLiveTuples.WithLabelValues(table).Set(float64(live))
		TableDeadTuples.WithLabelValues(table).Set(float64(dead))
	}
	return rows.Err()
}
