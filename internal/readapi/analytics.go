package readapi

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SalesDay is a day of sales with running totals and 7-day averages.
type SalesDay struct {
	Day                 string  `json:"day"`
	Currency            string  `json:"currency"`
	Orders              int64   `json:"orders"`
	Units               int64   `json:"units"`
	Revenue             int64   `json:"revenue"`
	RevenueRunningTotal int64   `json:"revenue_running_total"`
	Revenue7dAvg        float64 `json:"revenue_7d_avg"`
	Orders7dAvg         float64 `json:"orders_7d_avg"`
}

// sales: GET /v1/analytics/sales?from=&to=&category=: per day (and
// currency), optionally one category and its descendants, with running
// totals from the start of the range and 7-day moving averages. Staff only.
func (a *API) sales(r *request) (any, error) {
	if !r.readsAll(ScopeAnalytics) {
		return nil, errForbidden()
	}
	from, err := dateParam(r, "from")
	if err != nil {
		return nil, err
	}
	to, err := dateParam(r, "to")
	if err != nil {
		return nil, err
	}
	if from != nil && to != nil && to.Before(*from) {
		return nil, errBadRequest("to", "must not be before from")
	}
	if from != nil && to != nil && to.Sub(*from) > 3660*24*time.Hour {
		return nil, errBadRequest("to", "the range is limited to ten years")
	}
	category, err := textParam(r, "category", false, 100)
	if err != nil {
		return nil, err
	}
	rows, err := r.tx.Query(r.Context(), `
		WITH cats AS (
			SELECT category_id FROM public.category_tree WHERE $3 = ANY (id_path)
		), days AS (
			SELECT day, currency, sum(orders)::bigint AS orders, sum(units)::bigint AS units, sum(revenue)::bigint AS revenue
			FROM public.sales_daily
			WHERE ($1::date IS NULL OR day >= $1) AND ($2::date IS NULL OR day <= $2)
			  AND ($3 = '' OR category_id IN (SELECT category_id FROM cats))
			GROUP BY day, currency
		)
		SELECT to_char(day, 'YYYY-MM-DD'), currency, orders, units, revenue,
		       sum(revenue) OVER (PARTITION BY currency ORDER BY day)::bigint,
		       round(sum(revenue) OVER w7 / 7.0, 2)::float8, round(sum(orders) OVER w7 / 7.0, 2)::float8
		FROM days
		WINDOW w7 AS (PARTITION BY currency ORDER BY day RANGE BETWEEN INTERVAL '6 days' PRECEDING AND CURRENT ROW)
		ORDER BY currency, day`, from, to, category)
	if err != nil {
		return nil, fmt.Errorf("sales: %w", err)
	}
	defer rows.Close()
	out := []SalesDay{}
	for rows.Next() {
		var d SalesDay
		if err := rows.Scan(&d.Day, &d.Currency, &d.Orders, &d.Units, &d.Revenue, &d.RevenueRunningTotal, &d.Revenue7dAvg, &d.Orders7dAvg); err != nil {
			return nil, fmt.Errorf("sales: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sales: %w", err)
	}
	return table[SalesDay]{name: "sales", key: "days", rows: out}, nil
}

// CategoryRevenue is a category of the tree with its revenue and units and
// those of all its descendants (the roll-up), in one currency.
type CategoryRevenue struct {
	CategoryID string  `json:"category_id"`
	ParentID   *string `json:"parent_id"`
	Name       string  `json:"name"`
	Depth      int32   `json:"depth"`
	Path       string  `json:"path"`
	Currency   string  `json:"currency"`
	Revenue    int64   `json:"revenue"`
	Units      int64   `json:"units"`
	OwnRevenue int64   `json:"own_revenue"`
}

// categoryRollup: GET /v1/analytics/categories: every category of the
// tree (category_tree, the recursive CTE) for every currency sold in, with
// revenue rolled up from its descendants (category_revenue); zero where
// nothing sold. Depth first (a parent before its subtree; siblings by id),
// per currency. Sales of products without a category, or in a category
// not (yet) in the tree, are in no row. Staff only.
func (a *API) categoryRollup(r *request) (any, error) {
	if !r.readsAll(ScopeAnalytics) {
		return nil, errForbidden()
	}
	rows, err := r.tx.Query(r.Context(), `
		SELECT t.category_id, t.parent_id, t.name, t.depth, t.path, c.currency,
		       coalesce(v.revenue, 0), coalesce(v.units, 0), coalesce(v.own_revenue, 0)
		FROM public.category_tree t
		CROSS JOIN (SELECT DISTINCT currency FROM public.sales_daily) c
		LEFT JOIN public.category_revenue v ON v.category_id = t.category_id AND v.currency = c.currency
		ORDER BY c.currency, t.id_path`)
	if err != nil {
		return nil, fmt.Errorf("category roll-up: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (CategoryRevenue, error) {
		var c CategoryRevenue
		err := row.Scan(&c.CategoryID, &c.ParentID, &c.Name, &c.Depth, &c.Path, &c.Currency, &c.Revenue, &c.Units, &c.OwnRevenue)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("category roll-up: %w", err)
	}
	return table[CategoryRevenue]{name: "categories", key: "categories", rows: out}, nil
}

// PivotRow is sales_category_pivot's row: one category's (not rolled up)
// metrics in one currency as columns.
type PivotRow struct {
	CategoryID      string   `json:"category_id"` // "" for products without a category
	Path            *string  `json:"path"`        // null when the category is not in the tree
	Currency        string   `json:"currency"`
	RevenueTotal    int64    `json:"revenue_total"`
	Revenue7d       int64    `json:"revenue_7d"`
	Revenue30d      int64    `json:"revenue_30d"`
	OrdersTotal     int64    `json:"orders_total"`
	UnitsTotal      int64    `json:"units_total"`
	AvgOrderRevenue *float64 `json:"avg_order_revenue"` // null without orders
}

// pivot: GET /v1/analytics/pivot: the rows of sales_category_pivot, with
// the category's path, by currency and revenue (highest first). The 7- and
// 30-day columns count back from the database's current date. Staff only.
func (a *API) pivot(r *request) (any, error) {
	if !r.readsAll(ScopeAnalytics) {
		return nil, errForbidden()
	}
	rows, err := r.tx.Query(r.Context(), `
		SELECT p.category_id, t.path, p.currency, p.revenue_total, p.revenue_7d, p.revenue_30d,
		       p.orders_total, p.units_total, p.avg_order_revenue::float8
		FROM public.sales_category_pivot p
		LEFT JOIN public.category_tree t USING (category_id)
		ORDER BY p.currency, p.revenue_total DESC, p.category_id`)
	if err != nil {
		return nil, fmt.Errorf("pivot: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (PivotRow, error) {
		var p PivotRow
		err := row.Scan(&p.CategoryID, &p.Path, &p.Currency, &p.RevenueTotal, &p.Revenue7d, &p.Revenue30d,
			&p.OrdersTotal, &p.UnitsTotal, &p.AvgOrderRevenue)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("pivot: %w", err)
	}
	return table[PivotRow]{name: "pivot", key: "categories", rows: out}, nil
}

// Duplicate is a suspected duplicate customer (dq_duplicate_customers):
// a current customer sharing its email or normalised name with an older
// one, keep_id.
type Duplicate struct {
	MatchedOn  string `json:"matched_on"` // email or name
	MatchKey   string `json:"match_key"`
	CustomerID string `json:"customer_id"`
	Email      string `json:"email"`
	Name       string `json:"name"`
	Rank       int64  `json:"rn"` // 2 for the first duplicate of the group, …
	KeepID     string `json:"keep_id"`
}

// duplicates: GET /v1/analytics/duplicates?limit=: the data quality
// report, by match and key, at most limit rows (default 1000). Customers'
// ids, emails and names are personal data: the caller needs both
// ScopeAnalytics and ScopeCustomers (an operator has both).
func (a *API) duplicates(r *request) (any, error) {
	if !r.readsAll(ScopeAnalytics) || !r.readsAll(ScopeCustomers) {
		return nil, errForbidden()
	}
	limit, err := limitParam(r, 1000, 10000)
	if err != nil {
		return nil, err
	}
	rows, err := r.tx.Query(r.Context(), `
		SELECT matched_on, match_key, customer_id, email, name, rn, keep_id
		FROM public.dq_duplicate_customers
		ORDER BY matched_on, match_key, rn
		LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("duplicates: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Duplicate, error) {
		var d Duplicate
		err := row.Scan(&d.MatchedOn, &d.MatchKey, &d.CustomerID, &d.Email, &d.Name, &d.Rank, &d.KeepID)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("duplicates: %w", err)
	}
	return table[Duplicate]{name: "duplicates", key: "duplicates", rows: out}, nil
}
