package outbox

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
)

// relayLockKey is the advisory lock that makes one relay active at a time:
// several relays may run (for availability), but only the holder publishes,
// so rows leave the outbox in the order they were committed.
const relayLockKey = 0x7472_6477_6f62 // "trdwob"

// RelayConfig tunes the relay.
type RelayConfig struct {
	// Batch is how many rows one round publishes (bounded in flight).
	Batch int
	// Sweep is the period of the safety sweep for rows whose wake-up was
	// missed (a crash, a lost NOTIFY).
	Sweep time.Duration
	// AckTimeout bounds the wait for JetStream's publish acks.
	AckTimeout time.Duration
	// Observe, when set, is called after every round whose publishes were
	// all acknowledged, with the row count and the time from the first
	// publish to the last ack (metrics.ObserveOutboxPublish fits).
	Observe func(rows int, elapsed time.Duration)
	// MinAge leaves rows younger than this to the writer that is
	// publishing them itself (Publisher.Commit); 0 relays every row. A row
	// the relay takes anyway is published twice and deduplicated.
	MinAge time.Duration
}

func (c *RelayConfig) setDefaults() {
	if c.Batch <= 0 {
		c.Batch = 512
	}
	if c.Sweep <= 0 {
		c.Sweep = time.Second
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 10 * time.Second
	}
}

// Relay publishes committed outbox rows to JetStream.
type Relay struct {
	cfg  RelayConfig
	pool *pgxpool.Pool
	js   jetstream.JetStream
	log  *slog.Logger
	wake chan struct{}

	published atomic.Int64
	// afterPublish is a test hook run after the acks and before the delete.
	afterPublish func() error
}

// NewRelay wires a relay.
func NewRelay(cfg RelayConfig, pool *pgxpool.Pool, js jetstream.JetStream, log *slog.Logger) (*Relay, error) {
	if pool == nil || js == nil {
		return nil, errors.New("outbox relay: pool and JetStream are required")
	}
	if log == nil {
		log = slog.Default()
	}
	cfg.setDefaults()
	return &Relay{cfg: cfg, pool: pool, js: js, log: log.With("component", "relay"), wake: make(chan struct{}, 1)}, nil
}

// Wake asks the relay to run a round now (tests, and writers without a
// Publisher). It never blocks.
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Published counts messages acknowledged by JetStream since start.
func (r *Relay) Published() int64 { return r.published.Load() }

// Run relays until ctx ends, on every sweep period and on Wake. (The
// deleted rows are vacuumed by store.Vacuumer, which the relay role runs.)
func (r *Relay) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Sweep)
	defer t.Stop()
	for {
		for {
			n, err := r.Drain(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				r.log.Warn("outbox relay round failed; retrying", "err", err)
				break
			}
			if n < r.cfg.Batch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-t.C:
		}
	}
}

type row struct {
	id      int64
	eventID string
	subject string
	header  []byte // the header block (headerBlock)
	body    []byte

	legacyHeader []byte // JSON headers of a row written before the header block
}

// Drain publishes one batch of the oldest rows and deletes them once acked.
// It returns how many rows it relayed; 0 when another relay holds the lock.
func (r *Relay) Drain(ctx context.Context) (int, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("relay: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()

	var locked bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, int64(relayLockKey)).Scan(&locked); err != nil {
		return 0, fmt.Errorf("relay: lock: %w", err)
	}
	if !locked {
		return 0, nil
	}
	rows, err := tx.Query(ctx, `
		SELECT id, event_id, subject, header, headers, body FROM core.outbox
		WHERE created_at <= now() - $2 * interval '1 microsecond'
		ORDER BY id LIMIT $1`, r.cfg.Batch, r.cfg.MinAge.Microseconds())
	if err != nil {
		return 0, fmt.Errorf("relay: select: %w", err)
	}
	batch, err := pgx.CollectRows(rows, func(rw pgx.CollectableRow) (row, error) {
		var x row
		err := rw.Scan(&x.id, &x.eventID, &x.subject, &x.header, &x.legacyHeader, &x.body)
		return x, err
	})
	if err != nil {
		return 0, fmt.Errorf("relay: read rows: %w", err)
	}
	if len(batch) == 0 {
		return 0, nil
	}
	start := time.Now()
	if err := r.publish(ctx, batch); err != nil {
		return 0, err
	}
	if r.cfg.Observe != nil {
		r.cfg.Observe(len(batch), time.Since(start))
	}
	if r.afterPublish != nil {
		if err := r.afterPublish(); err != nil {
			return 0, err
		}
	}
	ids := make([]int64, len(batch))
	for i, b := range batch {
		ids[i] = b.id
	}
	if _, err := tx.Exec(ctx, `DELETE FROM core.outbox WHERE id = ANY($1)`, ids); err != nil {
		return 0, fmt.Errorf("relay: delete published rows: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("relay: commit: %w", err)
	}
	r.published.Add(int64(len(batch)))
	return len(batch), nil
}

// publish sends the batch asynchronously and waits for every ack. Any
// failure fails the round: the rows stay and are republished next round,
// where the broker drops the ones it already has.
func (r *Relay) publish(ctx context.Context, batch []row) error {
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	for _, b := range batch {
		h, err := decodeHeaders(b.header, b.legacyHeader)
		if err != nil {
			return fmt.Errorf("relay: headers of outbox row %d: %w", b.id, err)
		}
		f, err := r.js.PublishMsgAsync(natsMsg(Message{EventID: b.eventID, Subject: b.subject, Header: h, Body: b.body}))
		if err != nil {
			return fmt.Errorf("relay: publish %s to %s: %w", b.eventID, b.subject, err)
		}
		futures = append(futures, f)
	}
	if err := awaitAcks(ctx, futures, r.cfg.AckTimeout, func(i int) string {
		return batch[i].eventID + " to " + batch[i].subject
	}); err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	return nil
}
