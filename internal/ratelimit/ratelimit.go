// Package ratelimit is the gateway's rate limiter: GCRA (the generic cell
// rate algorithm, a token bucket kept as one timestamp) whose state is
// shared by every gateway instance through a Store — NATS KV with
// compare-and-set (KV, the default) or PostgreSQL (Postgres).
//
// A bucket with Limit{Rate: r, Burst: b} admits b requests at once from
// idle and r per second sustained, so over any window of length d all
// instances together admit at most b + r·d requests.
//
// Failure direction: when the shared store cannot answer (down, slow,
// contended past the retry budget), the Limiter does not fail the request
// and does not crash: it decides with an in-process bucket of the same
// limit (Decision.Fallback) and skips the store for a short cool-down.
// During an outage each instance therefore admits up to the limit on its
// own, so n instances admit at most n times the limit: the limiter fails
// open, bounded. Clocks: state is Unix time of the deciding instance, so
// instances need synchronised clocks; a skew of s lets at most r·s extra
// requests through.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Limit is a bucket's shape.
type Limit struct {
	Rate  float64 // sustained requests per second, > 0
	Burst int     // requests admitted at once from idle, >= 1
}

// MaxTolerance bounds Burst/Rate: state older than this is forgotten by
// the stores, which is only correct when a bucket refills within it.
const MaxTolerance = time.Hour

// Validate checks the limit is usable.
func (l Limit) Validate() error {
	var errs []error
	if !(l.Rate > 0) || math.IsInf(l.Rate, 0) || l.Rate > 1e9 {
		errs = append(errs, fmt.Errorf("rate must be in (0, 1e9] per second, got %v", l.Rate))
	}
	if l.Burst < 1 {
		errs = append(errs, fmt.Errorf("burst must be at least 1, got %d", l.Burst))
	}
	if len(errs) == 0 && l.tolerance() > int64(MaxTolerance) {
		errs = append(errs, fmt.Errorf("burst/rate must be at most %s, got %s", MaxTolerance, time.Duration(l.tolerance())))
	}
	return errors.Join(errs...)
}

// interval is the emission interval 1/rate in nanoseconds.
func (l Limit) interval() int64 { return max(1, int64(float64(time.Second)/l.Rate)) }

// tolerance is how far ahead of now the theoretical arrival time may run.
func (l Limit) tolerance() int64 { return int64(l.Burst) * l.interval() }

// Decision is the answer for one request.
type Decision struct {
	Allowed    bool
	Limit      Limit
	Remaining  int           // requests admissible right now after this one
	RetryAfter time.Duration // when denied: wait this long before retrying
	Reset      time.Duration // until the bucket is full again
	Fallback   bool          // decided by the local fallback, not the shared store
}

// gcra applies one request at now (ns) to a bucket whose theoretical
// arrival time is tat (0 for a new bucket). It returns the new tat (only
// meaningful when allowed) and the decision.
func gcra(now, tat int64, l Limit) (int64, Decision) {
	t, tau := l.interval(), l.tolerance()
	base := max(tat, now)
	next := base + t
	d := Decision{Limit: l}
	if next-now > tau {
		d.RetryAfter = time.Duration(next - now - tau)
		d.Reset = time.Duration(base - now)
		return tat, d
	}
	d.Allowed = true
	d.Remaining = int((tau - (next - now)) / t)
	d.Reset = time.Duration(next - now)
	return next, d
}

// Store holds buckets shared by instances. Take applies GCRA atomically.
type Store interface {
	Take(ctx context.Context, bucket string, now time.Time, l Limit) (Decision, error)
}

// Local is an in-process Store (the fallback, and a baseline).
type Local struct {
	mu  sync.Mutex
	tat map[string]int64
}

// maxLocalBuckets bounds the fallback's memory: past it, buckets whose
// state no longer matters (tat in the past) are dropped.
const maxLocalBuckets = 100_000

// NewLocal returns an empty in-process store.
func NewLocal() *Local { return &Local{tat: map[string]int64{}} }

// Take implements Store.
func (s *Local) Take(_ context.Context, bucket string, now time.Time, l Limit) (Decision, error) {
	n := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tat) >= maxLocalBuckets {
		for k, v := range s.tat {
			if v < n {
				delete(s.tat, k)
			}
		}
	}
	next, d := gcra(n, s.tat[bucket], l)
	if d.Allowed {
		s.tat[bucket] = next
	}
	return d, nil
}

// Limiter decides with a shared Store and falls back to a Local one.
type Limiter struct {
	store    Store
	local    *Local
	log      *slog.Logger
	timeout  time.Duration
	cooldown time.Duration

	downUntil atomic.Int64 // unix ns: skip the store until then
	fallbacks atomic.Int64
}

// Option configures a Limiter.
type Option func(*Limiter)

// WithLogger sets the logger for store failures.
func WithLogger(l *slog.Logger) Option { return func(x *Limiter) { x.log = l } }

// WithTimeout bounds one store decision (default 250ms).
func WithTimeout(d time.Duration) Option { return func(x *Limiter) { x.timeout = d } }

// WithCooldown is how long the store is skipped after it failed (default 2s).
func WithCooldown(d time.Duration) Option { return func(x *Limiter) { x.cooldown = d } }

// New builds a limiter on a shared store.
func New(store Store, opts ...Option) (*Limiter, error) {
	if store == nil {
		return nil, errors.New("ratelimit: a store is required")
	}
	l := &Limiter{store: store, local: NewLocal(), log: slog.Default(), timeout: 250 * time.Millisecond, cooldown: 2 * time.Second}
	for _, o := range opts {
		o(l)
	}
	return l, nil
}

// Fallbacks counts decisions made locally because the store failed.
func (l *Limiter) Fallbacks() int64 { return l.fallbacks.Load() }

// Allow decides one request for bucket. It never fails: see the package
// comment for what happens when the shared store is unavailable.
func (l *Limiter) Allow(ctx context.Context, bucket string, lim Limit) Decision {
	now := time.Now()
	if now.UnixNano() >= l.downUntil.Load() {
		sctx, cancel := context.WithTimeout(ctx, l.timeout)
		d, err := l.store.Take(sctx, bucket, now, lim)
		cancel()
		if err == nil {
			return d
		}
		if ctx.Err() == nil { // the caller did not give up: the store failed
			l.downUntil.Store(time.Now().Add(l.cooldown).UnixNano())
			l.log.Warn("rate limit store failed; using local limits", "cooldown", l.cooldown, "err", err)
		}
	}
	l.fallbacks.Add(1)
	d, _ := l.local.Take(ctx, bucket, now, lim)
	d.Fallback = true
	return d
}
