-- State every replica must agree on, moved out of one process's memory or one machine's files:
-- robot accounts, failed logins, the token server's signing keys, shared secrets (the UI's
-- session key), quota usage, and replica liveness. Times are epoch seconds by now().
CREATE TABLE robots (
    name text PRIMARY KEY,
    id text NOT NULL,
    repositories jsonb NOT NULL,
    actions jsonb NOT NULL,
    created double precision NOT NULL,
    expires double precision,
    revoked double precision,
    hash text NOT NULL UNIQUE
);

CREATE TABLE login_failures (
    key text NOT NULL,
    at double precision NOT NULL
);
CREATE INDEX login_failures_key_at ON login_failures (key, at);
CREATE INDEX login_failures_at ON login_failures (at);

CREATE TABLE signing_keys (
    name text PRIMARY KEY,
    private_pem bytea NOT NULL,
    certificate_pem bytea NOT NULL,
    created_at double precision NOT NULL,
    retired_at double precision
);

CREATE TABLE shared_secrets (
    name text PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE quota_blobs (
    rule text NOT NULL,
    digest text NOT NULL,
    size bigint NOT NULL,
    added_at double precision NOT NULL,
    PRIMARY KEY (rule, digest)
);

CREATE TABLE quota_scans (
    rule text PRIMARY KEY,
    scanned_at double precision NOT NULL
);

CREATE TABLE replicas (
    id text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at double precision NOT NULL,
    beat_at double precision NOT NULL
);
