-- Scan jobs (#14): the queue of images waiting for their SBOMs, and each image's last result.
-- A job is one row per repository and digest (queuing it again only moves queued_at); the
-- scanner deletes it when done only if queued_at is still the one it read, so a push that
-- queued the image again while it was being scanned is not lost.
CREATE TABLE scan_queue (
    key text PRIMARY KEY,
    repository text NOT NULL,
    digest text NOT NULL,
    reason text NOT NULL,
    queued_at double precision NOT NULL
);
CREATE INDEX scan_queue_queued_at ON scan_queue (queued_at);

CREATE TABLE scan_results (
    key text PRIMARY KEY,
    repository text NOT NULL,
    digest text NOT NULL,
    result jsonb NOT NULL,
    finished_at double precision NOT NULL
);
