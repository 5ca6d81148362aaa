package projector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/broker"
)

// A checkpoint's last_seq is a position in one incarnation of the EVENTS
// stream. When the stream is recreated (NATS reset with the database kept,
// a new cluster) or restored from an older backup, its sequences start
// again or fall back, and a checkpoint recorded against the old stream
// would skip the new stream's events while the read models look caught up.
// Two checks guard against it, at every worker start and in `projections
// status`:
//
//   - the stream's creation time (JetStream's StreamInfo.Created, kept
//     across server restarts, new for a recreated stream) must equal the
//     one recorded with the checkpoint (projection_checkpoints.stream_created);
//   - the checkpoint must not be ahead of the stream's last sequence.
//
// A projection failing either is stale: its worker applies nothing, /readyz
// says why, the read API answers 503, and `tradewind projections rebuild
// --all` builds new versions from the current stream.

// ErrStale: the checkpoint refers to another incarnation of the stream.
var ErrStale = errors.New("read model refers to another incarnation of the EVENTS stream")

// RebuildHint is the fix printed with every stale report.
const RebuildHint = "run `tradewind projections rebuild --all` (or reset the database too: `make clean`)"

// Stream is the EVENTS stream's identity and extent, read fresh.
type Stream struct {
	// Created is the stream's creation time at PostgreSQL's precision.
	Created time.Time
	LastSeq uint64
}

// ReadStream reads the EVENTS stream's info from the server.
func ReadStream(ctx context.Context, js jetstream.JetStream) (Stream, error) {
	st, err := js.Stream(ctx, broker.StreamEvents)
	if err != nil {
		return Stream{}, fmt.Errorf("stream %s info: %w", broker.StreamEvents, err)
	}
	info := st.CachedInfo()
	return Stream{Created: info.Created.UTC().Truncate(time.Microsecond), LastSeq: info.State.LastSeq}, nil
}

// CheckStream returns an error wrapping ErrStale when checkpoint c cannot
// be trusted against stream s, nil otherwise. A checkpoint that has not
// recorded a stream yet is checked only for being ahead.
func CheckStream(c Checkpoint, s Stream) error {
	if c.StreamCreated != nil && !c.StreamCreated.Equal(s.Created) {
		return fmt.Errorf("%w: projection %s v%d was built from the EVENTS stream created %s, but the stream now was created %s (NATS was reset or the stream recreated); %s",
			ErrStale, c.Name, c.Version, c.StreamCreated.UTC().Format(time.RFC3339Nano), s.Created.Format(time.RFC3339Nano), RebuildHint)
	}
	if c.LastSeq > s.LastSeq {
		return fmt.Errorf("%w: projection %s v%d has applied up to position %d, but the EVENTS stream ends at %d (NATS was reset or restored from an older backup); %s",
			ErrStale, c.Name, c.Version, c.LastSeq, s.LastSeq, RebuildHint)
	}
	return nil
}

// recordStream stamps checkpoint (name, version) with the stream's
// creation time when it has none yet.
func recordStream(ctx context.Context, q execer, name string, version int, s Stream) error {
	_, err := q.Exec(ctx, `UPDATE public.projection_checkpoints SET stream_created = $3
		WHERE name = $1 AND version = $2 AND stream_created IS NULL`, name, version, s.Created)
	if err != nil {
		return fmt.Errorf("projection %s v%d: record stream: %w", name, version, err)
	}
	return nil
}

// Stale checks every live checkpoint against the stream and returns the
// reasons by projection name (empty when all are consistent).
func Stale(ctx context.Context, q querier, js jetstream.JetStream) (map[string]error, error) {
	cps, err := Checkpoints(ctx, q)
	if err != nil {
		return nil, err
	}
	s, err := ReadStream(ctx, js)
	if err != nil {
		return nil, err
	}
	out := map[string]error{}
	for _, c := range cps {
		if !c.Live {
			continue
		}
		if err := CheckStream(c, s); err != nil {
			out[c.Name] = err
		}
	}
	return out, nil
}

// CheckCommandsInbox compares the COMMANDS positions the inbox recorded
// (read-your-writes resolves COMMANDS:<seq> tokens through them) with the
// COMMANDS stream: rows past its last sequence were written against
// another incarnation of the stream, and a token could resolve to an old
// command. It returns nil when consistent (or when nothing is recorded).
func CheckCommandsInbox(ctx context.Context, q querier, js jetstream.JetStream) error {
	var types []string
	for _, s := range events.All() {
		if s.Kind == events.Command {
			types = append(types, s.Type())
		}
	}
	var maxSeq *int64
	if err := q.QueryRow(ctx, `SELECT max(stream_seq) FROM core.inbox WHERE event_type = ANY($1)`, types).Scan(&maxSeq); err != nil {
		return fmt.Errorf("inbox: last command position: %w", err)
	}
	if maxSeq == nil {
		return nil
	}
	st, err := js.Stream(ctx, broker.StreamCommands)
	if err != nil {
		return fmt.Errorf("stream %s info: %w", broker.StreamCommands, err)
	}
	if last := st.CachedInfo().State.LastSeq; uint64(*maxSeq) > last {
		return fmt.Errorf("%w: the inbox recorded commands up to COMMANDS position %d, but the COMMANDS stream ends at %d: the database was used with another incarnation of NATS; position tokens may resolve early until the stream passes %d (reset the database too to start afresh: `make clean`)",
			ErrStale, *maxSeq, last, *maxSeq)
	}
	return nil
}

// StaleGuard gathers the workers' stream checks: it answers the read API
// and readiness per projection, and logs once, loudly, when the read side
// turns stale (and once when it is consistent again) instead of once per
// projection. The zero value is not usable; see NewStaleGuard.
type StaleGuard struct {
	log  *slog.Logger
	mu   sync.Mutex
	errs map[string]error
}

// NewStaleGuard returns a guard logging to log (nil: slog.Default()).
func NewStaleGuard(log *slog.Logger) *StaleGuard {
	if log == nil {
		log = slog.Default()
	}
	return &StaleGuard{log: log, errs: map[string]error{}}
}

// report records projection name's state: err nil means consistent.
func (g *StaleGuard) report(name string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	was := len(g.errs) > 0
	if err == nil {
		delete(g.errs, name)
	} else if _, ok := g.errs[name]; !ok {
		g.errs[name] = err
	} else {
		return
	}
	switch {
	case !was && len(g.errs) > 0:
		g.log.Error("READ MODELS STALE: projection checkpoints refer to another incarnation of the EVENTS stream; refusing reads and not ready until rebuilt",
			"reason", err, "fix", RebuildHint)
	case was && len(g.errs) == 0:
		g.log.Info("read models consistent with the EVENTS stream again; serving reads")
	}
}

// Err returns why projection name is stale, nil when it is not.
func (g *StaleGuard) Err(name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.errs[name]
}

// Names lists the stale projections, sorted.
func (g *StaleGuard) Names() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]string, 0, len(g.errs))
	for n := range g.errs {
		out = append(out, n)
	}
	sort.Strings(out)
	return slices.Clip(out)
}

// execer runs a statement: a pool, a connection or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}
