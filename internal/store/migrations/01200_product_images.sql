-- +goose Up
-- Product images (issue 13, the console's Catalog view): the catalogue
-- read model lists each product's images, from
-- catalog.product_image_added, oldest first. Expand only: a column with a
-- default, so the previous release keeps working (it never writes it).
-- The bytes live in the image Object Store, not here: each element is the
-- event's data without the SKU (hash, content_type, width, height, bytes,
-- url, thumbnails).
-- +goose StatementBegin
DO $$
DECLARE
    t text;
    live_version integer;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'proj' AND c.relkind = 'r' AND c.relname ~ '^product_search_(tmpl|v[0-9]+)$'
    LOOP
        EXECUTE format('ALTER TABLE proj.%I ADD COLUMN IF NOT EXISTS images jsonb NOT NULL DEFAULT ''[]''', t);
    END LOOP;
    SELECT version INTO live_version FROM public.projection_checkpoints WHERE name = 'product_search' AND live;
    IF live_version IS NOT NULL THEN
        EXECUTE format('CREATE OR REPLACE VIEW public.product_search AS SELECT * FROM proj.%I', 'product_search_v' || live_version);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- The view and the tables keep the column (a view cannot drop columns in
-- place): the previous release ignores it.
SELECT 1;
