-- +goose Up
-- Read-side foundation (issue 4). Everything here lives in schema public,
-- where analysts' psql finds it by default; the write side stays in core.

-- projection_checkpoints: one row per (projection, version). A projection
-- applies a batch of events and advances last_seq in the SAME transaction,
-- so a replayed or redelivered message with seq <= last_seq is skipped and
-- never applied twice. The row whose version is live is the one readers see;
-- a rebuild writes version N+1 alongside until it is switched in.
CREATE TABLE public.projection_checkpoints (
    name       text        NOT NULL,
    version    integer     NOT NULL,
    last_seq   bigint      NOT NULL DEFAULT 0,
    live       boolean     NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- lag: stream messages behind the head when the batch was applied.
    lag        bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (name, version)
);
-- At most one live version per projection.
CREATE UNIQUE INDEX projection_checkpoints_one_live
    ON public.projection_checkpoints (name) WHERE live;

-- notifications: the per-user inbox the WebSocket notifier fills (issue 5)
-- and the read API pages. seq is gap-free per user: the notifier takes the
-- next value from notification_counters in the same transaction that
-- inserts the row (UPDATE ... RETURNING locks the counter row, so two
-- writers for one user serialise and never leave a hole). event_id is
-- unique, so a redelivered event produces no second notification.
CREATE TABLE public.notifications (
    user_id    text        NOT NULL,
    seq        bigint      NOT NULL CHECK (seq > 0),
    event_id   text        NOT NULL UNIQUE,
    kind       text        NOT NULL,
    title      text        NOT NULL,
    body       text        NOT NULL DEFAULT '',
    links      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    payload    jsonb       NOT NULL, -- the CloudEvent, structured JSON
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, seq)
);

CREATE TABLE public.notification_counters (
    user_id  text   PRIMARY KEY,
    last_seq bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
);

-- +goose Down
DROP TABLE public.notification_counters;
DROP TABLE public.notifications;
DROP TABLE public.projection_checkpoints;
