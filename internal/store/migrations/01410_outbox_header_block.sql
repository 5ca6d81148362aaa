-- +goose Up
-- The outbox keeps a message's headers as NATS writes them on the wire
-- (the "NATS/1.0" header block, bytea) instead of a JSON object: no JSON
-- to render per event on the saga's hot path and none for PostgreSQL to
-- parse into jsonb on insert. Expand step: new rows fill header and leave
-- headers NULL; the relay reads either. Rolling upgrade: a relay of the
-- previous release cannot publish a row the new release wrote (its headers
-- are NULL) and retries; the new release's writers publish their own rows
-- and its relay sweeps what they leave, so run the new relay before the
-- old one stops. A later release drops headers.
ALTER TABLE core.outbox ADD COLUMN header bytea;
ALTER TABLE core.outbox ALTER COLUMN headers DROP NOT NULL;
ALTER TABLE core.outbox ADD CONSTRAINT outbox_headers_present CHECK (header IS NOT NULL OR headers IS NOT NULL);

-- +goose Down
ALTER TABLE core.outbox DROP CONSTRAINT outbox_headers_present;
DELETE FROM core.outbox WHERE headers IS NULL;
ALTER TABLE core.outbox ALTER COLUMN headers SET NOT NULL;
ALTER TABLE core.outbox DROP COLUMN header;
