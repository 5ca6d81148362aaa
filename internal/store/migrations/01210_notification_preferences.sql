-- +goose Up
-- Notification preferences (issue 13): the kinds a user muted. The
-- notifier reads the batch's users' rows in its transaction and makes no
-- notification of a muted kind (no inbox row, no seq, no message), so the
-- per-user seq stays gap-free. A user without a row mutes nothing.
-- Expand-only: a new table nothing older reads.
CREATE TABLE public.notification_preferences (
    user_id     text        PRIMARY KEY,
    muted_kinds text[]      NOT NULL DEFAULT '{}',
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE public.notification_preferences;
