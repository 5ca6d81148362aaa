-- +goose Up
-- The order saga's write side (issue 3): the participants' own tables in
-- schema "core". Expand only: core.orders gains nullable columns, nothing
-- existing is dropped or rewritten, so the previous release keeps working.
-- Each participant reads and writes only its own tables (orders: orders,
-- customers; inventory: inventory, restocks, reservations, stock_orders,
-- products, categories; payments: payments, payment_ops); saga_log is
-- appended to by all of them.

-- Orders: the saga's outcome. status is pending, confirmed or cancelled.
ALTER TABLE core.orders
    ADD COLUMN cancel_reason    text,        -- set when status = 'cancelled'
    ADD COLUMN previous_status  text,        -- status before cancellation: pending or confirmed
    ADD COLUMN confirmed_at     timestamptz,
    ADD COLUMN cancelled_at     timestamptz,
    ADD COLUMN authorization_id text,        -- the provider's, once confirmed
    ADD COLUMN correlation_id   text;        -- of the command that placed it (the sweeper's events carry it)
ALTER TABLE core.orders
    ADD CONSTRAINT orders_status_known CHECK (status IN ('pending', 'confirmed', 'cancelled')) NOT VALID;
-- The deadline sweeper's work list: only pending orders, oldest deadline first.
CREATE INDEX orders_pending_deadline ON core.orders (deadline) WHERE status = 'pending';

-- Customers (from a CRM): current attributes; history lives on the read side.
CREATE TABLE core.customers (
    customer_id text        PRIMARY KEY,
    email       text        NOT NULL,
    name        text        NOT NULL,
    segment     text,
    country     text,
    updated_at  timestamptz NOT NULL  -- the upsert event's time: older upserts lose
);

-- Catalog: products and the category tree (a child may arrive before its
-- parent, hence no foreign key).
CREATE TABLE core.categories (
    category_id text        PRIMARY KEY,
    parent_id   text,
    name        text        NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE TABLE core.products (
    sku         text        PRIMARY KEY,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    category_id text,
    price       bigint      NOT NULL CHECK (price >= 0),
    currency    text        NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- Inventory per SKU. A SKU is known once it has a row here (a product
-- upsert or a restock creates it). Invariants, enforced by the database:
-- stock never goes negative and never more is reserved than is on hand.
-- At rest (no order pending), reserved = 0 and
-- on_hand = restocked - committed + returned.
CREATE TABLE core.inventory (
    sku        text        PRIMARY KEY,
    on_hand    bigint      NOT NULL DEFAULT 0,
    reserved   bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT inventory_on_hand_non_negative CHECK (on_hand >= 0),
    CONSTRAINT inventory_reserved_non_negative CHECK (reserved >= 0),
    CONSTRAINT inventory_reserved_within_on_hand CHECK (reserved <= on_hand)
);

-- Every restock applied, keyed by the command's event id: the "restocked"
-- term of the stock equation.
CREATE TABLE core.restocks (
    event_id   text        PRIMARY KEY,
    sku        text        NOT NULL REFERENCES core.inventory (sku),
    quantity   bigint      NOT NULL CHECK (quantity > 0),
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX restocks_sku ON core.restocks (sku);

-- Inventory's view of each order it heard of. status:
--   reserved  every line reserved (reservations rows are 'reserved')
--   rejected  nothing reserved (reason out_of_stock or unknown_sku)
--   released  reservation given back (order cancelled before confirmation)
--   committed units left on_hand (order confirmed)
--   returned  committed units put back (order cancelled after confirmation)
--   cancelled tombstone: orders.cancelled arrived before orders.placed, so
--             a late orders.placed reserves nothing
CREATE TABLE core.stock_orders (
    order_id   uuid        PRIMARY KEY,
    status     text        NOT NULL CHECK (status IN ('reserved', 'rejected', 'released', 'committed', 'returned', 'cancelled')),
    reason     text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Reservation lines: one row per order and SKU (an order's lines summed by
-- SKU), all with the status of their stock_orders row (except 'rejected'
-- and 'cancelled', which have no lines).
CREATE TABLE core.reservations (
    order_id   uuid        NOT NULL REFERENCES core.stock_orders (order_id),
    sku        text        NOT NULL REFERENCES core.inventory (sku),
    quantity   bigint      NOT NULL CHECK (quantity > 0),
    status     text        NOT NULL CHECK (status IN ('reserved', 'released', 'committed', 'returned')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, sku)
);
CREATE INDEX reservations_sku_status ON core.reservations (sku, status);

-- Payments: one row per order the payment participant heard of. status:
--   new        row exists, nothing done at the provider (e.g. the order
--              was cancelled before its stock was reserved)
--   authorized authorization_id holds the provider's authorization
--   declined   the provider declined (decline_code)
--   captured   the authorization was captured (the customer is charged)
--   voided     the authorization was voided (never charged)
--   refunded   the capture was refunded
-- order_cancelled / order_confirmed record what payments has heard from
-- the orders participant, so late events are judged by state, not order.
CREATE TABLE core.payments (
    order_id         uuid        PRIMARY KEY,
    customer_id      text,
    currency         text,
    amount           bigint      NOT NULL DEFAULT 0 CHECK (amount >= 0),
    status           text        NOT NULL DEFAULT 'new'
        CHECK (status IN ('new', 'authorized', 'declined', 'captured', 'voided', 'refunded')),
    authorization_id text,
    decline_code     text,
    order_confirmed  boolean     NOT NULL DEFAULT false,
    order_cancelled  boolean     NOT NULL DEFAULT false,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Every successful operation at the provider, once: what Tradewind
-- believes the provider's ledger holds. op is authorize, capture, void or
-- refund; (order_id, op) is unique, so a double charge or double refund
-- cannot be recorded.
CREATE TABLE core.payment_ops (
    order_id        uuid        NOT NULL REFERENCES core.payments (order_id),
    op              text        NOT NULL CHECK (op IN ('authorize', 'capture', 'void', 'refund')),
    provider_id     text        NOT NULL, -- authorization, capture, void or refund id
    idempotency_key text        NOT NULL,
    amount          bigint      NOT NULL CHECK (amount >= 0),
    event_id        text        NOT NULL, -- the message whose handling made the call
    at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, op)
);

-- The saga log: one row per step a participant took (or deliberately
-- skipped, outcome 'ignored') for an order, for the timeline on the read
-- side and the dashboard. event_id/event_type are the message that
-- triggered the step ('deadline' for the sweeper); emitted_* the event it
-- produced, if any. Rows are written in the step's transaction, so each
-- step appears once.
CREATE TABLE core.saga_log (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     uuid        NOT NULL,
    step         text        NOT NULL,
    participant  text        NOT NULL,
    event_id     text        NOT NULL,
    event_type   text        NOT NULL,
    outcome      text        NOT NULL,
    detail       text,
    emitted_id   text,
    emitted_type text,
    at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, step, event_id)
);
CREATE INDEX saga_log_order ON core.saga_log (order_id, id);

-- +goose Down
DROP TABLE core.saga_log;
DROP TABLE core.payment_ops;
DROP TABLE core.payments;
DROP TABLE core.reservations;
DROP TABLE core.stock_orders;
DROP TABLE core.restocks;
DROP TABLE core.inventory;
DROP TABLE core.products;
DROP TABLE core.categories;
DROP TABLE core.customers;
DROP INDEX core.orders_pending_deadline;
ALTER TABLE core.orders
    DROP CONSTRAINT orders_status_known,
    DROP COLUMN correlation_id,
    DROP COLUMN authorization_id,
    DROP COLUMN cancelled_at,
    DROP COLUMN confirmed_at,
    DROP COLUMN previous_status,
    DROP COLUMN cancel_reason;
