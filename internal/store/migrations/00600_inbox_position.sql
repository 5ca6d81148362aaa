-- +goose Up
-- Read-your-writes resolves a command's position token (COMMANDS:<seq>)
-- through the inbox row its consumer wrote: index it by stream position.
-- Built concurrently so a large inbox is not locked during a rolling
-- upgrade (goose runs this file outside a transaction).
-- +goose NO TRANSACTION
CREATE INDEX CONCURRENTLY IF NOT EXISTS inbox_stream_seq ON core.inbox (stream_seq);

-- +goose Down
-- +goose NO TRANSACTION
DROP INDEX CONCURRENTLY IF EXISTS core.inbox_stream_seq;
