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
	"github.com/tradewind/tradewind/internal/broker"
	"github.com/tradewind/tradewind/internal/projector"
	"github.com/tradewind/tradewind/internal/testenv"
	"github.com/tradewind/tradewind/projections"
)

// projectionConsumers lists the EVENTS consumers the projector opened
// (every one is named "projection-...").
func (e *env) projectionConsumers() []string {
	e.t.Helper()
	st, err := e.js.Stream(e.ctx, broker.StreamEvents)
	if err != nil {
		e.t.Fatal(err)
	}
	l := st.ConsumerNames(e.ctx)
	var out []string
	for n := range l.Name() {
		if strings.HasPrefix(n, "projection-") {
			out = append(out, n)
		}
	}
	if err := l.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// liveCheckpoints returns every projection's live checkpoint by name.
func (e *env) liveCheckpoints() map[string]projector.Checkpoint {
	e.t.Helper()
	out := map[string]projector.Checkpoint{}
	for _, p := range projections.All() {
		cp, err := projector.LiveCheckpoint(e.ctx, e.pool, p.Name())
		if err != nil {
			e.t.Fatal(err)
		}
		out[p.Name()] = cp
	}
	return out
}

// equalsRebuild rebuilds p from the stream (while the group runs) and
// fails unless the rebuilt version equals the live one: an event applied
// twice, or skipped, shows as a difference.
func (e *env) equalsRebuild(p projector.Projection) {
	e.t.Helper()
	live := e.snapshot(p)
	if _, err := projector.Rebuild(e.ctx, e.pool, e.js, p, projector.RebuildOptions{}); err != nil {
		e.t.Fatalf("rebuild %s: %v", p.Name(), err)
	}
	if rebuilt := e.snapshot(p); !reflect.DeepEqual(live, rebuilt) {
		e.t.Errorf("%s live:\n%v\nrebuilt from the stream:\n%v", p.Name(), live, rebuilt)
	}
}

// TestOneGroupBringsEveryReadModelToTheHead: the group reads the stream
// through one consumer and commits every read model's checkpoint in the
// same transaction; an event none of them reads (a position token of
// another context) is reached by every one of them all the same.
func TestOneGroupBringsEveryReadModelToTheHead(t *testing.T) {
	e := newEnv(t)
	last := e.seeded()
	if cs := e.projectionConsumers(); len(cs) != 1 {
		t.Errorf("projection consumers on EVENTS: %v, want exactly one", cs)
	}
	cps := e.liveCheckpoints()
	var stamps []time.Time
	for name, cp := range cps {
		if cp.LastSeq != last {
			t.Errorf("%s at %d, want %d", name, cp.LastSeq, last)
		}
		stamps = append(stamps, cp.UpdatedAt)
	}
	// updated_at is now(), the transaction's start: one transaction wrote
	// every checkpoint.
	slices.SortFunc(stamps, time.Time.Compare)
	if len(slices.CompactFunc(slices.Clone(stamps), time.Time.Equal)) != 1 {
		t.Errorf("checkpoints committed at %v: want one transaction for all", stamps)
	}

	// A subject no projection consumes.
	ack, err := e.js.Publish(e.ctx, "evt.test.unread.x-1", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range projections.All() {
		e.waitFor(p, ack.Sequence)
	}
	if got := e.rows(`SELECT name, seq FROM public.projection_rejects`); len(got) != 0 {
		t.Errorf("rejects: %v", got)
	}
}

// TestGroupCatchesUpAProjectionBehindWithoutReapplying: one read model is
// far behind the others (emptied, checkpoint 0: a restored or new model),
// so the group's consumer starts at the stream's first event and every
// other model receives the whole stream again. The one behind catches up;
// the others skip what their checkpoints cover (a replay is a no-op) and
// apply only what is new; each equals a rebuild from the stream.
func TestGroupCatchesUpAProjectionBehindWithoutReapplying(t *testing.T) {
	e := newEnv(t)
	stop := e.run(projections.All()...)
	last := e.seed()
	for _, p := range projections.All() {
		e.waitFor(p, last)
	}
	stop()
	before := e.snapshotAll()

	behind := projections.Categories{}
	cp, err := projector.LiveCheckpoint(e.ctx, e.pool, behind.Name())
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range behind.Tables() {
		e.exec(`TRUNCATE ` + projector.PhysicalTable(tb, cp.Version))
	}
	e.exec(`UPDATE public.projection_checkpoints SET last_seq = 0 WHERE name = $1 AND live`, behind.Name())
	// New events while stopped: a reservation (inventory counts it once).
	head := e.publish(events.StockReservedV1, uuidFor(6), events.StockReserved{OrderID: uuidFor(6), CustomerID: "c-2", Currency: "EUR", Total: 30000,
		Lines: []events.StockLine{{SKU: "PH-1", Quantity: 1}}})

	e.run(projections.All()...)
	for _, p := range projections.All() {
		e.waitFor(p, head)
	}
	after := e.snapshotAll()
	if !reflect.DeepEqual(after[behind.Name()], before[behind.Name()]) {
		t.Errorf("%s after catching up:\n%v\nbefore:\n%v", behind.Name(), after[behind.Name()], before[behind.Name()])
	}
	for _, n := range []string{"customers_history", "categories", "product_search"} {
		// Not concerned by the new event: unchanged by the replay.
		if !reflect.DeepEqual(after[n], before[n]) {
			t.Errorf("%s changed by a replay:\n%v\nbefore:\n%v", n, after[n], before[n])
		}
	}
	if got := e.one(`SELECT on_hand, reserved FROM public.inventory WHERE sku = 'PH-1'`); got["on_hand"] != 9.0 || got["reserved"] != 3.0 {
		t.Errorf("PH-1 = %v, want on_hand 9, reserved 3 (2 + the new one, once)", got)
	}
	for _, p := range projections.All() {
		e.equalsRebuild(p)
	}
}

// TestGroupFollowsARebuildSwitch: a member is rebuilt while the group
// runs, with events arriving before the switch (applied to the old
// version, caught up by the switch) and after it (applied to the new
// one). The group follows the new version and keeps the other members
// going; nothing is lost or applied twice.
func TestGroupFollowsARebuildSwitch(t *testing.T) {
	e := newEnv(t)
	e.seeded()
	p := projections.Inventory{}
	old, err := projector.LiveCheckpoint(e.ctx, e.pool, p.Name())
	if err != nil {
		t.Fatal(err)
	}
	res, err := projector.Rebuild(e.ctx, e.pool, e.js, p, projector.RebuildOptions{
		BatchSize: 5,
		BeforeSwitch: func(ctx context.Context) error {
			seq := e.publish(events.RestockedV1, "BK-1", events.Restocked{SKU: "BK-1", Quantity: 4, OnHand: 5})
			e.waitFor(p, seq) // the group applied it to the old version
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.NewVersion != old.Version+1 {
		t.Fatalf("rebuild %+v, want v%d", res, old.Version+1)
	}
	e.publish(events.StockReservedV1, uuidFor(7), events.StockReserved{OrderID: uuidFor(7), CustomerID: "c-1", Currency: "EUR", Total: 4000,
		Lines: []events.StockLine{{SKU: "BK-1", Quantity: 2}}})
	head := e.publish(events.CategoryUpsertedV1, "games", events.Category{CategoryID: "games", Name: "Games"})
	for _, q := range projections.All() {
		e.waitFor(q, head)
	}
	cp, err := projector.LiveCheckpoint(e.ctx, e.pool, p.Name())
	if err != nil {
		t.Fatal(err)
	}
	if cp.Version != res.NewVersion {
		t.Errorf("live inventory v%d, want v%d", cp.Version, res.NewVersion)
	}
	if got := e.one(`SELECT on_hand, reserved FROM public.inventory WHERE sku = 'BK-1'`); got["on_hand"] != 5.0 || got["reserved"] != 2.0 {
		t.Errorf("BK-1 = %v, want on_hand 5, reserved 2", got)
	}
	if got := e.rows(`SELECT category_id FROM public.category_tree WHERE category_id = 'games'`); len(got) != 1 {
		t.Errorf("the other members stopped: games category %v", got)
	}
	e.equalsRebuild(p)
}

// TestGroupExcludesAStaleMemberAndServesTheOthers: one member's
// checkpoint refers to another incarnation of the stream. The group
// leaves it out (its checkpoint does not move, it reports why, per
// projection) and keeps applying the others; once a rebuild replaces it,
// the group takes it back.
func TestGroupExcludesAStaleMemberAndServesTheOthers(t *testing.T) {
	e := newEnv(t)
	stop := e.run(projections.All()...)
	last := e.seed()
	for _, p := range projections.All() {
		e.waitFor(p, last)
	}
	stop()
	stale := projections.Sales{}
	e.exec(`UPDATE public.projection_checkpoints SET stream_created = '2001-01-01' WHERE name = $1 AND live`, stale.Name())
	guard := projector.NewStaleGuard(nil)
	g, _ := e.group(guard)
	testenv.Eventually(t, 20*time.Second, "the stale member reported", func() bool { return g.NotReady(stale.Name()) != "" })
	head := e.publish(events.CategoryUpsertedV1, "games", events.Category{CategoryID: "games", Name: "Games"})
	for _, p := range projections.All() {
		if p.Name() != stale.Name() {
			e.waitFor(p, head)
		}
	}
	if !g.Running() {
		t.Error("group not running with one member stale")
	}
	r := g.Readiness()
	for _, p := range projections.All() {
		want := ""
		if p.Name() == stale.Name() {
			want = g.NotReady(p.Name())
			if !errors.Is(g.Stale(p.Name()), projector.ErrStale) || !strings.Contains(want, "rebuild --all") {
				t.Errorf("%s: stale %v", p.Name(), g.Stale(p.Name()))
			}
		}
		if r["projection-"+p.Name()] != want {
			t.Errorf("readiness of %s = %q, want %q", p.Name(), r["projection-"+p.Name()], want)
		}
	}
	if got := guard.Names(); !slices.Equal(got, []string{stale.Name()}) {
		t.Errorf("guard: %v", got)
	}
	if cp := e.liveCheckpoints()[stale.Name()]; cp.LastSeq != last {
		t.Errorf("stale %s moved to %d, want %d", stale.Name(), cp.LastSeq, last)
	}

	if _, err := projector.Rebuild(e.ctx, e.pool, e.js, stale, projector.RebuildOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "the rebuilt member taken back", func() bool {
		return g.NotReady(stale.Name()) == "" && g.Running() && len(guard.Names()) == 0
	})
	head = e.publish(events.ProductUpsertedV1, "GM-1", events.Product{SKU: "GM-1", Name: "Chess", CategoryID: "games", Price: 2000, Currency: "EUR"})
	for _, p := range projections.All() {
		e.waitFor(p, head)
	}
	e.equalsRebuild(stale)
}
