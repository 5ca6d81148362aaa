-- +goose Up
-- The saga log gets about six rows an order, each written once and read
-- by order (the tests, operators' SQL). Its natural key, UNIQUE (order_id,
-- step, event_id), already finds an order's rows; the identity primary
-- key and the (order_id, id) index cost two more index insertions per row
-- on the saga's hot path and served no query the natural key does not.
-- Readers still order an order's rows by id (a sort of a few rows).
-- Dropping an index rewrites nothing; the table keeps its rows and id.
ALTER TABLE core.saga_log DROP CONSTRAINT saga_log_pkey;
DROP INDEX core.saga_log_order;

-- +goose Down
CREATE INDEX saga_log_order ON core.saga_log (order_id, id);
ALTER TABLE core.saga_log ADD PRIMARY KEY (id);
