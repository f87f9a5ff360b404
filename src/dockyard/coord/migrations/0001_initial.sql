-- The coordinator's first schema: upload sessions, GC liveness, generations, leases.
-- Times are epoch seconds (double precision) by the database's clock, now().
CREATE TABLE upload_sessions (
    id text PRIMARY KEY,
    repository text NOT NULL,
    "offset" bigint NOT NULL DEFAULT 0,
    started_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    hash_state bytea,
    multipart_id text,
    parts jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX upload_sessions_updated_at ON upload_sessions (updated_at);

CREATE TABLE gc_references (
    key text PRIMARY KEY,
    at double precision NOT NULL
);

CREATE TABLE generations (
    topic text PRIMARY KEY,
    value bigint NOT NULL
);

CREATE TABLE leases (
    job text PRIMARY KEY,
    holder text NOT NULL,
    expires_at double precision NOT NULL
);
