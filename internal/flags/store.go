package flags

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/internal/retry"
)

// Store answers flag questions from an in-memory snapshot of the bucket
// that a watcher keeps current. Enabled is lock-free (one atomic load and
// map lookups) and never waits on the network, so it is safe on the hot
// path of a handler.
//
// Hazard: the snapshot lags the bucket by the watcher's delivery time
// (milliseconds), and while NATS is unreachable it keeps the last flags it
// saw. A flag change is therefore not transactional with anything: a
// message handled twice (a redelivery) may see two different answers if
// the flag changed in between.
type Store struct {
	admin *Admin
	log   *slog.Logger

	snap atomic.Pointer[map[string]*compiled]

	mu      sync.Mutex
	applied uint64        // newest bucket revision in snap
	changed chan struct{} // closed and replaced on every update
}

// Options configure Open.
type Options struct {
	// Replicas of the bucket when Open creates it (1, or 3 on a cluster).
	Replicas int
	Log      *slog.Logger
}

// Open ensures the bucket, loads every flag, and keeps the snapshot
// current from a watcher goroutine until ctx ends. It returns once the
// initial flags are loaded, so the first read already sees them.
func Open(ctx context.Context, js jetstream.JetStream, o Options) (*Store, error) {
	admin, err := Ensure(ctx, js, o.Replicas)
	if err != nil {
		return nil, err
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	s := &Store{admin: admin, log: o.Log.With("component", "flags"), changed: make(chan struct{})}
	empty := map[string]*compiled{}
	s.snap.Store(&empty)
	w, err := admin.kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch flags: %w", err)
	}
	if err := s.load(ctx, w); err != nil {
		_ = w.Stop()
		return nil, err
	}
	go s.watch(ctx, w)
	return s, nil
}

// Admin returns the Admin of the store's bucket.
func (s *Store) Admin() *Admin { return s.admin }

// Enabled reports whether flag name is on for the customer (see the
// package doc for the rule). An unknown flag is off.
func (s *Store) Enabled(name, customerID string) bool {
	c, ok := (*s.snap.Load())[name]
	return ok && c.enabled(customerID)
}

// Flag returns the flag as the snapshot holds it.
func (s *Store) Flag(name string) (Flag, bool) {
	c, ok := (*s.snap.Load())[name]
	if !ok {
		return Flag{}, false
	}
	return c.flag, true
}

// Sync waits until the snapshot holds every write made to the bucket
// before the call (read-your-writes after an Admin update).
func (s *Store) Sync(ctx context.Context) error {
	want, err := s.admin.lastRevision(ctx)
	if err != nil {
		return err
	}
	for {
		s.mu.Lock()
		applied, changed := s.applied, s.changed
		s.mu.Unlock()
		if applied >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("flags: waiting for revision %d (at %d): %w", want, applied, ctx.Err())
		case <-changed:
		}
	}
}

// load reads the watcher's initial values (up to its nil marker) into a
// fresh snapshot, replacing whatever was there: flags deleted while the
// watcher was down disappear.
func (s *Store) load(ctx context.Context, w jetstream.KeyWatcher) error {
	next := map[string]*compiled{}
	var rev uint64
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("load flags: %w", ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("load flags: watcher closed")
			}
			if e == nil {
				s.publish(next, rev)
				return nil
			}
			s.apply(next, e)
			rev = max(rev, e.Revision())
		}
	}
}

// watch applies updates until ctx ends; when the watcher dies (its
// subscription closed, e.g. a long NATS outage) it re-watches from
// scratch with a backoff (retry.Forever), keeping the last snapshot
// meanwhile.
func (s *Store) watch(ctx context.Context, w jetstream.KeyWatcher) {
	backoff := retry.Backoff{Base: 100 * time.Millisecond, Max: 30 * time.Second}
	_ = retry.Forever(ctx, backoff, s.log, "flag watcher stopped; re-watching with the last flags in force", func(ctx context.Context) error {
		if w == nil {
			next, err := s.admin.kv.WatchAll(ctx)
			if err != nil {
				return fmt.Errorf("watch flags: %w", err)
			}
			if err := s.load(ctx, next); err != nil {
				_ = next.Stop()
				return err
			}
			w = next
		}
		for e := range w.Updates() {
			if e != nil {
				next := maps.Clone(*s.snap.Load())
				s.apply(next, e)
				s.publish(next, e.Revision())
			}
		}
		_ = w.Stop()
		w = nil
		return errWatcherStopped
	})
}

// errWatcherStopped: the flag watcher's subscription closed.
var errWatcherStopped = errors.New("watcher stopped")

// apply puts one entry into the (private, not yet published) map m.
func (s *Store) apply(m map[string]*compiled, e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		delete(m, e.Key())
		return
	}
	f, err := decode(e)
	if err == nil {
		err = f.Validate()
	}
	if err != nil {
		// Keep the previous version: a bad write must not flip a flag.
		s.log.Error("ignoring invalid flag value", "flag", e.Key(), "revision", e.Revision(), "err", err)
		return
	}
	m[e.Key()] = compile(f)
}

// publish makes m the snapshot readers see and wakes Sync callers.
func (s *Store) publish(m map[string]*compiled, rev uint64) {
	s.snap.Store(&m)
	s.mu.Lock()
	s.applied = max(s.applied, rev)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}
