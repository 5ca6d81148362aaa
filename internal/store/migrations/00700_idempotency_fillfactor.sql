-- +goose Up
-- Every accepted command inserts its idempotency row (the claim) and then
-- updates it with the response a moment later. With free space left in
-- each page the update can stay on the same page without touching the
-- indexes (a HOT update: no indexed column changes), which halves the
-- index writes and the page splits of the hot path. Applies to pages
-- written from now on; existing rows are not rewritten. Settings only:
-- safe under a rolling upgrade.
ALTER TABLE core.idempotency SET (fillfactor = 70);

-- +goose Down
ALTER TABLE core.idempotency RESET (fillfactor);
