package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/metrics"
	"github.com/tradewind/tradewind/internal/pgtx"
	"github.com/tradewind/tradewind/internal/retry"
	"github.com/tradewind/tradewind/internal/tracing"
)

// GroupConfig tunes a live group.
type GroupConfig struct {
	// BatchSize bounds the events (of every member's subjects together)
	// applied in one transaction (default 500).
	BatchSize int
	// Linger is how long to wait for more events once one arrived while
	// the stream holds nothing more (default 5 ms): latency vs batch size.
	Linger time.Duration
	// IdleAdvance is how long the group waits with nothing to apply before
	// advancing its members' checkpoints to the stream head (default
	// 200 ms), so that a position token of another context's event is
	// "reached" by every read model.
	IdleAdvance time.Duration
	// Tracer, when set, traces each member's share of a batch as one span
	// "project <name>" linked to the traces of its events.
	Tracer trace.Tracer
	// Guard, when set, receives the members' stream checks (see
	// StaleGuard); without one the group logs a stale member itself.
	Guard *StaleGuard
	// StaleRecheck is how often the group checks whether a rebuild made a
	// stale member consistent again (default 1 s).
	StaleRecheck time.Duration
}

func (c *GroupConfig) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.Linger <= 0 {
		c.Linger = 5 * time.Millisecond
	}
	if c.IdleAdvance <= 0 {
		c.IdleAdvance = 200 * time.Millisecond
	}
	if c.StaleRecheck <= 0 {
		c.StaleRecheck = time.Second
	}
}

// Group keeps the live versions of several projections up to date with one
// ordered consumer and one transaction per batch (the protocol of the
// package doc, for every member at once):
//
//   - the consumer reads the union of the members' subjects from just
//     after the lowest of their live checkpoints;
//   - each batch's transaction locks every member's live checkpoint row
//     (in name order: see lockLive), gives each member only the events of
//     its own subjects above its own checkpoint, and advances every
//     checkpoint to the batch's last sequence, a member with no event in
//     the batch included: no event of its subjects lies below that
//     sequence unapplied. A member whose checkpoint is ahead (another
//     instance, a rebuild's switch) skips what it has and stays put;
//   - when the stream holds nothing more, every checkpoint advances to
//     the stream's head (caughtUpTo).
//
// Several groups (several processes) are safe, as several workers were:
// the locked checkpoints make a replayed or redelivered batch a no-op.
//
// A rebuild switching a member's live version makes the group's next
// batch fail with errSwitched (the member's locked version differs, or its
// row is gone); the group then restarts from the checkpoints, which is
// cheap and follows the new version.
//
// Stale members (their checkpoint refers to another incarnation of the
// EVENTS stream, ErrStale) are excluded: the group keeps applying to the
// others, reports each stale member through Stale, NotReady, Readiness and
// the Guard as a worker of its own did, and rechecks the stale ones every
// StaleRecheck; when one is consistent again (a rebuild switched in a
// version built from the current stream) the group restarts with it. With
// every member stale the group is not running and only rechecks.
type Group struct {
	ps      []Projection // by name
	js      jetstream.JetStream
	pool    *pgxpool.Pool
	cfg     GroupConfig
	log     *slog.Logger
	running atomic.Bool
	mu      sync.Mutex
	stale   map[string]error
}

// member is a projection the group applies to, at its live version.
type member struct {
	p       Projection
	version int
}

// NewGroup validates its dependencies; the projections must have distinct
// names.
func NewGroup(ps []Projection, js jetstream.JetStream, pool *pgxpool.Pool, cfg GroupConfig, log *slog.Logger) (*Group, error) {
	if len(ps) == 0 || js == nil || pool == nil {
		return nil, errors.New("projector: projections, JetStream and pool are required")
	}
	sorted := slices.Clone(ps)
	for _, p := range sorted {
		if p == nil {
			return nil, errors.New("projector: nil projection")
		}
	}
	slices.SortFunc(sorted, func(a, b Projection) int { return strings.Compare(a.Name(), b.Name()) })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Name() == sorted[i-1].Name() {
			return nil, fmt.Errorf("projector: projection %s given twice", sorted[i].Name())
		}
	}
	if log == nil {
		log = slog.Default()
	}
	cfg.setDefaults()
	return &Group{ps: sorted, js: js, pool: pool, cfg: cfg, log: log.With("projections", names(sorted)),
		stale: map[string]error{}}, nil
}

func names(ps []Projection) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name()
	}
	return out
}

// Name names the service.
func (g *Group) Name() string { return "projections" }

// Running reports whether the group is consuming (for discovery).
func (g *Group) Running() bool { return g.running.Load() }

// Stale returns why projection name's live version cannot be trusted
// (wrapping ErrStale), nil when it can (or name is not a member).
func (g *Group) Stale(name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stale[name]
}

// NotReady explains why projection name is not being applied because it
// is stale ("" when it is not stale).
func (g *Group) NotReady(name string) string {
	if err := g.Stale(name); err != nil {
		return err.Error()
	}
	return ""
}

// Readiness returns one check per member, keyed "projection-<name>": ""
// when the member is being applied, otherwise why not (its stale reason,
// or "not running"). /readyz reports each.
func (g *Group) Readiness() map[string]string {
	running := g.Running()
	out := make(map[string]string, len(g.ps))
	for _, p := range g.ps {
		reason := g.NotReady(p.Name())
		if reason == "" && !running {
			reason = "not running"
		}
		out["projection-"+p.Name()] = reason
	}
	return out
}

func (g *Group) setStale(name string, err error) {
	g.mu.Lock()
	_, was := g.stale[name]
	if err == nil {
		delete(g.stale, name)
	} else {
		g.stale[name] = err
	}
	g.mu.Unlock()
	if g.cfg.Guard != nil {
		g.cfg.Guard.report(name, err)
		return
	}
	switch {
	case err == nil && was:
		g.log.Info("projection consistent with the EVENTS stream again", "projection", name)
	case err != nil && !was:
		g.log.Error("READ MODEL STALE: refusing to apply events", "projection", name, "reason", err)
	}
}

// check reads p's live checkpoint and checks it against stream s; a
// checkpoint with no stream recorded records it.
func (g *Group) check(ctx context.Context, p Projection, s Stream) (Checkpoint, error) {
	cp, err := LiveCheckpoint(ctx, g.pool, p.Name())
	if err != nil {
		return cp, err
	}
	if err := CheckStream(cp, s); err != nil {
		return cp, err
	}
	if cp.StreamCreated == nil {
		if err := recordStream(ctx, g.pool, cp.Name, cp.Version, s); err != nil {
			return cp, err
		}
	}
	return cp, nil
}

// recheck checks the stale projections ps again, recording their state;
// it reports whether one of them is consistent now.
func (g *Group) recheck(ctx context.Context, ps []Projection) (bool, error) {
	s, err := ReadStream(ctx, g.js)
	if err != nil {
		return false, err
	}
	back := false
	for _, p := range ps {
		_, err := g.check(ctx, p, s)
		switch {
		case err == nil:
			back = true
		case errors.Is(err, ErrStale):
			g.setStale(p.Name(), err)
		default:
			return false, err
		}
	}
	return back, nil
}

// Run applies events until ctx ends, restarting after failures.
func (g *Group) Run(ctx context.Context) error {
	return retry.Forever(ctx, retry.Backoff{Base: 500 * time.Millisecond, Max: 30 * time.Second}, g.log,
		"projection group failed; restarting from the checkpoints", g.runOnce)
}

var errSwitched = errors.New("live version switched")

func (g *Group) runOnce(ctx context.Context) error {
	s, err := ReadStream(ctx, g.js)
	if err != nil {
		return err
	}
	var live []member
	var stale []Projection
	var from uint64
	for _, p := range g.ps {
		cp, err := g.check(ctx, p, s)
		if errors.Is(err, ErrStale) {
			// Applying the new stream's events on top of the old one's
			// would mix two histories: leave it out until a rebuild
			// replaces the version.
			g.setStale(p.Name(), err)
			stale = append(stale, p)
			continue
		}
		if err != nil {
			return err
		}
		if len(live) == 0 || cp.LastSeq < from {
			from = cp.LastSeq
		}
		live = append(live, member{p: p, version: cp.Version})
	}
	if len(live) == 0 {
		for ctx.Err() == nil {
			retry.Sleep(ctx, g.cfg.StaleRecheck)
			if back, err := g.recheck(ctx, stale); err != nil || back {
				return err
			}
		}
		return nil
	}
	sets := make([][]string, len(live))
	for i, m := range live {
		g.setStale(m.p.Name(), nil)
		sets[i] = m.p.Subjects()
	}
	src, err := openSource(ctx, g.js, "projections", unionSubjects(sets), from+1, 2*g.cfg.BatchSize)
	if err != nil {
		return err
	}
	defer src.close()
	g.running.Store(true)
	defer g.running.Store(false)
	last := from
	nextRecheck := time.Now().Add(g.cfg.StaleRecheck)
	for ctx.Err() == nil {
		if len(stale) > 0 && time.Now().After(nextRecheck) {
			back, err := g.recheck(ctx, stale)
			if err != nil || back {
				// Restart with the member that came back.
				return err
			}
			nextRecheck = time.Now().Add(g.cfg.StaleRecheck)
		}
		evs, pending, err := src.next(ctx, g.cfg.BatchSize, g.cfg.IdleAdvance, g.cfg.Linger)
		if err != nil {
			return err
		}
		var upTo uint64
		if len(evs) == 0 {
			if ctx.Err() != nil {
				return nil
			}
			head, ok, err := caughtUpTo(ctx, g.js, src)
			if err != nil {
				return err
			}
			if ok && head < last {
				// The stream went backwards under us: restart, and let the
				// check at start say why.
				return fmt.Errorf("EVENTS stream's head %d is behind the checkpoint %d", head, last)
			}
			if !ok || head == last {
				continue
			}
			upTo = head
		} else {
			upTo = evs[len(evs)-1].Seq
		}
		if err := g.apply(ctx, live, sets, evs, upTo, pending); err != nil {
			if errors.Is(err, errSwitched) {
				g.log.Info("a live version switched; restarting from the checkpoints")
				return nil
			}
			return err
		}
		last = upTo
	}
	return nil
}

// apply runs one batch (or, evs empty, an advance to upTo) for every live
// member in one transaction under their checkpoint locks.
func (g *Group) apply(ctx context.Context, live []member, sets [][]string, evs []Event, upTo, pending uint64) error {
	routed := route(evs, sets)
	memberNames := make([]string, len(live))
	for i, m := range live {
		prepare(m.p, routed[i])
		memberNames[i] = m.p.Name()
	}
	// The batch's commit does not wait for its WAL flush: the checkpoints
	// commit with the rows, and the stream (not an ack) is the source, so a
	// commit lost in a PostgreSQL crash loses both together and the group
	// applies the batch again from the older checkpoints. Saga state (the
	// runner's inbox and outbox, acked after commit) keeps synchronous
	// commits.
	err := pgx.BeginTxFunc(ctx, g.pool, pgtx.AsyncCommit, func(tx pgx.Tx) error {
		// The members' checkpoint advances and rejects go on the
		// transaction's tail: nothing after them reads them back (the
		// checkpoints were read under lockLive), so they cost one round
		// trip together instead of one per member (seven for the saga's
		// group, a third of a batch's round trips).
		ctx, tail := pgtx.With(ctx)
		cps, err := lockLive(ctx, tx, memberNames)
		if err != nil {
			return err
		}
		for i, m := range live {
			cp, ok := cps[m.p.Name()]
			if !ok || cp.Version != m.version {
				// A rebuild switched this member's live version (while we
				// waited on the old row, or before): follow the new one.
				return errSwitched
			}
			if err := g.applyMember(ctx, tx, m, cp.LastSeq, routed[i], upTo, pending); err != nil {
				return err
			}
		}
		return tail.Flush(ctx, tx)
	})
	if err != nil {
		return err
	}
	for i, m := range live {
		if n := len(routed[i]); n > 0 {
			metrics.SetProjectionLag(m.p.Name(), routed[i][n-1].Time)
		}
	}
	return nil
}

// applyMember applies one member's share of a batch, traced as its own
// span when the group has a tracer.
func (g *Group) applyMember(ctx context.Context, tx pgx.Tx, m member, lastSeq uint64, evs []Event, upTo, pending uint64) (err error) {
	if g.cfg.Tracer != nil && len(evs) > 0 && evs[len(evs)-1].Seq > lastSeq {
		tps := make([]string, 0, len(evs))
		for _, e := range evs {
			if e.Traceparent != "" {
				tps = append(tps, e.Traceparent)
			}
		}
		var span trace.Span
		ctx, span = tracing.StartBatch(ctx, g.cfg.Tracer, "project "+m.p.Name(), tps)
		defer func() { tracing.End(span, err) }()
	}
	_, err = applyBatch(ctx, tx, m.p, m.version, lastSeq, evs, upTo, pending)
	return err
}

// caughtUpTo reports the stream's head when every message of the source's
// subjects up to it has been received (and, the caller guarantees,
// applied): the head is read first, then the consumer's info must show
// nothing pending and, as its last delivery, the last message received
// (the server's delivered stream sequence runs ahead over messages of
// other subjects, so only the consumer sequence tells what is in flight).
func caughtUpTo(ctx context.Context, js jetstream.JetStream, src *source) (uint64, bool, error) {
	st, err := js.Stream(ctx, broker.StreamEvents)
	if err != nil {
		return 0, false, fmt.Errorf("stream info: %w", err)
	}
	head := st.CachedInfo().State.LastSeq
	ci, err := src.cons.Info(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("consumer info: %w", err)
	}
	if ci.NumPending > 0 || ci.NumAckPending > 0 {
		return 0, false, nil
	}
	switch {
	case src.lastConsumer == "" && ci.Delivered.Consumer == 0:
	case src.lastConsumer == ci.Name && src.lastConsumerSeq == ci.Delivered.Consumer:
	default:
		return 0, false, nil
	}
	return head, true, nil
}
