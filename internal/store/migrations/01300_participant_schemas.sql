-- +goose Up
-- One schema per saga participant (the participants became packages:
-- handlers/orders, handlers/inventory, handlers/payments). Each
-- participant's tables move out of "core" into its own schema, so who
-- owns a table is written in its name and a participant's SQL that names
-- another's schema stands out. The infrastructure tables (inbox, outbox,
-- saga_log, idempotency, api_keys, rate_limits, ...) stay in "core".
--
-- ALTER TABLE ... SET SCHEMA moves a table with its indexes, constraints
-- (primary keys, checks, foreign keys, which point at tables, not names)
-- and owned sequences; the table keeps its OID, rows, statistics and
-- grants. No view, function or trigger of the database names these tables
-- (the read views read the projections in public/proj), so nothing else
-- needs recreating. The move takes an ACCESS EXCLUSIVE lock on each table
-- for an instant; it rewrites nothing.
--
-- Rolling upgrade: the previous release still names core.<table>. For it,
-- each moved table leaves a view of the same name in "core" over the new
-- table (a simple view, so PostgreSQL lets the old code insert, update,
-- delete, lock it FOR UPDATE and use ON CONFLICT through it). Nothing in
-- this release reads them; the release after this one drops them
-- (DROP VIEW core.<table>) once no process of the previous release runs.
-- Schemas "orders", "inventory" and "payments" are new: nothing of that
-- name exists (schemas are core, public, proj); the analyst role gets no
-- USAGE on them (store.GrantAnalyst grants schema public only).
CREATE SCHEMA orders;
CREATE SCHEMA inventory;
CREATE SCHEMA payments;

ALTER TABLE core.orders            SET SCHEMA orders;
ALTER TABLE core.cancel_tombstones SET SCHEMA orders;
ALTER TABLE core.customers         SET SCHEMA orders;

ALTER TABLE core.inventory    SET SCHEMA inventory;
ALTER TABLE core.stock_orders SET SCHEMA inventory;
ALTER TABLE core.reservations SET SCHEMA inventory;
ALTER TABLE core.restocks     SET SCHEMA inventory;
ALTER TABLE core.products     SET SCHEMA inventory;
ALTER TABLE core.categories   SET SCHEMA inventory;

ALTER TABLE core.payments    SET SCHEMA payments;
ALTER TABLE core.payment_ops SET SCHEMA payments;

-- The previous release's names, for one release (see above).
CREATE VIEW core.orders            AS SELECT * FROM orders.orders;
CREATE VIEW core.cancel_tombstones AS SELECT * FROM orders.cancel_tombstones;
CREATE VIEW core.customers         AS SELECT * FROM orders.customers;
CREATE VIEW core.inventory         AS SELECT * FROM inventory.inventory;
CREATE VIEW core.stock_orders      AS SELECT * FROM inventory.stock_orders;
CREATE VIEW core.reservations      AS SELECT * FROM inventory.reservations;
CREATE VIEW core.restocks          AS SELECT * FROM inventory.restocks;
CREATE VIEW core.products          AS SELECT * FROM inventory.products;
CREATE VIEW core.categories        AS SELECT * FROM inventory.categories;
CREATE VIEW core.payments          AS SELECT * FROM payments.payments;
CREATE VIEW core.payment_ops       AS SELECT * FROM payments.payment_ops;

-- +goose Down
DROP VIEW core.payment_ops, core.payments, core.categories, core.products, core.restocks, core.reservations,
    core.stock_orders, core.inventory, core.customers, core.cancel_tombstones, core.orders;

ALTER TABLE payments.payment_ops SET SCHEMA core;
ALTER TABLE payments.payments    SET SCHEMA core;

ALTER TABLE inventory.categories   SET SCHEMA core;
ALTER TABLE inventory.products     SET SCHEMA core;
ALTER TABLE inventory.restocks     SET SCHEMA core;
ALTER TABLE inventory.reservations SET SCHEMA core;
ALTER TABLE inventory.stock_orders SET SCHEMA core;
ALTER TABLE inventory.inventory    SET SCHEMA core;

ALTER TABLE orders.customers         SET SCHEMA core;
ALTER TABLE orders.cancel_tombstones SET SCHEMA core;
ALTER TABLE orders.orders            SET SCHEMA core;

DROP SCHEMA payments;
DROP SCHEMA inventory;
DROP SCHEMA orders;
