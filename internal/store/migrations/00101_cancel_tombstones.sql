-- +goose Up
-- The orders participant remembers a customer's cancel that arrived before
-- its order (issue 3): the cancel command and the place command travel on
-- one stream, but a producer may publish them in either order and a
-- redelivery may reorder them. Instead of retrying the cancel until it is
-- dead-lettered, orders records a tombstone here; placing the order takes
-- (deletes) it and cancels the order at once with reason customer.
-- Tombstones are bounded: one expires after expires_at (requested_at +
-- handlers.CancelTombstoneTTL, 8 days: longer than the COMMANDS stream keeps
-- a command) and the deadline sweeper deletes expired ones. Expand only: a
-- new table, read and written by the orders participant alone.
CREATE TABLE core.cancel_tombstones (
    order_id     uuid        PRIMARY KEY,
    command_id   text        NOT NULL, -- the cancel command's event id
    requested_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
-- The sweeper's purge: expired tombstones, oldest first.
CREATE INDEX cancel_tombstones_expires ON core.cancel_tombstones (expires_at);

-- +goose Down
DROP TABLE core.cancel_tombstones;
