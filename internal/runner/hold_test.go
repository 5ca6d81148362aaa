package runner_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
)

// TestHeldBatchTouchesNoDatabaseAndIsAppliedOnceReleased: while Hold
// answers a delay (a dependency is down) every message is nak'ed with it
// untouched — no handler call, no inbox row, no savepoint path; once Hold
// answers 0 each message is applied exactly once.
func TestHeldBatchTouchesNoDatabaseAndIsAppliedOnceReleased(t *testing.T) {
	s := newSystem(t)
	const n = 5
	name := "held-" + uuid.NewString()[:8] // the package database outlives the test
	for i := range n {
		e := placeOrder(t, "held", int64(i+1))
		publishRaw(t, s.js, e, e.ID())
	}
	var held atomic.Bool
	held.Store(true)
	var calls atomic.Int64
	cfg := ordersConsumer(name)
	cfg.MaxDeliver = 100 // held deliveries count
	cfg.Hold = func() time.Duration {
		if held.Load() {
			return 20 * time.Millisecond
		}
		return 0
	}
	h := runner.HandlerFunc(func(context.Context, pgx.Tx, *event.Event) ([]*event.Event, error) {
		calls.Add(1)
		return nil, nil
	})
	r, _ := s.start(cfg, h)
	testenv.Eventually(t, 15*time.Second, "every message held twice", func() bool { return r.Stats().Held.Load() >= 2*n })
	if c := calls.Load(); c != 0 {
		t.Fatalf("handler called %d times while held, want 0", c)
	}
	if rows := s.count(`SELECT count(*) FROM core.inbox WHERE consumer = $1`, name); rows != 0 {
		t.Fatalf("%d inbox rows while held, want 0", rows)
	}
	if f := r.Stats().Fallbacks.Load(); f != 0 {
		t.Fatalf("%d savepoint fallbacks while held, want 0", f)
	}
	held.Store(false)
	testenv.Eventually(t, 15*time.Second, "every message applied", func() bool { return r.Stats().Applied.Load() == n })
	if c := calls.Load(); c != n {
		t.Errorf("handler called %d times, want %d", c, n)
	}
	if rows := s.count(`SELECT count(*) FROM core.inbox WHERE consumer = $1`, name); rows != n {
		t.Errorf("%d inbox rows, want %d", rows, n)
	}
	if d := r.Stats().DeadLettered.Load(); d != 0 {
		t.Errorf("%d dead letters, want 0", d)
	}
}

// TestBatchFailingAsTheDependencyGoesDownIsHeldNotRedoneOneByOne: when a
// handler fails on the fast path because the dependency just went down
// (Hold answers a delay after the failure), the batch is held as a whole
// instead of redone with a savepoint per message, each of which would
// meet the same outage; once the dependency is back every message is
// applied exactly once.
func TestBatchFailingAsTheDependencyGoesDownIsHeldNotRedoneOneByOne(t *testing.T) {
	s := newSystem(t)
	const n = 5
	name := "down-" + uuid.NewString()[:8]
	for i := range n {
		e := placeOrder(t, "down", int64(i+1))
		publishRaw(t, s.js, e, e.ID())
	}
	var down atomic.Bool // the dependency: up until a call finds it down
	var failed, calls atomic.Int64
	cfg := ordersConsumer(name)
	cfg.MaxDeliver = 100
	cfg.Hold = func() time.Duration {
		if down.Load() {
			return 20 * time.Millisecond
		}
		return 0
	}
	h := runner.HandlerFunc(func(context.Context, pgx.Tx, *event.Event) ([]*event.Event, error) {
		calls.Add(1)
		if failed.Load() == 0 {
			failed.Add(1)
			down.Store(true) // the call that fails opens the breaker
			return nil, runner.RetryAfter(errors.New("dependency unavailable"), 20*time.Millisecond)
		}
		return nil, nil
	})
	r, _ := s.start(cfg, h)
	testenv.Eventually(t, 15*time.Second, "the batch held or redone after the failure", func() bool {
		return r.Stats().Held.Load() >= n || r.Stats().Fallbacks.Load() > 0
	})
	if f := r.Stats().Fallbacks.Load(); f != 0 {
		t.Fatalf("%d savepoint fallbacks, want 0: the dependency is down", f)
	}
	if rows := s.count(`SELECT count(*) FROM core.inbox WHERE consumer = $1`, name); rows != 0 {
		t.Fatalf("%d inbox rows while held, want 0", rows)
	}
	down.Store(false)
	testenv.Eventually(t, 15*time.Second, "every message applied", func() bool { return r.Stats().Applied.Load() == n })
	if rows := s.count(`SELECT count(*) FROM core.inbox WHERE consumer = $1`, name); rows != n {
		t.Errorf("%d inbox rows, want %d", rows, n)
	}
	if f := r.Stats().Fallbacks.Load(); f != 0 {
		t.Errorf("%d savepoint fallbacks, want 0", f)
	}
}
