-- +goose Up
-- Read models (issue 4). Each model's shape is a template table
-- proj.<table>_tmpl that is never written; version N of the model lives in
-- proj.<table>_v<N>, created LIKE the template (INCLUDING ALL: columns,
-- defaults, generated columns, indexes, exclusion constraints), and readers
-- query the view public.<table> over the live version. A rebuild creates
-- version N+1 from the template and swaps the views in one transaction, so
-- a change of shape is: a migration alters the template (and adds the
-- column to the live version and the view, expand-style), then
-- `tradewind projections rebuild NAME` fills it.
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE SCHEMA IF NOT EXISTS proj;

-- Events a projection could not understand: skipped, kept for inspection.
CREATE TABLE public.projection_rejects (
    name       text        NOT NULL,
    version    integer     NOT NULL,
    seq        bigint      NOT NULL,
    event_id   text        NOT NULL,
    event_type text        NOT NULL,
    reason     text        NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version, seq)
);

-- The 00001 table public.orders becomes a view over proj.orders_v1. Its
-- rows were derived from the EVENTS stream (kept forever), so the new
-- version starts at position 0 and replays; nothing else read the table.
DROP TABLE public.orders;

-- orders: current state of each order.
CREATE TABLE proj.orders_tmpl (
    order_id         uuid        PRIMARY KEY,
    customer_id      text        NOT NULL,
    status           text        NOT NULL, -- pending, confirmed, cancelled
    currency         text        NOT NULL,
    total            bigint      NOT NULL, -- minor units
    item_count       bigint      NOT NULL,
    lines            jsonb       NOT NULL, -- [{sku, quantity, unit_price}]
    stock_status     text,                 -- reserved, rejected, released, committed, returned
    payment_status   text,                 -- authorized, declined, captured, voided, refunded
    authorization_id text,
    cancel_reason    text,
    placed_at        timestamptz NOT NULL,
    deadline         timestamptz NOT NULL,
    confirmed_at     timestamptz,
    cancelled_at     timestamptz,
    updated_at       timestamptz NOT NULL,
    last_seq         bigint      NOT NULL  -- position of the last event applied
);
-- Keyset pagination, newest first: (placed_at, order_id) is unique and stable.
CREATE INDEX ON proj.orders_tmpl (customer_id, placed_at, order_id);
CREATE INDEX ON proj.orders_tmpl (status, placed_at, order_id);
CREATE INDEX ON proj.orders_tmpl (placed_at, order_id);

-- order_timeline: every saga step per order, with durations.
CREATE TABLE proj.order_timeline_tmpl (
    order_id        uuid        NOT NULL,
    seq             bigint      NOT NULL, -- stream position of the step
    event_id        text        NOT NULL,
    event_type      text        NOT NULL,
    step            text        NOT NULL, -- e.g. orders.placed, payments.authorized
    at              timestamptz NOT NULL,
    since_prev_ms   bigint      NOT NULL, -- since the order's previous step
    since_placed_ms bigint      NOT NULL,
    detail          jsonb       NOT NULL, -- the event's data
    PRIMARY KEY (order_id, seq)
);

-- inventory: stock per SKU.
CREATE TABLE proj.inventory_tmpl (
    sku           text        PRIMARY KEY,
    on_hand       bigint      NOT NULL DEFAULT 0,
    reserved      bigint      NOT NULL DEFAULT 0,
    available     bigint      GENERATED ALWAYS AS (on_hand - reserved) STORED,
    reorder_level bigint      NOT NULL DEFAULT 5,
    low_stock     boolean     GENERATED ALWAYS AS (on_hand - reserved <= reorder_level) STORED,
    updated_at    timestamptz NOT NULL,
    last_seq      bigint      NOT NULL
);
CREATE INDEX ON proj.inventory_tmpl (sku) WHERE on_hand - reserved <= reorder_level;

-- customers_history: SCD type 2, one row per version of a customer.
-- valid_to is 'infinity' for the current row; periods never overlap.
CREATE TABLE proj.customers_history_tmpl (
    customer_id text        NOT NULL,
    version     integer     NOT NULL,
    email       text        NOT NULL,
    name        text        NOT NULL,
    segment     text        NOT NULL DEFAULT '',
    country     text        NOT NULL DEFAULT '',
    valid_from  timestamptz NOT NULL,
    valid_to    timestamptz NOT NULL DEFAULT 'infinity',
    is_current  boolean     NOT NULL,
    event_id    text        NOT NULL,
    last_seq    bigint      NOT NULL,
    PRIMARY KEY (customer_id, version),
    CHECK (valid_from < valid_to),
    CHECK (is_current = (valid_to = 'infinity')),
    EXCLUDE USING gist (customer_id WITH =, tstzrange(valid_from, valid_to) WITH &&)
);
CREATE UNIQUE INDEX ON proj.customers_history_tmpl (customer_id) WHERE is_current;
CREATE INDEX ON proj.customers_history_tmpl (lower(email)) WHERE is_current;

-- categories: the category tree (parent_id NULL for a root).
CREATE TABLE proj.categories_tmpl (
    category_id text        PRIMARY KEY,
    parent_id   text,
    name        text        NOT NULL,
    updated_at  timestamptz NOT NULL,
    last_seq    bigint      NOT NULL
);
CREATE INDEX ON proj.categories_tmpl (parent_id);

-- product_search: products with a weighted document (name A, category B,
-- description C) for ranked full-text search, and a trigram index on the
-- lower-cased name for autocomplete by prefix.
CREATE TABLE proj.product_search_tmpl (
    sku           text        PRIMARY KEY,
    name          text        NOT NULL,
    description   text        NOT NULL DEFAULT '',
    category_id   text,
    category_name text        NOT NULL DEFAULT '',
    price         bigint      NOT NULL,
    currency      text        NOT NULL,
    document      tsvector    GENERATED ALWAYS AS (
        setweight(to_tsvector('english', name), 'A') ||
        setweight(to_tsvector('english', category_name), 'B') ||
        setweight(to_tsvector('english', description), 'C')) STORED,
    updated_at    timestamptz NOT NULL,
    last_seq      bigint      NOT NULL
);
CREATE INDEX ON proj.product_search_tmpl USING gin (document);
CREATE INDEX ON proj.product_search_tmpl USING gin (lower(name) gin_trgm_ops);
CREATE INDEX ON proj.product_search_tmpl (category_id);
-- The category names product_search denormalises (its own copy: a
-- projection reads only its own tables, since each is rebuilt alone).
CREATE TABLE proj.product_search_categories_tmpl (
    category_id text PRIMARY KEY,
    name        text NOT NULL
);

-- sales_daily: confirmed revenue per day (UTC), category and currency. A
-- cancellation after confirmation counts negatively on its own day.
CREATE TABLE proj.sales_daily_tmpl (
    day         date   NOT NULL,
    category_id text   NOT NULL, -- '' when the product had no category
    currency    text   NOT NULL,
    orders      bigint NOT NULL,
    units       bigint NOT NULL,
    revenue     bigint NOT NULL, -- minor units
    PRIMARY KEY (day, category_id, currency)
);
-- sales' own state: each product's category, and each open order's lines
-- with the category they had when the order was placed.
CREATE TABLE proj.sales_products_tmpl (
    sku         text PRIMARY KEY,
    category_id text NOT NULL
);
CREATE TABLE proj.sales_order_lines_tmpl (
    order_id    uuid    NOT NULL,
    line_no     integer NOT NULL,
    sku         text    NOT NULL,
    category_id text    NOT NULL,
    currency    text    NOT NULL,
    quantity    bigint  NOT NULL,
    unit_price  bigint  NOT NULL,
    confirmed   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (order_id, line_no)
);

-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['orders', 'order_timeline', 'inventory', 'customers_history',
        'categories', 'product_search', 'product_search_categories', 'sales_daily',
        'sales_products', 'sales_order_lines']
    LOOP
        EXECUTE format('CREATE TABLE proj.%I (LIKE proj.%I INCLUDING ALL)', t || '_v1', t || '_tmpl');
        EXECUTE format('CREATE VIEW public.%I AS SELECT * FROM proj.%I', t, t || '_v1');
    END LOOP;
END
$$;
-- +goose StatementEnd

INSERT INTO public.projection_checkpoints (name, version, last_seq, live) VALUES
    ('orders', 1, 0, true),
    ('order_timeline', 1, 0, true),
    ('inventory', 1, 0, true),
    ('customers_history', 1, 0, true),
    ('categories', 1, 0, true),
    ('product_search', 1, 0, true),
    ('sales', 1, 0, true);

-- +goose Down
DELETE FROM public.projection_checkpoints
    WHERE name IN ('orders', 'order_timeline', 'inventory', 'customers_history', 'categories', 'product_search', 'sales');
DROP SCHEMA proj CASCADE; -- every version of every model, and the views over them
DROP TABLE public.projection_rejects;
CREATE TABLE public.orders (
    order_id    uuid        PRIMARY KEY,
    customer_id text        NOT NULL,
    status      text        NOT NULL,
    currency    text        NOT NULL,
    total       bigint      NOT NULL,
    lines       jsonb       NOT NULL,
    placed_at   timestamptz NOT NULL,
    deadline    timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    last_seq    bigint      NOT NULL
);
CREATE INDEX orders_customer_created ON public.orders (customer_id, placed_at, order_id);
