-- +goose Up
-- Foundation: the exactly-once machinery (inbox, outbox) and the order
-- aggregate's write model, in schema "core". Read models live in "public",
-- where analysts' psql finds them by default.
CREATE SCHEMA IF NOT EXISTS core;

-- inbox: one row per (consumer, event id) ever applied. The runner inserts
-- the row in the same transaction as the handler's effects, so a message
-- redelivered after commit finds its row and is skipped.
CREATE TABLE core.inbox (
    consumer    text        NOT NULL,
    event_id    text        NOT NULL,
    event_type  text        NOT NULL,
    stream_seq  bigint      NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- outbox: messages committed with the effects that produced them, waiting
-- for the relay to publish them to JetStream. Rows are deleted once the
-- broker has acknowledged them; an id is only an order, never a cursor.
CREATE TABLE core.outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   text        NOT NULL,
    subject    text        NOT NULL,
    headers    jsonb       NOT NULL,
    body       bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The order aggregate (write model).
CREATE TABLE core.orders (
    order_id    uuid        PRIMARY KEY,
    customer_id text        NOT NULL,
    status      text        NOT NULL,
    currency    text        NOT NULL,
    total       bigint      NOT NULL,
    lines       jsonb       NOT NULL,
    deadline    timestamptz NOT NULL,
    placed_by   text        NOT NULL, -- the command's event id
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Read model: orders as analysts and the API see them.
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

-- +goose Down
DROP TABLE public.orders;
DROP TABLE core.orders;
DROP TABLE core.outbox;
DROP TABLE core.inbox;
DROP SCHEMA core;
