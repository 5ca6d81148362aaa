-- +goose Up
-- PlaceOrder v2's fields kept on the order (issue 10, item 6) and the
-- orders participant's rejection of a command it cannot place (issue 11,
-- §1). Expand only: nullable columns and a wider status check, so the
-- previous release keeps working (it never writes 'rejected').

-- The orders participant's own copy: where to deliver, the promotion code.
ALTER TABLE core.orders
    ADD COLUMN shipping_address jsonb, -- events.ShippingAddress, NULL when the command had none
    ADD COLUMN promo_code       text;
-- rejected: the command could not be placed (e.g. its total is below 1);
-- the saga never started, nothing is reserved or charged, the id is taken.
ALTER TABLE core.orders DROP CONSTRAINT orders_status_known;
ALTER TABLE core.orders
    ADD CONSTRAINT orders_status_known CHECK (status IN ('pending', 'confirmed', 'cancelled', 'rejected')) NOT VALID;

-- The orders read model: the template, every version (live or being
-- rebuilt) and the view over the live one.
-- +goose StatementBegin
DO $$
DECLARE
    t text;
    live_version integer;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'proj' AND c.relkind = 'r' AND c.relname ~ '^orders_(tmpl|v[0-9]+)$'
    LOOP
        EXECUTE format('ALTER TABLE proj.%I ADD COLUMN IF NOT EXISTS shipping_address jsonb, ADD COLUMN IF NOT EXISTS promo_code text', t);
    END LOOP;
    SELECT version INTO live_version FROM public.projection_checkpoints WHERE name = 'orders' AND live;
    IF live_version IS NOT NULL THEN
        EXECUTE format('CREATE OR REPLACE VIEW public.orders AS SELECT * FROM proj.%I', 'orders_v' || live_version);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- The view keeps the columns (a view cannot drop columns in place); the
-- tables keep them too: the previous release ignores them.
ALTER TABLE core.orders DROP CONSTRAINT orders_status_known;
ALTER TABLE core.orders
    ADD CONSTRAINT orders_status_known CHECK (status IN ('pending', 'confirmed', 'cancelled')) NOT VALID;
ALTER TABLE core.orders DROP COLUMN promo_code, DROP COLUMN shipping_address;
