package readapi

import (
	"fmt"
	"time"
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
	return map[string]any{"days": out}, nil
}
