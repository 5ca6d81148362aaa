// Package lease shares numbered partitions of a group (a role) among the
// live instances of it through leases in a NATS KV bucket.
//
// The protocol, per Keeper, every Renew (a third of the TTL by default):
//
//  1. announce: put <group>.members.<instance> (the bucket's TTL removes
//     the key of an instance that stopped announcing);
//  2. renew each held lease <group>.partitions.<n> with a revision-checked
//     update; a failed renewal loses the lease: its work is stopped at
//     once (before anything else happens to it);
//  3. count the live members m; hold at most ceil(P/m): release the extra
//     leases (stop the work, wait for it to end, then delete the key at
//     its revision);
//  4. take free partitions up to that bound with create-if-absent, and
//     start their work.
//
// Invariant: a Keeper runs the work of a partition only while it holds the
// lease, and starts it only after the create succeeded; so two instances
// run one partition's work together only when one of them lost its lease
// without noticing, for at most the time between two renewals (a process
// paused past the TTL). On stop a Keeper stops all its work, then deletes
// its leases and its member key, so the others take over within one
// Renew rather than one TTL.
//
// Hazard: the bucket's TTL applies to every key of it; all Keepers on one
// bucket must use the same TTL (the bucket is updated to the last one).
package lease

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/tradewind/tradewind/internal/retry"
)

// DefaultBucket is the KV bucket of the leases (stream KV_<bucket>).
const DefaultBucket = "tradewind_leases"

// Work is what a held partition does until ctx ends. Returning earlier
// releases the partition (it may be taken again at the next round).
type Work func(ctx context.Context, partition int) error

// Config configures a Keeper.
type Config struct {
	// Group names what is partitioned (a role); a key token.
	Group string
	// Partitions is how many partitions the group has (≥ 1).
	Partitions int
	// Instance identifies this Keeper; default: a fresh unique id.
	Instance string
	// Bucket is the KV bucket; default DefaultBucket.
	Bucket string
	// TTL is how long a lease or an announcement lives without renewal.
	TTL time.Duration
	// Renew is the round period; default TTL/3.
	Renew    time.Duration
	Replicas int
	Log      *slog.Logger
	// Observe, when set, is told the partitions held after every change.
	Observe func(group string, held int)
	// Changed, when set, is told each change: "taken", "lost", "released".
	Changed func(group, change string)
}

func (c *Config) setDefaults() {
	if c.Instance == "" {
		c.Instance = nuid.Next()
	}
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.TTL <= 0 {
		c.TTL = 15 * time.Second
	}
	if c.Renew <= 0 {
		c.Renew = c.TTL / 3
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Keeper takes, renews and releases the leases of one instance of a group
// and runs the work of the partitions it holds. It is a long-running
// service (Run).
type Keeper struct {
	cfg  Config
	js   jetstream.JetStream
	work Work
	log  *slog.Logger

	mu      sync.Mutex
	held    map[int]*holding
	running atomic.Bool
}

type holding struct {
	rev    uint64
	cancel context.CancelFunc
	done   chan struct{}
}

// New validates cfg and builds a Keeper.
func New(js jetstream.JetStream, cfg Config, work Work) (*Keeper, error) {
	cfg.setDefaults()
	var errs []error
	if js == nil || work == nil {
		errs = append(errs, errors.New("JetStream and work are required"))
	}
	if !validToken(cfg.Group) || !validToken(cfg.Instance) {
		errs = append(errs, fmt.Errorf("group %q and instance %q must be non-empty key tokens (letters, digits, - and _)", cfg.Group, cfg.Instance))
	}
	if cfg.Partitions < 1 {
		errs = append(errs, fmt.Errorf("partitions must be at least 1, got %d", cfg.Partitions))
	}
	if cfg.Renew >= cfg.TTL {
		errs = append(errs, fmt.Errorf("renew period %s must be shorter than the TTL %s", cfg.Renew, cfg.TTL))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("lease keeper %s: %w", cfg.Group, err)
	}
	return &Keeper{cfg: cfg, js: js, work: work, held: map[int]*holding{},
		log: cfg.Log.With("component", "leases", "group", cfg.Group, "instance", cfg.Instance)}, nil
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r == '-', r == '_', r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		default:
			return false
		}
	}
	return true
}

// Name is the service's name.
func (k *Keeper) Name() string { return "partitions-" + k.cfg.Group }

// Instance is this Keeper's id (the value of its leases).
func (k *Keeper) Instance() string { return k.cfg.Instance }

// Running reports whether the lease loop runs (for /readyz).
func (k *Keeper) Running() bool { return k.running.Load() }

// Held returns the partitions held, sorted.
func (k *Keeper) Held() []int {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]int, 0, len(k.held))
	for p := range k.held {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (k *Keeper) partitionKey(p int) string {
	return k.cfg.Group + ".partitions." + strconv.Itoa(p)
}

func (k *Keeper) memberKey() string { return k.cfg.Group + ".members." + k.cfg.Instance }

// Bucket creates or updates the lease bucket.
func Bucket(ctx context.Context, js jetstream.JetStream, name string, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      name,
		Description: "Tradewind partition leases and the instances that hold them",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    max(1, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("lease bucket %s: cannot create or update (ttl=%s, replicas=%d): %w", name, ttl, replicas, err)
	}
	return kv, nil
}

// Run keeps the leases until ctx ends, then stops every partition's work
// and releases its leases. Broker failures are retried every round.
func (k *Keeper) Run(ctx context.Context) error {
	var kv jetstream.KeyValue
	for kv == nil {
		var err error
		if kv, err = Bucket(ctx, k.js, k.cfg.Bucket, k.cfg.TTL, k.cfg.Replicas); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			k.log.Warn("cannot open the lease bucket; retrying", "err", err)
			if !retry.Sleep(ctx, k.cfg.Renew) {
				return nil
			}
		}
	}
	k.running.Store(true)
	defer k.running.Store(false)
	defer k.shutdown(kv)
	t := time.NewTicker(k.cfg.Renew)
	defer t.Stop()
	for {
		k.round(ctx, kv)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// round is one pass of the protocol in the package doc.
func (k *Keeper) round(ctx context.Context, kv jetstream.KeyValue) {
	if ctx.Err() != nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, k.cfg.Renew)
	defer cancel()
	// 1. announce.
	if _, err := kv.Put(rctx, k.memberKey(), []byte(k.cfg.Instance)); err != nil {
		k.log.Warn("cannot announce this instance", "err", err)
	}
	// 2. renew; a lease not renewed is lost at once.
	k.reapFinished()
	for _, p := range k.Held() {
		h := k.holding(p)
		rev, err := kv.Update(rctx, k.partitionKey(p), []byte(k.cfg.Instance), h.rev)
		if err != nil {
			k.stop(p, "lost", "lease lost: partition no longer consumed here", "err", err)
			continue
		}
		h.rev = rev
	}
	// 3. the fair share.
	members, err := k.members(rctx, kv)
	if err != nil {
		k.log.Warn("cannot count the live instances; keeping what is held", "err", err)
		return
	}
	limit := (k.cfg.Partitions + members - 1) / members
	held := k.Held()
	for len(held) > limit {
		p := held[len(held)-1]
		held = held[:len(held)-1]
		rev := k.holding(p).rev
		k.stop(p, "released", "lease released to another instance", "live_instances", members, "fair_share", limit)
		// The work may have taken a while to stop: a deadline of its own.
		dctx, dcancel := context.WithTimeout(ctx, k.cfg.Renew)
		err := kv.Delete(dctx, k.partitionKey(p), jetstream.LastRevision(rev))
		dcancel()
		if err != nil {
			k.log.Warn("cannot delete a released lease; it expires after the TTL", "partition", p, "err", err)
		}
	}
	// 4. take free partitions, starting at a place of this instance's own
	// so that instances starting together try different ones first.
	start := int(hash(k.cfg.Instance) % uint32(k.cfg.Partitions))
	for i := 0; i < k.cfg.Partitions && len(held) < limit; i++ {
		p := (start + i) % k.cfg.Partitions
		if slices.Contains(held, p) {
			continue
		}
		rev, err := k.take(rctx, kv, p)
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) {
				k.log.Warn("cannot take a lease", "partition", p, "err", err)
			}
			continue
		}
		k.start(ctx, p, rev, members, limit)
		held = append(held, p)
	}
}

// take creates the lease of p, or adopts it when it is this instance's
// own already (a renewal failed but the key survived).
func (k *Keeper) take(ctx context.Context, kv jetstream.KeyValue, p int) (uint64, error) {
	rev, err := kv.Create(ctx, k.partitionKey(p), []byte(k.cfg.Instance))
	if err == nil || !errors.Is(err, jetstream.ErrKeyExists) {
		return rev, err
	}
	e, gerr := kv.Get(ctx, k.partitionKey(p))
	if gerr != nil || string(e.Value()) != k.cfg.Instance {
		return 0, err
	}
	return kv.Update(ctx, k.partitionKey(p), []byte(k.cfg.Instance), e.Revision())
}

// members counts the instances whose announcement has not expired.
func (k *Keeper) members(ctx context.Context, kv jetstream.KeyValue) (int, error) {
	l, err := kv.ListKeysFiltered(ctx, k.cfg.Group+".members.*")
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{} // a busy bucket may list a key twice
	for key := range l.Keys() {
		seen[key] = true
	}
	_ = l.Stop() // the lister stops itself once it listed every key
	if ctx.Err() != nil {
		return 0, ctx.Err() // the list may be cut short
	}
	return max(len(seen), 1), nil // this instance, if its announcement failed
}

func (k *Keeper) holding(p int) *holding {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.held[p]
}

// start runs p's work on a context of its own.
func (k *Keeper) start(ctx context.Context, p int, rev uint64, members, limit int) {
	wctx, cancel := context.WithCancel(ctx)
	h := &holding{rev: rev, cancel: cancel, done: make(chan struct{})}
	k.mu.Lock()
	k.held[p] = h
	n := len(k.held)
	k.mu.Unlock()
	k.log.Info("lease taken: partition consumed here", "partition", p, "held", n, "live_instances", members, "fair_share", limit)
	k.changed("taken", n)
	go func() {
		defer close(h.done)
		if err := k.work(wctx, p); err != nil && wctx.Err() == nil {
			k.log.Warn("partition work ended; releasing its lease", "partition", p, "err", err)
		}
	}()
}

// stop cancels p's work and waits for it to end, then forgets the lease.
func (k *Keeper) stop(p int, change, msg string, attrs ...any) {
	h := k.holding(p)
	if h == nil {
		return
	}
	h.cancel()
	<-h.done
	k.mu.Lock()
	delete(k.held, p)
	n := len(k.held)
	k.mu.Unlock()
	level := slog.LevelInfo
	if change == "lost" {
		level = slog.LevelWarn
	}
	k.log.Log(context.Background(), level, msg, append([]any{"partition", p, "held", n}, attrs...)...)
	k.changed(change, n)
}

// reapFinished forgets partitions whose work returned by itself; their
// leases are renewed no more and expire (or are taken back next round).
func (k *Keeper) reapFinished() {
	for _, p := range k.Held() {
		select {
		case <-k.holding(p).done:
			k.stop(p, "released", "partition work ended; lease left to expire")
		default:
		}
	}
}

func (k *Keeper) changed(change string, held int) {
	if k.cfg.Changed != nil {
		k.cfg.Changed(k.cfg.Group, change)
	}
	if k.cfg.Observe != nil {
		k.cfg.Observe(k.cfg.Group, held)
	}
}

// shutdown stops every partition's work, then deletes the leases (at their
// revision: one taken over meanwhile is not touched) and the announcement.
func (k *Keeper) shutdown(kv jetstream.KeyValue) {
	ctx, cancel := context.WithTimeout(context.Background(), k.cfg.TTL)
	defer cancel()
	for _, p := range k.Held() {
		rev := k.holding(p).rev
		k.stop(p, "released", "lease released: instance stopping")
		if err := kv.Delete(ctx, k.partitionKey(p), jetstream.LastRevision(rev)); err != nil {
			k.log.Warn("cannot delete a lease on stop; it expires after the TTL", "partition", p, "err", err)
		}
	}
	if err := kv.Delete(ctx, k.memberKey()); err != nil {
		k.log.Warn("cannot withdraw this instance's announcement; it expires after the TTL", "err", err)
	}
}

func hash(s string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return h.Sum32()
}
