package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/projector"
)

// Inventory maintains public.inventory: on_hand, reserved and available
// (generated: on_hand - reserved) per SKU, and low_stock when available
// falls to reorder_level. A product upsert makes its SKU appear with no
// stock; restocked sets on_hand to the event's on_hand (absolute, as
// inventory reports it); reservations and movements add deltas.
type Inventory struct{}

var _ projector.Projection = Inventory{}

// Name implements projector.Projection.
func (Inventory) Name() string { return "inventory" }

// Tables implements projector.Projection.
func (Inventory) Tables() []string { return []string{"inventory"} }

// Subjects implements projector.Projection.
func (Inventory) Subjects() []string {
	return filters(events.ProductUpsertedV1, events.RestockedV1, events.StockReservedV1,
		events.StockReleasedV1, events.StockCommittedV1, events.StockReturnedV1)
}

// stockDelta folds a batch's events for one SKU: an absolute on_hand (the
// last restock) plus deltas after it.
type stockDelta struct {
	setOnHand          *int64
	dOnHand, dReserved int64
	at                 int
	seq                uint64
}

// Apply implements projector.Projection with one additive upsert.
func (Inventory) Apply(ctx context.Context, tx pgx.Tx, b *projector.Batch) error {
	deltas := map[string]*stockDelta{}
	var order []string
	get := func(sku string, i int) *stockDelta {
		d, ok := deltas[sku]
		if !ok {
			d = &stockDelta{}
			deltas[sku] = d
			order = append(order, sku)
		}
		d.at, d.seq = i, b.Events[i].Seq
		return d
	}
	for i := range b.Events {
		ev := &b.Events[i]
		switch ev.Type {
		case events.ProductUpsertedV1:
			var p events.Product
			if err := decode(ev, &p); err != nil {
				b.Reject(ev, err)
				continue
			}
			get(p.SKU, i)
		case events.RestockedV1:
			var r events.Restocked
			if err := decode(ev, &r); err != nil {
				b.Reject(ev, err)
				continue
			}
			d := get(r.SKU, i)
			on := r.OnHand
			d.setOnHand, d.dOnHand = &on, 0
		default:
			var m events.StockMovement // reserved's lines decode the same way
			if err := decode(ev, &m); err != nil {
				b.Reject(ev, err)
				continue
			}
			for _, l := range m.Lines {
				d := get(l.SKU, i)
				switch ev.Type {
				case events.StockReservedV1:
					d.dReserved += l.Quantity
				case events.StockReleasedV1:
					d.dReserved -= l.Quantity
				case events.StockCommittedV1:
					d.dOnHand -= l.Quantity
					d.dReserved -= l.Quantity
				case events.StockReturnedV1:
					d.dOnHand += l.Quantity
				}
			}
		}
	}
	if len(order) == 0 {
		return nil
	}
	n := len(order)
	skus, sets, dOn, dRes, seqs := make([]string, n), make([]*int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	ats := make([]any, n)
	for i, sku := range order {
		d := deltas[sku]
		skus[i], sets[i], dOn[i], dRes[i], seqs[i] = sku, d.setOnHand, d.dOnHand, d.dReserved, int64(d.seq)
		ats[i] = b.Events[d.at].Time
	}
	// Existing rows: the absolute on_hand, else the old one, plus the
	// deltas. Then the SKUs that had no row. One writer per version holds
	// the checkpoint lock, so nothing inserts in between.
	_, err := tx.Exec(ctx, `
		UPDATE `+b.Table("inventory")+` AS t
		SET on_hand = coalesce(s.set_on_hand, t.on_hand) + s.d_on_hand,
		    reserved = t.reserved + s.d_reserved, updated_at = s.at, last_seq = s.seq
		FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::timestamptz[], $6::bigint[])
		     AS s(sku, set_on_hand, d_on_hand, d_reserved, at, seq)
		WHERE t.sku = s.sku`, skus, sets, dOn, dRes, ats, seqs)
	if err != nil {
		return fmt.Errorf("update inventory: %w", err)
	}
	return b.Upsert(ctx, tx, "inventory",
		[]string{"sku text", "on_hand bigint", "reserved bigint", "updated_at timestamptz", "last_seq bigint"},
		[]string{"sku"}, "-", skus, addSet(sets, dOn), dRes, ats, seqs)
}

// addSet gives the on_hand of a new row: the absolute value, or 0, plus
// the delta.
func addSet(sets []*int64, d []int64) []int64 {
	out := make([]int64, len(d))
	for i := range d {
		out[i] = d[i]
		if sets[i] != nil {
			out[i] += *sets[i]
		}
	}
	return out
}
