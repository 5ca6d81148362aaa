-- +goose Up
-- Analysts' views over the read models (docs/analysts.md). They read the
-- public.<model> views, so a projection rebuild (which re-points those in
-- place with CREATE OR REPLACE VIEW) never has to touch them.

-- The category tree with each category's path from its root and depth
-- (root = 0). A category whose parent has not arrived yet is not listed.
CREATE VIEW public.category_tree AS
WITH RECURSIVE tree AS (
    SELECT category_id, parent_id, name, 0 AS depth,
           ARRAY[category_id] AS id_path, name::text AS path
    FROM public.categories WHERE parent_id IS NULL
    UNION ALL
    SELECT c.category_id, c.parent_id, c.name, t.depth + 1,
           t.id_path || c.category_id, t.path || ' > ' || c.name
    FROM public.categories c
    JOIN tree t ON c.parent_id = t.category_id
    WHERE NOT c.category_id = ANY (t.id_path) -- a cycle stops here
)
SELECT category_id, parent_id, name, depth, path, id_path FROM tree;

-- Revenue rolled up the tree: each category's own sales plus all its
-- descendants', per currency.
CREATE VIEW public.category_revenue AS
SELECT a.category_id, a.name, a.path, a.depth, s.currency,
       sum(s.revenue)::bigint AS revenue, sum(s.units)::bigint AS units,
       sum(s.revenue) FILTER (WHERE s.category_id = a.category_id)::bigint AS own_revenue
FROM public.category_tree a
JOIN public.category_tree d ON a.category_id = ANY (d.id_path)
JOIN public.sales_daily s ON s.category_id = d.category_id
GROUP BY a.category_id, a.name, a.path, a.depth, s.currency;

-- Daily totals across categories with running totals and 7-day moving
-- averages (calendar days: a day without sales counts as zero).
CREATE VIEW public.sales_daily_running AS
WITH days AS (
    SELECT day, currency, sum(orders)::bigint AS orders, sum(units)::bigint AS units, sum(revenue)::bigint AS revenue
    FROM public.sales_daily GROUP BY day, currency
)
SELECT day, currency, orders, units, revenue,
       sum(revenue) OVER w_all::bigint AS revenue_running_total,
       sum(orders) OVER w_all::bigint AS orders_running_total,
       round(sum(revenue) OVER w_7 / 7.0, 2) AS revenue_7d_avg,
       round(sum(orders) OVER w_7 / 7.0, 2) AS orders_7d_avg
FROM days
WINDOW w_all AS (PARTITION BY currency ORDER BY day),
       w_7 AS (PARTITION BY currency ORDER BY day RANGE BETWEEN INTERVAL '6 days' PRECEDING AND CURRENT ROW);

-- One row per category and currency, its metrics as columns (a pivot by
-- conditional aggregation).
CREATE VIEW public.sales_category_pivot AS
SELECT category_id, currency,
       sum(revenue)::bigint AS revenue_total,
       coalesce(sum(revenue) FILTER (WHERE day > current_date - 7), 0)::bigint AS revenue_7d,
       coalesce(sum(revenue) FILTER (WHERE day > current_date - 30), 0)::bigint AS revenue_30d,
       sum(orders)::bigint AS orders_total,
       sum(units)::bigint AS units_total,
       CASE WHEN sum(orders) > 0 THEN round(sum(revenue)::numeric / sum(orders), 2) END AS avg_order_revenue
FROM public.sales_daily
GROUP BY category_id, currency;

-- Data quality: current customers sharing an email or a normalised name
-- (lower case, punctuation and repeated spaces removed). keep_id is the
-- oldest of the group; every other row is a suspected duplicate (rn > 1).
CREATE VIEW public.dq_duplicate_customers AS
WITH cur AS (
    SELECT customer_id, email, name, valid_from,
           lower(trim(email)) AS email_key,
           trim(regexp_replace(regexp_replace(lower(name), '[^[:alnum:][:space:]]', '', 'g'), '\s+', ' ', 'g')) AS name_key
    FROM public.customers_history WHERE is_current
), ranked AS (
    SELECT 'email' AS matched_on, email_key AS match_key, customer_id, email, name, valid_from,
           row_number() OVER (PARTITION BY email_key ORDER BY valid_from, customer_id) AS rn,
           first_value(customer_id) OVER (PARTITION BY email_key ORDER BY valid_from, customer_id) AS keep_id
    FROM cur
    UNION ALL
    SELECT 'name', name_key, customer_id, email, name, valid_from,
           row_number() OVER (PARTITION BY name_key ORDER BY valid_from, customer_id),
           first_value(customer_id) OVER (PARTITION BY name_key ORDER BY valid_from, customer_id)
    FROM cur WHERE name_key <> ''
)
SELECT matched_on, match_key, customer_id, email, name, rn, keep_id FROM ranked WHERE rn > 1;

-- Data quality: orders past their deadline without a terminal state.
CREATE VIEW public.dq_overdue_orders AS
SELECT order_id, customer_id, status, placed_at, deadline, now() - deadline AS overdue_by
FROM public.orders
WHERE status NOT IN ('confirmed', 'cancelled') AND deadline < now();

-- +goose Down
DROP VIEW public.dq_overdue_orders;
DROP VIEW public.dq_duplicate_customers;
DROP VIEW public.sales_category_pivot;
DROP VIEW public.sales_daily_running;
DROP VIEW public.category_revenue;
DROP VIEW public.category_tree;
