// Package retry is the one way Tradewind waits before trying again: an
// exponential backoff with full jitter (Backoff), a sleep that ends with
// its context (Sleep), the loop a long-running service restarts its work
// in (Forever, and Until for a step that must succeed once), and the loop
// of a periodic service (Every).
//
// Jitter matters because failures are correlated: when NATS or PostgreSQL
// restarts, every consumer, projector and producer fails at once, and
// un-jittered retries arrive together at each doubling. Full jitter
// spreads them over the whole window.
package retry

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Backoff is an exponential backoff with full jitter, capped: the delay
// before retry n (n ≥ 1) is uniformly random in [0, Window(n)], where
// Window(n) = min(Max, Base·2^(n-1)).
type Backoff struct {
	Base time.Duration // the first window; ≤ 0 means 100ms
	Max  time.Duration // the cap on every window; < Base means Base
}

// Window is the upper bound of the delay before retry attempt (the
// un-jittered exponential delay), for callers that announce it (e.g. a
// Retry-After).
func (b Backoff) Window(attempt int) time.Duration {
	base, ceiling := b.limits()
	d := base
	for i := 1; i < attempt; i++ {
		if d >= ceiling/2 {
			return ceiling
		}
		d *= 2
	}
	return min(d, ceiling)
}

func (b Backoff) limits() (base, ceiling time.Duration) {
	base, ceiling = b.Base, b.Max
	if base <= 0 {
		base = 100 * time.Millisecond
	}
	return base, max(ceiling, base)
}

// Delay is the jittered delay before retry attempt (1 for the first
// retry): uniformly random in [0, Window(attempt)].
func (b Backoff) Delay(attempt int) time.Duration {
	return rand.N(b.Window(attempt) + 1)
}

// Sleep waits d or until ctx ends, whichever comes first; it reports
// whether d passed (false: ctx ended).
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// permanent marks an error that ends Forever and Until.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that Forever and Until return it (unwrapped)
// instead of retrying. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// Forever runs run until ctx ends: the forever-retry loop of a
// long-running service. Whenever run returns while ctx is alive — with an
// error (logged at warn with msg) or without (the work stopped on its own,
// e.g. a subscription closed) — it is run again after b's delay. A run
// that lasted at least b.Max was healthy: the backoff starts over.
//
// Forever returns nil when ctx ends, or the error run wrapped with
// Permanent.
func Forever(ctx context.Context, b Backoff, log *slog.Logger, msg string, run func(context.Context) error) error {
	if log == nil {
		log = slog.Default()
	}
	attempt := 0
	for ctx.Err() == nil {
		start := time.Now()
		err := run(ctx)
		if p := (permanent{}); errors.As(err, &p) {
			return p.err
		}
		if ctx.Err() != nil {
			break
		}
		if _, ceiling := b.limits(); time.Since(start) >= ceiling {
			attempt = 0
		}
		attempt++
		d := b.Delay(attempt)
		if err != nil {
			log.Warn(msg, "err", err, "retry_in", d)
		}
		Sleep(ctx, d)
	}
	return nil
}

// Until runs try until it succeeds, returning nil, or ctx ends, returning
// the last error (or ctx's error when try never ran). Each failure is
// logged at warn with msg and retried after b's delay. An error wrapped
// with Permanent is returned at once.
func Until(ctx context.Context, b Backoff, log *slog.Logger, msg string, try func(context.Context) error) error {
	if log == nil {
		log = slog.Default()
	}
	last := ctx.Err()
	for attempt := 1; ctx.Err() == nil; attempt++ {
		err := try(ctx)
		if err == nil {
			return nil
		}
		if p := (permanent{}); errors.As(err, &p) {
			return p.err
		}
		last = err
		if ctx.Err() != nil {
			break
		}
		d := b.Delay(attempt)
		log.Warn(msg, "err", err, "retry_in", d)
		Sleep(ctx, d)
	}
	return last
}

// Every runs round at once and then every period until ctx ends: the loop
// of a periodic service (sweeps, cleanups, polls). A round that reports
// more work runs again at once, without waiting (draining in batches). A
// failed round is logged at warn with msg and tried again next period;
// failures never stop the loop. Every returns nil when ctx ends.
func Every(ctx context.Context, period time.Duration, log *slog.Logger, msg string, round func(context.Context) (more bool, err error)) error {
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		more, err := round(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			log.Warn(msg, "err", err)
		}
		if more && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
