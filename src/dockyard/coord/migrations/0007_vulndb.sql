-- The advisory database (#14, dockyard.vulndb): OSV advisories imported by `dockyard vulndb
-- update`, shared by every replica. The same tables as the SQLite store of one machine
-- (vulndb/store.py): advisories, one row per affected package keyed by (ecosystem, name), every id
-- an advisory goes by (for borrowing an alias's severity), and each import's time and counts.
CREATE TABLE vuln_advisories (
    id text PRIMARY KEY,
    modified double precision NOT NULL,
    withdrawn double precision,
    aliases jsonb NOT NULL,
    summary text NOT NULL,
    cvss_level text,
    cvss_score double precision,
    cvss_vector text,
    rating text
);
CREATE TABLE vuln_affected (
    advisory text NOT NULL,
    ecosystem text NOT NULL,
    release text NOT NULL,
    name text NOT NULL,
    data jsonb NOT NULL
);
CREATE INDEX vuln_affected_package ON vuln_affected (ecosystem, name);
CREATE INDEX vuln_affected_advisory ON vuln_affected (advisory);
CREATE TABLE vuln_aliases (
    alias text NOT NULL,
    advisory text NOT NULL
);
CREATE INDEX vuln_aliases_alias ON vuln_aliases (alias);
CREATE INDEX vuln_aliases_advisory ON vuln_aliases (advisory);
CREATE TABLE vuln_imports (
    id bigserial PRIMARY KEY,
    source text NOT NULL,
    started_at double precision NOT NULL,
    seconds double precision NOT NULL,
    counts jsonb NOT NULL
);
