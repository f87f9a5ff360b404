-- The derived index of repositories and tags (storage.index): a cache of what the store lists,
-- written through by every replica and rebuilt from the store at will (`dockyard index rebuild`,
-- which runs this file again when the tables were dropped: hence IF NOT EXISTS).
-- A row with present = false is a tombstone: a write-through removal that a reconcile whose walk
-- of the store began earlier must not undo. changed_at: epoch seconds by the database's clock.
-- COLLATE "C": byte order, the order distribution and the store listing sort names in.
CREATE TABLE IF NOT EXISTS index_repositories (
    name text COLLATE "C" PRIMARY KEY,
    present boolean NOT NULL,
    changed_at double precision NOT NULL
);

CREATE TABLE IF NOT EXISTS index_tags (
    repository text COLLATE "C" NOT NULL,
    tag text COLLATE "C" NOT NULL,
    present boolean NOT NULL,
    changed_at double precision NOT NULL,
    PRIMARY KEY (repository, tag)
);
