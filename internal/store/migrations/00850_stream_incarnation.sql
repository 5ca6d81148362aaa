-- +goose Up
-- Which life of the EVENTS stream a checkpoint's last_seq counts in: the
-- stream's creation time as JetStream reports it. A stream recreated (NATS
-- reset, a new cluster) starts again at sequence 1 with another creation
-- time; a checkpoint recorded against the old one would skip the new
-- stream's first last_seq events and serve stale reads. Workers refuse to
-- run on a mismatch, and `tradewind projections rebuild --all` builds new
-- versions stamped with the current stream. NULL: not recorded yet (rows
-- from before this migration); the live worker records it at start.
ALTER TABLE public.projection_checkpoints ADD COLUMN stream_created timestamptz;

-- +goose Down
ALTER TABLE public.projection_checkpoints DROP COLUMN stream_created;
