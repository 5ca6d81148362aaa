package runner_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/internal/runner"
	"github.com/tradewind/tradewind/internal/testenv"
)

// lockRecorder is a BatchLocker that records which events each
// transaction locked, and fails its first Handle once (so the batch also
// takes the savepoint path).
type lockRecorder struct {
	mu       sync.Mutex
	locked   map[pgx.Tx]map[string]bool
	unlocked []string // events handled in a transaction that had not locked them
	failed   atomic.Bool
	handled  atomic.Int64
}

var _ runner.BatchLocker = (*lockRecorder)(nil)

func (l *lockRecorder) LockBatch(_ context.Context, tx pgx.Tx, evs []*event.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := map[string]bool{}
	for _, ev := range evs {
		ids[ev.ID()] = true
	}
	l.locked[tx] = ids
	return nil
}

func (l *lockRecorder) Handle(_ context.Context, tx pgx.Tx, ev *event.Event) ([]*event.Event, error) {
	l.mu.Lock()
	if !l.locked[tx][ev.ID()] {
		l.unlocked = append(l.unlocked, ev.ID())
	}
	l.mu.Unlock()
	if l.failed.CompareAndSwap(false, true) {
		return nil, errors.New("first attempt fails")
	}
	l.handled.Add(1)
	return nil, nil
}

// TestBatchLockerLocksBeforeEveryHandlerOnBothPaths: a BatchLocker's
// LockBatch runs in the batch's transaction before any handler sees a
// message of it, on the fast path and on the savepoint path alike.
func TestBatchLockerLocksBeforeEveryHandlerOnBothPaths(t *testing.T) {
	s := newSystem(t)
	const n = 4
	for i := range n {
		e := placeOrder(t, "locker", int64(i+1))
		publishRaw(t, s.js, e, e.ID())
	}
	h := &lockRecorder{locked: map[pgx.Tx]map[string]bool{}}
	r, _ := s.start(ordersConsumer("locker-"+uuid.NewString()[:8]), h)
	testenv.Eventually(t, 15*time.Second, "every message applied", func() bool { return r.Stats().Applied.Load() == n })
	if r.Stats().Fallbacks.Load() == 0 && r.Stats().Retried.Load() == 0 {
		t.Fatal("the failing first attempt took neither path")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.unlocked) != 0 {
		t.Errorf("messages %v handled before their batch was locked", h.unlocked)
	}
}
