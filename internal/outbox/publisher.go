package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/pgtx"
)

// Publisher is the direct path: a writer commits its transaction through
// Commit, which publishes the rows the transaction wrote right away, and
// Run deletes published rows in the background.
//
// Hazard: Commit publishes after the commit returned. If the process dies
// in between, or NATS is away, the rows stay and the relay publishes them
// once they are older than its MinAge; nothing is lost, and a message is
// never published before the transaction that wrote it committed.
type Publisher struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
	log  *slog.Logger
	cfg  PublisherConfig

	mu      sync.Mutex
	sent    []int64       // published rows waiting to be deleted
	deleted chan struct{} // signals Run that sent grew
}

// PublisherConfig tunes a Publisher.
type PublisherConfig struct {
	// AckTimeout bounds the wait for JetStream's publish acks.
	AckTimeout time.Duration
	// DeleteEvery is how often published rows are deleted (one statement
	// for all the rows published since).
	DeleteEvery time.Duration
	// Observe, when set, is called after every published batch with the
	// row count and the time from the first publish to the last ack.
	Observe func(rows int, elapsed time.Duration)
}

func (c *PublisherConfig) setDefaults() {
	if c.AckTimeout <= 0 {
		c.AckTimeout = 10 * time.Second
	}
	if c.DeleteEvery <= 0 {
		c.DeleteEvery = 20 * time.Millisecond
	}
}

// NewPublisher wires a publisher; its Run must be running for published
// rows to be deleted (until then the relay republishes them, harmlessly).
func NewPublisher(cfg PublisherConfig, pool *pgxpool.Pool, js jetstream.JetStream, log *slog.Logger) (*Publisher, error) {
	if pool == nil || js == nil {
		return nil, errors.New("outbox publisher: pool and JetStream are required")
	}
	if log == nil {
		log = slog.Default()
	}
	cfg.setDefaults()
	return &Publisher{pool: pool, js: js, log: log.With("component", "outbox"), cfg: cfg, deleted: make(chan struct{}, 1)}, nil
}

// Commit commits tx and then publishes the rows recorded in pending (see
// Collect). Its error is the commit's: a failed publish is logged and left
// to the relay. A nil Publisher only commits.
func (p *Publisher) Commit(ctx context.Context, tx pgx.Tx, pending *Pending) error {
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if p == nil || pending.Len() == 0 {
		return nil
	}
	if err := p.publish(ctx, pending.rows); err != nil {
		p.log.Warn("publish after commit failed; the relay will publish the rows", "rows", pending.Len(), "err", err)
	}
	return nil
}

// Transact is how a writer changes the database and the outbox together:
// it begins a transaction on pool, runs fn in it under Collect (fn adds
// its messages with Add; written is what they recorded, for a savepoint
// that must Join its own), commits, and publishes the rows straight after
// (Commit). When fn fails the transaction is rolled back and fn's error
// returned as is. A nil Publisher commits and leaves publishing to the
// relay. The consumer runner and the order deadline sweeper both commit
// through it.
func (p *Publisher) Transact(ctx context.Context, pool *pgxpool.Pool, fn func(ctx context.Context, tx pgx.Tx, written *Pending) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	ctx, written := Collect(ctx)
	if err := fn(ctx, tx, written); err != nil {
		_ = tx.Rollback(context.Background())
		return err
	}
	if err := p.Commit(ctx, tx, written); err != nil {
		_ = tx.Rollback(context.Background())
		return err
	}
	return nil
}

// publish sends rows asynchronously, waits for every ack and queues the
// rows for deletion.
func (p *Publisher) publish(ctx context.Context, rows []pendingRow) error {
	start := time.Now()
	futures := make([]jetstream.PubAckFuture, len(rows))
	for i, r := range rows {
		f, err := p.js.PublishMsgAsync(natsMsg(r.msg))
		if err != nil {
			return fmt.Errorf("publish %s to %s: %w", r.msg.EventID, r.msg.Subject, err)
		}
		futures[i] = f
	}
	if err := awaitAcks(ctx, futures, p.cfg.AckTimeout, func(i int) string {
		return rows[i].msg.EventID + " to " + rows[i].msg.Subject
	}); err != nil {
		return err
	}
	if p.cfg.Observe != nil {
		p.cfg.Observe(len(rows), time.Since(start))
	}
	p.mu.Lock()
	for _, r := range rows {
		p.sent = append(p.sent, r.id)
	}
	p.mu.Unlock()
	select {
	case p.deleted <- struct{}{}:
	default:
	}
	return nil
}

// Run deletes published rows every DeleteEvery until ctx ends, in one
// statement per round that does not wait for its WAL flush: losing a
// delete in a crash only makes the relay publish the row again.
func (p *Publisher) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.DeleteEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// Best effort: what is left is swept and deduplicated.
			_ = p.deleteSent(context.WithoutCancel(ctx))
			return nil
		case <-t.C:
		}
		if err := p.deleteSent(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("cannot delete published outbox rows; retrying", "err", err)
		}
	}
}

func (p *Publisher) deleteSent(ctx context.Context) error {
	p.mu.Lock()
	ids := p.sent
	p.sent = nil
	p.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	err := pgx.BeginTxFunc(ctx, p.pool, pgtx.AsyncCommit, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM core.outbox WHERE id = ANY($1)`, ids)
		return err
	})
	if err != nil {
		p.mu.Lock()
		p.sent = append(p.sent, ids...)
		p.mu.Unlock()
		return fmt.Errorf("delete %d published rows: %w", len(ids), err)
	}
	return nil
}

// natsMsg is the message a row is published as.
func natsMsg(m Message) *nats.Msg {
	msg := &nats.Msg{Subject: m.Subject, Data: m.Body, Header: make(nats.Header, len(m.Header)+1)}
	for k, v := range m.Header {
		msg.Header[k] = v
	}
	msg.Header.Set(nats.MsgIdHdr, m.EventID)
	return msg
}

// awaitAcks waits for every publish ack; any failure fails the whole
// round (the rows stay and are published again, deduplicated).
func awaitAcks(ctx context.Context, futures []jetstream.PubAckFuture, timeout time.Duration, name func(int) string) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish %s: %w", name(i), err)
		case <-t.C:
			return fmt.Errorf("no publish ack within %s", timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
