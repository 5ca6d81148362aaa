package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tradewind/tradewind/events"
	"github.com/tradewind/tradewind/internal/projector"
)

// ProductSearch maintains public.product_search: every product with a
// generated, weighted tsvector (name A, category name B, description C,
// GIN-indexed) for ranked search with ts_rank, and a trigram index on
// lower(name) for autocomplete by prefix. It keeps its own copy of the
// category names (public.product_search_categories) so that renaming a
// category re-labels its products. Each product's images (column images,
// a JSON array, oldest first, one element per image hash) come from
// catalog.product_image_added; a product upsert leaves them as they are.
type ProductSearch struct{}

var _ projector.Projection = ProductSearch{}

// Name implements projector.Projection.
func (ProductSearch) Name() string { return "product_search" }

// Tables implements projector.Projection.
func (ProductSearch) Tables() []string {
	return []string{"product_search", "product_search_categories"}
}

// Subjects implements projector.Projection.
func (ProductSearch) Subjects() []string {
	return filters(events.ProductUpsertedV1, events.CategoryUpsertedV1, events.ProductImageAddedV1)
}

// Apply implements projector.Projection: an upsert of the batch's last
// version of each category and each product, then one UPDATE that copies
// category names onto the products concerned.
func (ProductSearch) Apply(ctx context.Context, tx pgx.Tx, b *projector.Batch) error {
	cats := map[string]string{}
	var catOrder []string
	type prod struct {
		p   events.Product
		at  time.Time
		seq int64
	}
	prods := map[string]*prod{}
	var prodOrder []string
	type img struct {
		sku, hash string
		doc       []byte
	}
	var imgs []img
	for i := range b.Events {
		ev := &b.Events[i]
		switch ev.Type {
		case events.CategoryUpsertedV1:
			var c events.Category
			if err := decode(ev, &c); err != nil {
				b.Reject(ev, err)
				continue
			}
			if _, ok := cats[c.CategoryID]; !ok {
				catOrder = append(catOrder, c.CategoryID)
			}
			cats[c.CategoryID] = c.Name
		case events.ProductUpsertedV1:
			var p events.Product
			if err := decode(ev, &p); err != nil {
				b.Reject(ev, err)
				continue
			}
			if _, ok := prods[p.SKU]; !ok {
				prodOrder = append(prodOrder, p.SKU)
			}
			prods[p.SKU] = &prod{p: p, at: ev.Time, seq: int64(ev.Seq)}
		case events.ProductImageAddedV1:
			var im events.ProductImage
			if err := decode(ev, &im); err != nil {
				b.Reject(ev, err)
				continue
			}
			// The element is the event's data without the SKU (the row's).
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(ev.Data, &fields); err != nil {
				b.Reject(ev, err)
				continue
			}
			delete(fields, "sku")
			doc, err := json.Marshal(fields)
			if err != nil {
				return fmt.Errorf("encode image %s of %s: %w", im.Hash, im.SKU, err)
			}
			imgs = append(imgs, img{sku: im.SKU, hash: im.Hash, doc: doc})
		}
	}
	if len(catOrder) > 0 {
		names := make([]string, len(catOrder))
		for i, id := range catOrder {
			names[i] = cats[id]
		}
		if err := b.Upsert(ctx, tx, "product_search_categories", []string{"category_id text", "name text"},
			[]string{"category_id"}, "", catOrder, names); err != nil {
			return err
		}
	}
	if n := len(prodOrder); n > 0 {
		names, descs, catIDs := make([]string, n), make([]string, n), make([]*string, n)
		prices, curs, ats, seqs := make([]int64, n), make([]string, n), make([]time.Time, n), make([]int64, n)
		for i, sku := range prodOrder {
			p := prods[sku]
			names[i], descs[i], prices[i], curs[i], ats[i], seqs[i] = p.p.Name, p.p.Description, p.p.Price, p.p.Currency, p.at, p.seq
			if p.p.CategoryID != "" {
				catIDs[i] = &p.p.CategoryID
			}
		}
		if err := b.Upsert(ctx, tx, "product_search",
			[]string{"sku text", "name text", "description text", "category_id text", "price bigint",
				"currency text", "updated_at timestamptz", "last_seq bigint"},
			[]string{"sku"}, "", prodOrder, names, descs, catIDs, prices, curs, ats, seqs); err != nil {
			return err
		}
	}
	// Images after the products (a product and its first image may share
	// a batch), in stream order; an image already listed (by hash) is not
	// listed twice. The catalog emits an image only for a product it has,
	// so its row exists.
	for _, im := range imgs {
		if _, err := tx.Exec(ctx, `UPDATE `+b.Table("product_search")+`
			SET images = images || jsonb_build_array($2::jsonb)
			WHERE sku = $1 AND NOT images @> jsonb_build_array(jsonb_build_object('hash', $3::text))`,
			im.sku, im.doc, im.hash); err != nil {
			return fmt.Errorf("add image %s to %s: %w", im.hash, im.sku, err)
		}
	}
	_, err := tx.Exec(ctx, `UPDATE `+b.Table("product_search")+` AS p
		SET category_name = coalesce(c.name, '')
		FROM `+b.Table("product_search")+` AS p2
		LEFT JOIN `+b.Table("product_search_categories")+` AS c ON c.category_id = p2.category_id
		WHERE p.sku = p2.sku AND (p.sku = ANY($1) OR p.category_id = ANY($2))
		  AND p.category_name IS DISTINCT FROM coalesce(c.name, '')`, prodOrder, catOrder)
	if err != nil {
		return fmt.Errorf("label products with category names: %w", err)
	}
	return nil
}
