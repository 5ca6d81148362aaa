-- +goose Up
-- WebSocket backfill of an order channel (issue 6): the notifications of
-- one order, after a seq, in seq order. Expand-only: a nullable column the
-- notifier fills from this release on; older rows keep NULL (they are
-- still in the user's channel). Nothing needs contracting later.
ALTER TABLE public.notifications ADD COLUMN order_id text;
CREATE INDEX notifications_order_seq ON public.notifications (order_id, seq) WHERE order_id IS NOT NULL;

-- +goose Down
DROP INDEX public.notifications_order_seq;
ALTER TABLE public.notifications DROP COLUMN order_id;
