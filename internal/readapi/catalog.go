package readapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Stock is a SKU's inventory.
type Stock struct {
	SKU          string    `json:"sku"`
	OnHand       int64     `json:"on_hand"`
	Reserved     int64     `json:"reserved"`
	Available    int64     `json:"available"`
	ReorderLevel int64     `json:"reorder_level"`
	LowStock     bool      `json:"low_stock"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// getInventory: GET /v1/inventory/{sku}.
func (a *API) getInventory(r *request) (any, error) {
	sku, err := pathText(r, "sku", 100)
	if err != nil {
		return nil, err
	}
	var s Stock
	err = r.tx.QueryRow(r.Context(), `SELECT sku, on_hand, reserved, available, reorder_level, low_stock, updated_at
		FROM public.inventory WHERE sku = $1`, sku).
		Scan(&s.SKU, &s.OnHand, &s.Reserved, &s.Available, &s.ReorderLevel, &s.LowStock, &s.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound("SKU " + sku)
	}
	if err != nil {
		return nil, fmt.Errorf("read inventory %s: %w", sku, err)
	}
	return s, nil
}

// Product is a search hit.
type Product struct {
	SKU          string   `json:"sku"`
	Name         string   `json:"name"`
	Description  string   `json:"description,omitempty"`
	CategoryID   *string  `json:"category_id"`
	CategoryName string   `json:"category_name"`
	Price        int64    `json:"price"`
	Currency     string   `json:"currency"`
	Rank         *float32 `json:"rank,omitempty"`
	// Images are the product's images, oldest first (the event's data
	// without the SKU); absent in autocomplete suggestions.
	Images json.RawMessage `json:"images,omitempty"`
}

// getProduct: GET /v1/products/{sku}, the product as the catalogue read
// model has it (the Location of the gateway's POST /v1/products).
func (a *API) getProduct(r *request) (any, error) {
	sku := r.PathValue("sku")
	if sku == "" || len(sku) > 64 {
		return nil, errBadRequest("sku", "must be 1 to 64 bytes")
	}
	rows, err := r.tx.Query(r.Context(), `
		SELECT sku, name, description, category_id, category_name, price, currency, NULL::real, images
		FROM public.product_search WHERE sku = $1`, sku)
	if err != nil {
		return nil, fmt.Errorf("read product %s: %w", sku, err)
	}
	list, err := scanProducts(rows, false)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, errNotFound("product " + sku)
	}
	return list[0], nil
}

// searchProducts: GET /v1/products/search?q=&limit=. q is parsed by
// websearch_to_tsquery, which accepts any text (quotes, "or", -negation)
// without syntax errors; hits are ordered by ts_rank over the weighted
// document (name > category > description), backed by its GIN index.
func (a *API) searchProducts(r *request) (any, error) {
	q, err := textParam(r, "q", true, 200)
	if err != nil {
		return nil, err
	}
	limit, err := limitParam(r, 20, 100)
	if err != nil {
		return nil, err
	}
	rows, err := r.tx.Query(r.Context(), `
		SELECT sku, name, description, category_id, category_name, price, currency, ts_rank(document, query) AS rank, images
		FROM public.product_search, websearch_to_tsquery('english', $1) AS query
		WHERE document @@ query
		ORDER BY rank DESC, sku LIMIT $2`, q, limit)
	if err != nil {
		return nil, fmt.Errorf("search products: %w", err)
	}
	return collectProducts(rows, true)
}

// autocomplete: GET /v1/products/autocomplete?prefix=&limit=: names
// starting with prefix (case-insensitive; LIKE wildcards in the input are
// literal), closest first, backed by the trigram index on lower(name).
func (a *API) autocomplete(r *request) (any, error) {
	prefix, err := textParam(r, "prefix", true, 100)
	if err != nil {
		return nil, err
	}
	limit, err := limitParam(r, 10, 50)
	if err != nil {
		return nil, err
	}
	esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.ToLower(prefix))
	rows, err := r.tx.Query(r.Context(), `
		SELECT sku, name, '' AS description, category_id, category_name, price, currency, NULL::real AS rank, NULL::jsonb AS images
		FROM public.product_search
		WHERE lower(name) LIKE $1 || '%'
		ORDER BY similarity(lower(name), $2) DESC, name, sku LIMIT $3`, esc, strings.ToLower(prefix), limit)
	if err != nil {
		return nil, fmt.Errorf("autocomplete: %w", err)
	}
	return collectProducts(rows, false)
}

func collectProducts(rows pgx.Rows, ranked bool) (any, error) {
	out, err := scanProducts(rows, ranked)
	if err != nil {
		return nil, err
	}
	return map[string]any{"products": out}, nil
}

func scanProducts(rows pgx.Rows, ranked bool) ([]Product, error) {
	defer rows.Close()
	out := []Product{}
	for rows.Next() {
		var p Product
		if err := rows.Scan(&p.SKU, &p.Name, &p.Description, &p.CategoryID, &p.CategoryName, &p.Price, &p.Currency, &p.Rank, &p.Images); err != nil {
			return nil, fmt.Errorf("read products: %w", err)
		}
		if !ranked {
			p.Rank = nil
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read products: %w", err)
	}
	return out, nil
}
