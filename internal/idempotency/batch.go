package idempotency

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Group commit. Every command writes twice to the store (the claim, then
// the response), and one statement per write costs PostgreSQL a round
// trip, a parse/plan and a commit each. With batching (the default) the
// writes of concurrent requests are queued and flushed together: a flush
// sends one set-based INSERT for all pending claims and one set-based
// UPDATE for all pending responses in a single round trip (one implicit
// transaction), and each request waits for the flush that carries its
// write, so Begin and Complete return only once their write committed,
// exactly as with one statement per request. A flush takes whatever is
// queued when a flusher becomes free: nothing waits for a batch to fill,
// so an idle store answers as fast as before.
//
// Hazards handled here: two claims of one key in one batch would make the
// upsert touch a row twice, so the later ones are left out and answered
// "not claimed" (they are concurrent with the first, which is what 409
// means); a batch that fails inside PostgreSQL (a deadlock between
// batches, a constraint) is retried one statement per write, so one bad
// write cannot fail its neighbours; a request that gives up (its context
// ends) before its claim is flushed has the claim released afterwards,
// so the key is not blocked for a lease.

const (
	defaultFlushers = 2
	maxBatch        = 256
	flushTimeout    = 10 * time.Second
)

type opKind int

const (
	opClaim opKind = iota + 1
	opComplete
)

// op is one queued write and, once flushed, its outcome.
type op struct {
	kind  opKind
	req   Request
	owner uuid.UUID
	// opComplete
	status  int
	headers []byte
	body    []byte

	claimed bool // opClaim: the key is ours
	err     error
	done    chan struct{}
	state   atomic.Int32 // opWaiting → opFinished, or opAbandoned by the waiter
}

const (
	opWaiting int32 = iota
	opAbandoned
	opFinished
)

// Option configures a Store.
type Option func(*Store)

// WithFlushers sets how many group-commit flushes may run at once
// (default 2); 0 disables group commit: one statement per write.
func WithFlushers(n int) Option { return func(s *Store) { s.flushers = n } }

// submit queues a write and waits for its flush.
func (s *Store) submit(ctx context.Context, o *op) error {
	s.start.Do(func() {
		for range s.flushers {
			go s.flushLoop()
		}
	})
	o.done = make(chan struct{})
	select {
	case s.queue <- o:
	case <-ctx.Done():
		return fmt.Errorf("idempotency: %w", ctx.Err())
	case <-s.quit:
		return errors.New("idempotency: store closed")
	}
	var gone error
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		gone = fmt.Errorf("idempotency: %w", ctx.Err())
	case <-s.quit: // a queued write may never be flushed now
		gone = errors.New("idempotency: store closed")
	}
	if o.state.CompareAndSwap(opWaiting, opAbandoned) {
		return gone // a flush that still takes it releases the claim
	}
	<-o.done // finished just now
	return o.err
}

// Close stops the flushers; writes after Close fail.
func (s *Store) Close() {
	s.closeOnce.Do(func() { close(s.quit) })
}

func (s *Store) flushLoop() {
	batch := make([]*op, 0, maxBatch)
	for {
		select {
		case o := <-s.queue:
			batch = append(batch[:0], o)
		case <-s.quit:
			return
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case o := <-s.queue:
				batch = append(batch, o)
			default:
				break drain
			}
		}
		s.flush(batch)
		clear(batch)
	}
}

// flush writes a batch and wakes its waiters.
func (s *Store) flush(batch []*op) {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	s.flushes.Add(1)
	err := s.writeBatch(ctx, batch)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// PostgreSQL refused the batch as a whole: write one by one.
		for _, o := range batch {
			o.claimed, o.err = false, nil
			if o.kind == opClaim {
				o.claimed, o.err = s.claimOne(ctx, o.req, o.owner)
			} else {
				o.err = s.completeOne(ctx, o)
			}
		}
	} else if err != nil {
		for _, o := range batch {
			o.claimed, o.err = false, err
		}
	}
	for _, o := range batch {
		if !o.state.CompareAndSwap(opWaiting, opFinished) && o.kind == opClaim && o.claimed {
			// Its request is gone: free the key for the retry.
			_ = s.release(ctx, o.req, o.owner)
		}
		close(o.done)
	}
}

// claimBatchSQL claims keys for their owners: caller, key, request hash
// and owner arrays, then the lease and the ttl. It returns the owner of
// each key it claimed: a fresh key, an expired one, or one whose lease
// passed while the same request held it.
const claimBatchSQL = `
	INSERT INTO core.idempotency AS i (caller, idem_key, request_hash, state, owner, lease_until, expires_at)
	SELECT u.caller, u.idem_key, u.request_hash, 'in_flight', u.owner, now() + $5::interval, now() + $6::interval
	  FROM unnest($1::text[], $2::text[], $3::bytea[], $4::uuid[]) WITH ORDINALITY AS u(caller, idem_key, request_hash, owner, n)
	 ORDER BY u.n
	ON CONFLICT (caller, idem_key) DO UPDATE
	   SET request_hash = excluded.request_hash, state = 'in_flight', owner = excluded.owner,
	       lease_until = excluded.lease_until, status = NULL, headers = NULL, body = NULL,
	       created_at = now(), expires_at = excluded.expires_at
	 WHERE i.expires_at < now()
	    OR (i.state = 'in_flight' AND i.lease_until < now() AND i.request_hash = excluded.request_hash)
	RETURNING owner`

// completeBatchSQL stores the responses of a batch: caller, key, owner,
// status, headers and body arrays. It must find each row by key; see
// PoolConfig for the plan that once did not.
const completeBatchSQL = `
	UPDATE core.idempotency AS i SET state = 'done', status = u.status, headers = u.headers, body = u.body
	  FROM unnest($1::text[], $2::text[], $3::uuid[], $4::int[], $5::jsonb[], $6::bytea[]) AS u(caller, idem_key, owner, status, headers, body)
	 WHERE i.caller = u.caller AND i.idem_key = u.idem_key AND i.owner = u.owner`

// writeBatch sends every claim and every response of a batch in one round
// trip: a set-based upsert and a set-based update.
func (s *Store) writeBatch(ctx context.Context, batch []*op) error {
	var claims, completes []*op
	seen := make(map[[2]string]bool, len(batch))
	for _, o := range batch {
		switch {
		case o.kind == opComplete:
			completes = append(completes, o)
		case seen[[2]string{o.req.Caller, o.req.Key}]:
			// A second claim of a key in one upsert is not allowed; this
			// request runs concurrently with the first: not claimed.
		default:
			seen[[2]string{o.req.Caller, o.req.Key}] = true
			claims = append(claims, o)
		}
	}
	// One lock order for every batch, so that batches do not deadlock.
	slices.SortFunc(claims, func(a, b *op) int {
		if c := strings.Compare(a.req.Caller, b.req.Caller); c != 0 {
			return c
		}
		return strings.Compare(a.req.Key, b.req.Key)
	})
	var b pgx.Batch
	if len(claims) > 0 {
		// Types pgx encodes without reflection.
		callers, keys, hashes, owners := make([]string, len(claims)), make([]string, len(claims)), make(pgtype.FlatArray[[]byte], len(claims)), make([][16]byte, len(claims))
		for i, o := range claims {
			callers[i], keys[i], hashes[i], owners[i] = o.req.Caller, o.req.Key, o.req.Hash[:], o.owner
		}
		b.Queue(claimBatchSQL, callers, keys, hashes, owners, s.lease, s.ttl).Query(func(rows pgx.Rows) error {
			won := make(map[[16]byte]bool, len(claims))
			var owner [16]byte
			if _, err := pgx.ForEachRow(rows, []any{&owner}, func() error { won[owner] = true; return nil }); err != nil {
				return err
			}
			for _, o := range claims {
				o.claimed = won[o.owner]
			}
			return nil
		})
	}
	if len(completes) > 0 {
		callers, keys, owners := make([]string, len(completes)), make([]string, len(completes)), make([][16]byte, len(completes))
		statuses, headers, bodies := make([]int32, len(completes)), make([]string, len(completes)), make(pgtype.FlatArray[[]byte], len(completes))
		for i, o := range completes {
			callers[i], keys[i], owners[i] = o.req.Caller, o.req.Key, o.owner
			statuses[i], headers[i], bodies[i] = int32(o.status), string(o.headers), o.body
		}
		b.Queue(completeBatchSQL, callers, keys, owners, statuses, headers, bodies)
	}
	if err := s.pool.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("idempotency: write batch of %d: %w", len(batch), err)
	}
	return nil
}
