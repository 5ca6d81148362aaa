package projections

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/projector"
)

// Categories maintains public.categories, the category tree (parent_id
// NULL for a root). The views category_tree (path and depth, by a
// recursive CTE) and category_revenue (sales rolled up the tree) are
// defined over it in migration 00202. A child may arrive before its
// parent: it is stored at once and joins the tree when the parent comes.
type Categories struct{}

var _ projector.Projection = Categories{}

// Name implements projector.Projection.
func (Categories) Name() string { return "categories" }

// Tables implements projector.Projection.
func (Categories) Tables() []string { return []string{"categories"} }

// Subjects implements projector.Projection.
func (Categories) Subjects() []string { return filters(events.CategoryUpsertedV1) }

// Apply implements projector.Projection with one upsert of the batch's
// last version of each category.
func (Categories) Apply(ctx context.Context, tx pgx.Tx, b *projector.Batch) error {
	type cat struct {
		c   events.Category
		at  time.Time
		seq int64
	}
	last := map[string]*cat{}
	var order []string
	for i := range b.Events {
		ev := &b.Events[i]
		var c events.Category
		if err := decode(ev, &c); err != nil {
			b.Reject(ev, err)
			continue
		}
		if _, ok := last[c.CategoryID]; !ok {
			order = append(order, c.CategoryID)
		}
		last[c.CategoryID] = &cat{c: c, at: ev.Time, seq: int64(ev.Seq)}
	}
	n := len(order)
	if n == 0 {
		return nil
	}
	ids, parents, names, ats, seqs := make([]string, n), make([]*string, n), make([]string, n), make([]time.Time, n), make([]int64, n)
	for i, id := range order {
		c := last[id]
		ids[i], names[i], ats[i], seqs[i] = id, c.c.Name, c.at, c.seq
		if c.c.ParentID != "" {
			parents[i] = &c.c.ParentID
		}
	}
	return b.Upsert(ctx, tx, "categories",
		[]string{"category_id text", "parent_id text", "name text", "updated_at timestamptz", "last_seq bigint"},
		[]string{"category_id"}, "", ids, parents, names, ats, seqs)
}
