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
	next, _, d := gcraN(now, tat, l, 1)
	return next, d
}

// gcraN takes up to n tokens at once: as many as the bucket holds, at
// most n. It returns the new tat, how many were granted (0: denied) and
// the decision for the first of them; Remaining is what the bucket still
// holds after the grant. Taking k tokens moves tat exactly as k single
// requests would, so the bound b + r·d holds for tokens granted.
func gcraN(now, tat int64, l Limit, n int) (int64, int, Decision) {
	t, tau := l.interval(), l.tolerance()
	base := max(tat, now)
	d := Decision{Limit: l}
	avail := (tau - (base - now)) / t // tokens the bucket holds at now
	if avail < 1 {
		next := base + t
		d.RetryAfter = time.Duration(next - now - tau)
		d.Reset = time.Duration(base - now)
		return tat, 0, d
	}
	k := int(min(avail, int64(max(n, 1))))
	next := base + int64(k)*t
	d.Allowed = true
	d.Remaining = int(avail) - k
	d.Reset = time.Duration(next - now)
	return next, k, d
}

// Store holds buckets shared by instances. Take applies GCRA atomically.
type Store interface {
	Take(ctx context.Context, bucket string, now time.Time, l Limit) (Decision, error)
}

// Leaser is a Store that can grant several tokens in one decision, so
// that an instance can lease a slice of a shared bucket and admit the
// next requests without a round trip (see Limiter).
type Leaser interface {
	Store
	// TakeN takes up to n (>= 1) tokens atomically and reports how many
	// it granted (0: denied, with the decision saying for how long).
	TakeN(ctx context.Context, bucket string, now time.Time, l Limit, n int) (int, Decision, error)
}

var (
	_ Leaser = (*KV)(nil)
	_ Leaser = (*Local)(nil)
)

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
func (s *Local) Take(ctx context.Context, bucket string, now time.Time, l Limit) (Decision, error) {
	_, d, err := s.TakeN(ctx, bucket, now, l, 1)
	return d, err
}

// TakeN implements Leaser.
func (s *Local) TakeN(_ context.Context, bucket string, now time.Time, l Limit, k int) (int, Decision, error) {
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
	next, granted, d := gcraN(n, s.tat[bucket], l, k)
	if granted > 0 {
		s.tat[bucket] = next
	}
	return granted, d, nil
}

// Limiter decides with a shared Store and falls back to a Local one.
//
// Leases: when the store is a Leaser, the limiter takes tokens from the
// shared bucket in slices and spends them locally, so most requests make
// no network call. A slice is at most MaxLease(limit) tokens (a quarter
// of the burst, a lease TTL's worth of rate, 256), grows while demand
// drains it quickly and shrinks when tokens go unused; unspent tokens are
// dropped after the lease TTL (default 250ms). When a lease of 8 or more
// runs down to a quarter, the next one is taken in the background, so
// that requests wait for the store only when a lease is empty. Every
// admitted request spends a token the shared bucket granted, so from an
// idle bucket all instances together still admit at most b + r·d; over
// an arbitrary window the excess is the tokens leased before it and not
// yet spent, at most instances × 1.25 × MaxLease. A limit whose MaxLease
// is 1 (burst < 8, or rate < 8/s at the default TTL) is decided per
// request, exactly as without leases.
type Limiter struct {
	store    Store
	leaser   Leaser // store, when it can lease; nil otherwise
	local    *Local
	log      *slog.Logger
	timeout  time.Duration
	cooldown time.Duration
	leaseTTL time.Duration

	downUntil atomic.Int64 // unix ns: skip the store until then
	fallbacks atomic.Int64
	trips     atomic.Int64
	leases    [64]leaseStripe
}

// Option configures a Limiter.
type Option func(*Limiter)

// WithLogger sets the logger for store failures.
func WithLogger(l *slog.Logger) Option { return func(x *Limiter) { x.log = l } }

// WithTimeout bounds one store decision (default 250ms).
func WithTimeout(d time.Duration) Option { return func(x *Limiter) { x.timeout = d } }

// New builds a limiter on a shared store.
func New(store Store, opts ...Option) (*Limiter, error) {
	if store == nil {
		return nil, errors.New("ratelimit: a store is required")
	}
	l := &Limiter{store: store, local: NewLocal(), log: slog.Default(), timeout: 250 * time.Millisecond,
		cooldown: 2 * time.Second, leaseTTL: 250 * time.Millisecond}
	for _, o := range opts {
		o(l)
	}
	if ls, ok := store.(Leaser); ok && l.leaseTTL > 0 {
		l.leaser = ls
	}
	for i := range l.leases {
		l.leases[i].m = map[string]*lease{}
	}
	return l, nil
}

// Fallbacks counts decisions made locally because the store failed.
func (l *Limiter) Fallbacks() int64 { return l.fallbacks.Load() }

// StoreCalls counts decisions that asked the shared store (the rest were
// served from leases, or by the fallback).
func (l *Limiter) StoreCalls() int64 { return l.trips.Load() }

// MaxLease is the largest slice of a bucket one instance leases for lim
// under a lease TTL: min(burst/4, rate × ttl, 256), at least 1.
func MaxLease(lim Limit, ttl time.Duration) int {
	c := min(lim.Burst/4, int(lim.Rate*ttl.Seconds()), 256)
	return max(c, 1)
}

// Allow decides one request for bucket. It never fails: see the package
// comment for what happens when the shared store is unavailable.
func (l *Limiter) Allow(ctx context.Context, bucket string, lim Limit) Decision {
	if l.leaser == nil {
		return l.decide(ctx, bucket, lim)
	}
	ls := l.lease(bucket)
	ls.mu.Lock() // requests for this bucket wait for one refill, then share it
	defer ls.mu.Unlock()
	now := time.Now()
	n := now.UnixNano()
	if ls.lim != lim { // new, or the limit changed: start afresh
		ls.lim, ls.tokens, ls.at, ls.chunk, ls.deniedUntil = lim, 0, 0, 1, 0
	}
	if n < ls.deniedUntil { // a bucket's state only grows: still denied
		d := ls.denied
		d.RetryAfter = time.Duration(ls.deniedUntil - n)
		d.Reset = max(0, d.Reset-time.Duration(n-ls.deniedAt))
		return d
	}
	if ls.tokens > 0 && n < ls.expires {
		ls.tokens--
		d := ls.shared
		d.Remaining += ls.tokens
		d.Reset = max(0, d.Reset-time.Duration(n-ls.at))
		if ls.chunk >= 8 && ls.tokens <= ls.chunk/4 && !ls.refilling && n >= l.downUntil.Load() {
			// Running low under steady demand: refill in the background
			// so that the next requests do not wait for the round trip.
			ls.refilling = true
			l.grow(ls, n)
			go l.prefetch(bucket, ls, lim, ls.chunk)
		}
		return d
	}
	if ls.tokens > 0 { // expired unspent: ask for less next time
		ls.chunk = max(1, ls.chunk/2)
	} else {
		l.grow(ls, n)
	}
	ls.tokens = 0
	if n < l.downUntil.Load() {
		return l.fallback(ctx, bucket, now, lim)
	}
	l.trips.Add(1)
	sctx, cancel := context.WithTimeout(ctx, l.timeout)
	granted, d, err := l.leaser.TakeN(sctx, bucket, now, lim, ls.chunk)
	cancel()
	if err != nil {
		l.failed(ctx, err)
		return l.fallback(ctx, bucket, now, lim)
	}
	if granted == 0 {
		ls.denied, ls.deniedAt, ls.deniedUntil = d, n, n+int64(d.RetryAfter)
		return d
	}
	ls.tokens, ls.expires, ls.at, ls.shared = granted-1, n+int64(l.leaseTTL), n, d
	d.Remaining += ls.tokens
	return d
}

// grow doubles the next lease when the last one drained in under half
// its TTL.
func (l *Limiter) grow(ls *lease, n int64) {
	if ls.at != 0 && n-ls.at < int64(l.leaseTTL)/2 {
		ls.chunk = min(ls.chunk*2, MaxLease(ls.lim, l.leaseTTL))
	}
}

// prefetch takes the next lease while the current one is still being
// spent. A failure only marks the store down; a denial is left for the
// synchronous path to find once the local tokens are gone.
func (l *Limiter) prefetch(bucket string, ls *lease, lim Limit, chunk int) {
	now := time.Now()
	l.trips.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	granted, d, err := l.leaser.TakeN(ctx, bucket, now, lim, chunk)
	cancel()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.refilling = false
	switch {
	case err != nil:
		l.failed(context.Background(), err)
	case granted > 0 && ls.lim == lim:
		n := now.UnixNano()
		ls.tokens += granted
		ls.expires, ls.at, ls.shared = n+int64(l.leaseTTL), n, d
	}
}

// decide asks the store for one request.
func (l *Limiter) decide(ctx context.Context, bucket string, lim Limit) Decision {
	now := time.Now()
	if now.UnixNano() >= l.downUntil.Load() {
		l.trips.Add(1)
		sctx, cancel := context.WithTimeout(ctx, l.timeout)
		d, err := l.store.Take(sctx, bucket, now, lim)
		cancel()
		if err == nil {
			return d
		}
		l.failed(ctx, err)
	}
	return l.fallback(ctx, bucket, now, lim)
}

func (l *Limiter) failed(ctx context.Context, err error) {
	if ctx.Err() == nil { // the caller did not give up: the store failed
		l.downUntil.Store(time.Now().Add(l.cooldown).UnixNano())
		l.log.Warn("rate limit store failed; using local limits", "cooldown", l.cooldown, "err", err)
	}
}

func (l *Limiter) fallback(ctx context.Context, bucket string, now time.Time, lim Limit) Decision {
	l.fallbacks.Add(1)
	d, _ := l.local.Take(ctx, bucket, now, lim)
	d.Fallback = true
	return d
}

// lease is this instance's slice of one shared bucket.
type lease struct {
	mu      sync.Mutex
	lim     Limit    // the limit the tokens were taken under
	tokens  int      // unspent tokens
	expires int64    // unix ns: unspent tokens are dropped then
	at      int64    // unix ns of the last refill (0: none yet)
	chunk   int      // tokens the next refill asks for
	shared  Decision // the store's answer at the last refill
	// refilling: a background refill is under way (see prefetch).
	refilling bool
	// A denial holds until its Retry-After: other instances can only
	// take more, so asking again sooner cannot admit.
	denied      Decision
	deniedAt    int64
	deniedUntil int64
}

type leaseStripe struct {
	mu sync.Mutex
	m  map[string]*lease
}

// maxLeasesPerStripe bounds memory; past it, leases not refilled for a
// second are forgotten (losing at most their unspent tokens).
const maxLeasesPerStripe = 4096

func (l *Limiter) lease(bucket string) *lease {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(bucket); i++ {
		h = (h ^ uint32(bucket[i])) * 16777619
	}
	st := &l.leases[h%uint32(len(l.leases))]
	st.mu.Lock()
	defer st.mu.Unlock()
	ls, ok := st.m[bucket]
	if !ok {
		if len(st.m) >= maxLeasesPerStripe {
			old := time.Now().Add(-time.Second).UnixNano()
			for k, v := range st.m {
				if v.mu.TryLock() {
					if v.at < old {
						delete(st.m, k)
					}
					v.mu.Unlock()
				}
			}
		}
		ls = &lease{chunk: 1}
		st.m[bucket] = ls
	}
	return ls
}
