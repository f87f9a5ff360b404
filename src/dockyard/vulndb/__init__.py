"""The advisory database (#14): OSV-format advisories imported from osv.dev's per-ecosystem
``all.zip`` exports (or files an air-gapped site brings), kept in SQLite on one machine or in the
coordinator's PostgreSQL, and matched against an image's packages (a CycloneDX SBOM's purls).

- ``ecosystems``: OSV ecosystem names, distribution releases, purls → packages.
- ``osv``: one OSV record → an :class:`~dockyard.vulndb.osv.Advisory` (or ``OsvError``).
- ``severity``: CVSS vectors (``cvss``) and the ecosystems' own ratings → a severity level.
- ``versions``: each ecosystem's version order (``univers``) and OSV's range walk.
- ``store`` / ``pg``: the tables (SQLite; PostgreSQL migration 0007) and the import batches.
- ``importer``: streaming import of zips, by file or URL, with counts and timing.
- ``match``: an SBOM against the stored advisories → findings.
"""
