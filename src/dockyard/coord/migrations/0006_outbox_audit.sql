-- Webhook outbox and audit log for replicas (#13). The outbox holds one row per event and
-- endpoint that wants it, deleted once that endpoint took it: ids give the queue order, and a
-- row that commits late (a lower id) is still sent, never skipped by a high-water mark. Each
-- endpoint's health (failures, last error, last success, counts) is one JSON row.
CREATE TABLE notification_outbox (
    id bigserial PRIMARY KEY,
    endpoint text NOT NULL,
    repository text NOT NULL,
    event jsonb NOT NULL,
    queued_at double precision NOT NULL
);
CREATE INDEX notification_outbox_endpoint_id ON notification_outbox (endpoint, id);

CREATE TABLE notification_endpoints (
    name text PRIMARY KEY,
    state jsonb NOT NULL
);

CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    action text NOT NULL,
    actor text,
    repository text,
    record jsonb NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
