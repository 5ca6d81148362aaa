-- +goose Up
-- The command gateway (internal/api): API keys, idempotency records and
-- the PostgreSQL variant of the shared rate limiter. Everything is new;
-- nothing older reads or writes these tables.

-- api_keys: producer services' credentials. A key is shown once when
-- created ("tw_<key_id>_<secret>"); only the SHA-256 of its secret is
-- stored (the secret is 256 random bits, so a fast hash is enough: there is
-- nothing to brute-force). rate_per_second / burst override the gateway's
-- default limits for this key when set.
CREATE TABLE core.api_keys (
    key_id          text        PRIMARY KEY,
    name            text        NOT NULL,
    secret_sha256   bytea       NOT NULL,
    scopes          text[]      NOT NULL,
    rate_per_second double precision CHECK (rate_per_second > 0),
    burst           integer     CHECK (burst > 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);

-- idempotency: one row per (caller, Idempotency-Key). state 'in_flight'
-- while the first request runs (lease_until bounds it, so a crashed
-- gateway does not block the key forever), then 'done' with the response
-- that is replayed byte for byte. Rows are deleted after expires_at.
CREATE TABLE core.idempotency (
    caller        text        NOT NULL,
    idem_key      text        NOT NULL,
    request_hash  bytea       NOT NULL,
    state         text        NOT NULL CHECK (state IN ('in_flight', 'done')),
    owner         uuid        NOT NULL,
    lease_until   timestamptz NOT NULL,
    status        integer,
    headers       jsonb,
    body          bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (caller, idem_key)
);
CREATE INDEX idempotency_expires ON core.idempotency (expires_at);

-- rate_limits: GCRA state (theoretical arrival time, Unix nanoseconds) per
-- caller and route class, for ratelimit's PostgreSQL store.
CREATE TABLE core.rate_limits (
    bucket     text   PRIMARY KEY,
    tat_ns     bigint NOT NULL,
    expires_ns bigint NOT NULL
);

-- +goose Down
DROP TABLE core.rate_limits;
DROP TABLE core.idempotency;
DROP TABLE core.api_keys;
