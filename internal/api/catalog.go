package api

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// CatalogPrice is a product's current price in the catalog, in integer
// minor units of Currency.
type CatalogPrice struct {
	Price    int64
	Currency string
}

// Catalog answers the current price of SKUs; SKUs it does not know are
// absent from the answer.
type Catalog interface {
	Prices(ctx context.Context, skus []string) (map[string]CatalogPrice, error)
}

// PostgresCatalog reads the catalog read model (public.product_search,
// fed by catalog.product_upserted events): the gateway is an edge, not a
// participant, so it reads the public read model and never inventory's
// inventory.products. Hazard: the read model trails the catalog by the
// projection's lag, so for a moment after an upsert a new SKU is unknown
// (422; the client retries) and a changed price is still the old one.
type PostgresCatalog struct{ Pool *pgxpool.Pool }

var _ Catalog = PostgresCatalog{}

// Prices implements Catalog with one indexed query.
func (c PostgresCatalog) Prices(ctx context.Context, skus []string) (map[string]CatalogPrice, error) {
	out := make(map[string]CatalogPrice, len(skus))
	if len(skus) == 0 {
		return out, nil
	}
	rows, err := c.Pool.Query(ctx, `SELECT sku, price, currency FROM public.product_search WHERE sku = ANY($1::text[])`, skus)
	if err != nil {
		return nil, fmt.Errorf("read catalog prices: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var sku string
		var p CatalogPrice
		if err := rows.Scan(&sku, &p.Price, &p.Currency); err != nil {
			return nil, fmt.Errorf("read catalog prices: %w", err)
		}
		out[sku] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read catalog prices: %w", err)
	}
	return out, nil
}
