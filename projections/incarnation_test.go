package projections_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/projector"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/projections"
)

// group runs the live group of every projection, reporting to guard,
// until the returned stop is called (or the test ends).
func (e *env) group(guard *projector.StaleGuard) (g *projector.Group, stop func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	g, err := projector.NewGroup(projections.All(), e.js, e.pool, projector.GroupConfig{BatchSize: 50, Guard: guard, StaleRecheck: 50 * time.Millisecond}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = g.Run(ctx); close(done) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
	}
	e.t.Cleanup(stop)
	return g, stop
}

func (e *env) snapshotAll() map[string]map[string][]string {
	out := map[string]map[string][]string{}
	for _, p := range projections.All() {
		out[p.Name()] = e.snapshot(p)
	}
	return out
}

// TestANewStreamUnderKeptCheckpointsIsStaleUntilRebuilt: NATS is reset
// (a new EVENTS stream) while the database keeps its checkpoints. The
// group must refuse to apply the new stream on top of the old read
// models, say why per model (naming the fix), and `rebuild --all` must
// make every read model equal to a fresh build from the new stream.
func TestANewStreamUnderKeptCheckpointsIsStaleUntilRebuilt(t *testing.T) {
	category := func(e *env) uint64 {
		return e.publish(events.CategoryUpsertedV1, "toys", events.Category{CategoryID: "toys", Name: "Toys"})
	}
	cases := []struct {
		name string
		// first fills the old stream, second the new one.
		first, second func(*env) uint64
		// legacy: the checkpoints recorded no stream (rows from before the
		// stream was recorded), so only "ahead of the stream" can tell.
		legacy bool
		want   string
	}{
		{name: "recreated with more events than the checkpoint", first: category, second: (*env).seed, want: "was built from the EVENTS stream created"},
		{name: "reset to fewer events", first: (*env).seed, second: category, want: "was built from the EVENTS stream created"},
		{name: "checkpoint ahead, no stream recorded", first: (*env).seed, second: category, legacy: true, want: "but the EVENTS stream ends at"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			guard := projector.NewStaleGuard(nil)
			_, stop := e.group(guard)
			last := tc.first(e)
			for _, p := range projections.All() {
				e.waitFor(p, last)
			}
			stop()
			if tc.legacy {
				e.exec(`UPDATE public.projection_checkpoints SET stream_created = NULL`)
			}

			// NATS reset, database kept.
			_, _, e.js = testenv.JetStream(t)
			tc.second(e)
			g, stop := e.group(guard)
			testenv.Eventually(t, 20*time.Second, "every projection reported stale", func() bool {
				for _, n := range names() {
					if g.NotReady(n) == "" {
						return false
					}
				}
				return true
			})
			for _, n := range names() {
				msg := g.NotReady(n)
				if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "tradewind projections rebuild --all") {
					t.Errorf("%s: reason %q: want it to contain %q and name the fix", n, msg, tc.want)
				}
				if !errors.Is(g.Stale(n), projector.ErrStale) {
					t.Errorf("%s: Stale() = %v, want ErrStale", n, g.Stale(n))
				}
				if r := g.Readiness()["projection-"+n]; r != msg {
					t.Errorf("%s: readiness %q, want the stale reason", n, r)
				}
			}
			if g.Running() {
				t.Error("group running with every member stale")
			}
			if got, want := guard.Names(), names(); !slices.Equal(got, want) {
				t.Errorf("guard: stale %v, want %v", got, want)
			}
			stale, err := projector.Stale(e.ctx, e.pool, e.js)
			if err != nil {
				t.Fatal(err)
			}
			if len(stale) != len(projections.All()) {
				t.Errorf("projector.Stale: %d stale projections, want %d: %v", len(stale), len(projections.All()), stale)
			}
			// Nothing of the new stream was applied on top of the old rows.
			for _, p := range projections.All() {
				cp, err := projector.LiveCheckpoint(e.ctx, e.pool, p.Name())
				if err != nil {
					t.Fatal(err)
				}
				if cp.LastSeq != last {
					t.Errorf("%s: checkpoint moved to %d while stale, want %d", p.Name(), cp.LastSeq, last)
				}
			}

			// rebuild --all, with the stale group still running.
			for _, p := range projections.All() {
				if _, err := projector.Rebuild(e.ctx, e.pool, e.js, p, projector.RebuildOptions{}); err != nil {
					t.Fatalf("rebuild %s: %v", p.Name(), err)
				}
			}
			testenv.Eventually(t, 20*time.Second, "every projection ready again", func() bool {
				for n, reason := range g.Readiness() {
					if reason != "" || g.NotReady(n[len("projection-"):]) != "" {
						return false
					}
				}
				return g.Running() && len(guard.Names()) == 0
			})
			// The live path continues from the rebuilt versions.
			head := e.publish(events.CategoryUpsertedV1, "games", events.Category{CategoryID: "games", ParentID: "toys", Name: "Games"})
			for _, p := range projections.All() {
				e.waitFor(p, head)
			}
			stop()
			rebuilt := e.snapshotAll()

			// A fresh build: empty read models, checkpoints at 0, the same
			// stream applied by a live group from the start.
			e.reset()
			_, _ = e.group(projector.NewStaleGuard(nil))
			for _, p := range projections.All() {
				e.waitFor(p, head)
			}
			fresh := e.snapshotAll()
			for _, p := range projections.All() {
				if !reflect.DeepEqual(rebuilt[p.Name()], fresh[p.Name()]) {
					t.Errorf("%s after rebuild --all:\n%v\nfresh build:\n%v", p.Name(), rebuilt[p.Name()], fresh[p.Name()])
				}
			}
		})
	}
}

func names() []string {
	var out []string
	for _, p := range projections.All() {
		out = append(out, p.Name())
	}
	slices.Sort(out)
	return out
}
