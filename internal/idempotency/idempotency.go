// Package idempotency stores, per caller and Idempotency-Key, the hash of
// the request and the response it got, in PostgreSQL (core.idempotency).
//
// Protocol, per request carrying a key:
//
//  1. Begin claims the key (state in_flight, with a lease) — or finds it
//     taken: the same request still running gives ErrInFlight (409), a
//     different request under the same key ErrMismatch (422), a finished
//     one its stored response, to be replayed byte for byte.
//  2. The caller executes and Completes the claim with its response, or
//     Releases it when it failed in a way a retry may fix (a 5xx), so the
//     retry executes afresh.
//
// A claim whose owner crashed is taken over once its lease has passed (by
// the same request only). Records expire after the TTL (default 24 h) and
// are deleted by Cleanup.
//
// Hazard, by design: this store is a cache of responses, not the thing
// that prevents double effects. The gateway derives each command's id
// from (caller, key, request), so a retry the store no longer remembers
// republishes the same id, which JetStream drops (Nats-Msg-Id, inside the
// duplicate window) and the consumers' inboxes ignore (forever). That is
// why the store's pool may run with synchronous_commit off (the api role
// opens it so): a PostgreSQL crash may then forget the last few hundred
// milliseconds of keys, and a retry of one of them publishes the same
// command again (dropped as above) — or, if the client reused the key
// for a different request, gets that one accepted instead of a 422.
//
// Writes of concurrent requests are group committed: see batch.go for the
// protocol, and WithFlushers to turn it off.
package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tradewind/tradewind/internal/retry"
)

var (
	// ErrInFlight: the first request with this key is still running.
	ErrInFlight = errors.New("a request with this idempotency key is in progress")
	// ErrMismatch: the key was used for a different request.
	ErrMismatch = errors.New("the idempotency key was used for a different request")
)

// Store is the PostgreSQL-backed idempotency store. Its writes are group
// committed (see batch.go); Close stops the flushers.
type Store struct {
	pool     *pgxpool.Pool
	ttl      time.Duration
	lease    time.Duration
	flushers int

	start     sync.Once
	queue     chan *op
	quit      chan struct{}
	closeOnce sync.Once
	flushes   atomic.Int64
}

// PoolConfig derives the configuration of the store's own pool from the
// application's: the store is a response cache, not what prevents double
// effects (see the package doc), so its commits skip the synchronous WAL
// flush; sequential scans are off, because every statement of the store
// finds its rows by key (or by expires_at, indexed too) and the set-based
// UPDATE of batch.go, planned while core.idempotency was nearly empty,
// otherwise kept a plan that scanned the table on every flush until an
// ANALYZE came (measured: PostgreSQL 617–803 µs per command instead of
// 59–100); and 8 connections serve the group-commit flushers and the
// rare single reads.
func PoolConfig(base *pgxpool.Config) *pgxpool.Config {
	c := base.Copy()
	c.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	c.ConnConfig.RuntimeParams["enable_seqscan"] = "off"
	c.ConnConfig.RuntimeParams["application_name"] = "tradewind-api-idempotency"
	c.MaxConns = 8
	return c
}

// New wires a store: ttl is how long keys are remembered, lease how long
// an in-flight claim blocks the key if its owner never finishes (longer
// than any request may run).
func New(pool *pgxpool.Pool, ttl, lease time.Duration, opts ...Option) (*Store, error) {
	var errs []error
	if pool == nil {
		errs = append(errs, errors.New("a pool is required"))
	}
	if ttl < time.Minute {
		errs = append(errs, fmt.Errorf("ttl must be at least 1m, got %s", ttl))
	}
	if lease <= 0 || lease >= ttl {
		errs = append(errs, fmt.Errorf("lease must be positive and shorter than the ttl, got %s", lease))
	}
	st := &Store{pool: pool, ttl: ttl, lease: lease, flushers: defaultFlushers, quit: make(chan struct{})}
	for _, o := range opts {
		o(st)
	}
	if st.flushers < 0 {
		errs = append(errs, fmt.Errorf("flushers must be 0 (no group commit) or more, got %d", st.flushers))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("idempotency store: %w", err)
	}
	st.queue = make(chan *op, maxBatch*max(1, st.flushers))
	return st, nil
}

// Flushes counts group-commit flushes (each one round trip), for
// measuring how many writes share one.
func (s *Store) Flushes() int64 { return s.flushes.Load() }

// Request identifies one attempt.
type Request struct {
	Caller string
	Key    string
	Hash   [32]byte // of everything that makes two requests the same
}

// Hash digests the parts of a request (method, path, version, body, …)
// unambiguously.
func Hash(parts ...[]byte) [32]byte {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		for i, l := 0, uint64(len(p)); i < 8; i++ {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write(p)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Response is what is stored and replayed.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Claim is a key owned by the current request.
type Claim struct {
	req   Request
	owner uuid.UUID
}

// Begin claims the key, or returns the stored response to replay, or
// ErrInFlight / ErrMismatch.
func (s *Store) Begin(ctx context.Context, req Request) (*Claim, *Response, error) {
	owner, err := uuid.NewV7()
	if err != nil {
		return nil, nil, fmt.Errorf("idempotency: %w", err)
	}
	for range 3 {
		claimed, err := s.claim(ctx, req, owner)
		if err != nil {
			return nil, nil, err
		}
		if claimed {
			return &Claim{req: req, owner: owner}, nil, nil
		}
		var (
			hash    []byte
			state   string
			status  *int
			headers []byte
			body    []byte
		)
		err = s.pool.QueryRow(ctx, `
			SELECT request_hash, state, status, headers, body FROM core.idempotency
			WHERE caller = $1 AND idem_key = $2`, req.Caller, req.Key).Scan(&hash, &state, &status, &headers, &body)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // released or cleaned up in between: claim again
		}
		if err != nil {
			return nil, nil, fmt.Errorf("idempotency: read key: %w", err)
		}
		switch {
		case string(hash) != string(req.Hash[:]):
			return nil, nil, ErrMismatch
		case state == "in_flight" || status == nil:
			return nil, nil, ErrInFlight
		}
		resp := &Response{Status: *status, Header: http.Header{}, Body: body}
		if len(headers) > 0 {
			if err := json.Unmarshal(headers, &resp.Header); err != nil {
				return nil, nil, fmt.Errorf("idempotency: stored headers: %w", err)
			}
		}
		return nil, resp, nil
	}
	return nil, nil, fmt.Errorf("idempotency: key %q keeps changing under us", req.Key)
}

// claim takes the key for owner: false when it is held (in flight, done,
// or claimed by a concurrent request in the same batch).
func (s *Store) claim(ctx context.Context, req Request, owner uuid.UUID) (bool, error) {
	if s.flushers == 0 {
		return s.claimOne(ctx, req, owner)
	}
	o := &op{kind: opClaim, req: req, owner: owner}
	if err := s.submit(ctx, o); err != nil {
		return false, err
	}
	return o.claimed, nil
}

// claimOne is claim as one statement.
func (s *Store) claimOne(ctx context.Context, req Request, owner uuid.UUID) (bool, error) {
	var got uuid.UUID
	err := s.pool.QueryRow(ctx, claimBatchSQL,
		[]string{req.Caller}, []string{req.Key}, [][]byte{req.Hash[:]}, [][16]byte{owner}, s.lease, s.ttl).Scan(&got)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	}
	return false, fmt.Errorf("idempotency: claim key: %w", err)
}

// Complete stores the response of a claimed request. If the claim was
// lost (its lease passed and another attempt took over) nothing is
// written: the other attempt's response will be the stored one. It
// returns once the response is committed.
func (s *Store) Complete(ctx context.Context, c *Claim, resp Response) error {
	h, err := json.Marshal(resp.Header)
	if err != nil {
		return fmt.Errorf("idempotency: headers: %w", err)
	}
	o := &op{kind: opComplete, req: c.req, owner: c.owner, status: resp.Status, headers: h, body: resp.Body}
	if s.flushers == 0 {
		return s.completeOne(ctx, o)
	}
	return s.submit(ctx, o)
}

// completeOne is Complete as one statement.
func (s *Store) completeOne(ctx context.Context, o *op) error {
	_, err := s.pool.Exec(ctx, completeBatchSQL,
		[]string{o.req.Caller}, []string{o.req.Key}, [][16]byte{o.owner}, []int32{int32(o.status)}, []string{string(o.headers)}, [][]byte{o.body})
	if err != nil {
		return fmt.Errorf("idempotency: store response: %w", err)
	}
	return nil
}

// Release forgets a claim so that a retry executes again.
func (s *Store) Release(ctx context.Context, c *Claim) error {
	return s.release(ctx, c.req, c.owner)
}

func (s *Store) release(ctx context.Context, req Request, owner uuid.UUID) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM core.idempotency WHERE caller = $1 AND idem_key = $2 AND owner = $3`,
		req.Caller, req.Key, owner)
	if err != nil {
		return fmt.Errorf("idempotency: release key: %w", err)
	}
	return nil
}

// Cleanup deletes up to limit expired records and reports how many.
func (s *Store) Cleanup(ctx context.Context, limit int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `
		DELETE FROM core.idempotency WHERE (caller, idem_key) IN (
			SELECT caller, idem_key FROM core.idempotency WHERE expires_at < now() LIMIT $1)`, limit)
	if err != nil {
		return 0, fmt.Errorf("idempotency: cleanup: %w", err)
	}
	return tag.RowsAffected(), nil
}

// RunCleanup deletes expired records every interval until ctx ends,
// in batches so that no statement holds locks for long.
func (s *Store) RunCleanup(ctx context.Context, interval time.Duration, log *slog.Logger) error {
	const batch = 5000
	return retry.Every(ctx, interval, log, "idempotency cleanup failed; will retry", func(ctx context.Context) (bool, error) {
		n, err := s.Cleanup(ctx, batch)
		return n == batch, err
	})
}
