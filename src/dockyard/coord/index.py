"""The listing index's rows in PostgreSQL (``storage.index`` is what uses them).

Two tables (``migrations/0003_listing_index.sql``): repositories, and tags by repository, each row
present or a tombstone, stamped ``changed_at`` by the coordinator's clock. Write-through changes
always win (they are the newest knowledge); a reconcile's changes apply only to rows no one
changed since its walk of the store began (``before``), so it never undoes a push or a delete that
happened while it walked. Names sort in byte order (``COLLATE "C"``), as Python sorts them.

A ``last`` a client sent may hold a NUL, which PostgreSQL text cannot: names never hold one, so
"after ``a\\0b``" is "after ``a``" (:func:`text`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dockyard.coord.postgres import PostgresCoordinator
from dockyard.coord.schema import migrations

INDEX_MIGRATION = 3


def text(value: str | None) -> str | None:
    """``value`` cut at its first NUL: every name that sorts after the cut sorts after ``value``."""
    return value.split("\0", 1)[0] if value is not None else None


def _limit(n: int | None) -> int | None:
    return None if n is None else n + 1  # one more than asked: whether more remain


def _page(rows: list[Any], n: int | None) -> tuple[list[str], bool]:
    names = [str(r[0]) for r in rows]
    if n is not None and len(names) > n:
        return names[:n], True
    return names, False


def _pairs(pairs: Iterable[tuple[str, str]]) -> tuple[list[str], list[str]]:
    listed = list(pairs)
    return [r for r, _ in listed], [t for _, t in listed]


_PUT_REPOSITORY = (
    "INSERT INTO index_repositories (name, present, changed_at) VALUES (%(name)s, true, {now})"
    " ON CONFLICT (name) DO UPDATE SET present = true, changed_at = excluded.changed_at"
)
_PUT_TAGS = (
    "WITH r AS (INSERT INTO index_repositories (name, present, changed_at) VALUES (%(name)s, true, {now})"
    " ON CONFLICT (name) DO UPDATE SET present = true, changed_at = excluded.changed_at)"
    " INSERT INTO index_tags (repository, tag, present, changed_at)"
    " SELECT %(name)s, t, true, {now} FROM unnest(%(tags)s::text[]) AS t"
    " ON CONFLICT (repository, tag) DO UPDATE SET present = true, changed_at = excluded.changed_at"
)


class PostgresIndexRows:
    """The index's tables, through the coordinator's connection pool."""

    def __init__(self, coordinator: PostgresCoordinator) -> None:
        self.coordinator = coordinator

    async def _run(self, sql: str, **params: Any) -> list[Any]:
        return await self.coordinator.statement(sql, **params)

    async def now(self) -> float:
        return await self.coordinator.now()

    async def ensure_tables(self) -> None:
        """Create the tables if they are gone (dropped by hand: the index is derived, so a rebuild
        may recreate it); the migration is written to be run again."""
        sql = next(m.sql for m in migrations() if m.version == INDEX_MIGRATION)
        await self._run(sql)

    # -- reads ---------------------------------------------------------------------------------

    async def repositories(self) -> list[str]:
        rows = await self._run('SELECT name FROM index_repositories WHERE present ORDER BY name COLLATE "C"')
        return [str(r[0]) for r in rows]

    async def repositories_page(self, n: int, last: str | None) -> tuple[list[str], bool]:
        rows = await self._run(
            "SELECT name FROM index_repositories"
            ' WHERE present AND (%(last)s::text IS NULL OR name > %(last)s::text COLLATE "C")'
            ' ORDER BY name COLLATE "C" LIMIT %(limit)s',
            last=text(last),
            limit=_limit(n),
        )
        return _page(rows, n)

    async def tags(self, name: str) -> list[str]:
        rows = await self._run(
            'SELECT tag FROM index_tags WHERE repository = %(name)s AND present ORDER BY tag COLLATE "C"',
            name=name,
        )
        return [str(r[0]) for r in rows]

    async def tags_page(self, name: str, n: int | None, last: str | None) -> tuple[list[str], bool]:
        rows = await self._run(
            "SELECT tag FROM index_tags WHERE repository = %(name)s AND present"
            ' AND (%(last)s::text IS NULL OR tag > %(last)s::text COLLATE "C")'
            ' ORDER BY tag COLLATE "C" LIMIT %(limit)s',
            name=name,
            last=text(last),
            limit=_limit(n),
        )
        return _page(rows, n)

    async def snapshot(self) -> tuple[set[str], set[tuple[str, str]]]:
        """Every present repository and (repository, tag), for a reconcile's comparison."""
        repos = await self._run("SELECT name FROM index_repositories WHERE present")
        tags = await self._run("SELECT repository, tag FROM index_tags WHERE present")
        return {str(r[0]) for r in repos}, {(str(r[0]), str(r[1])) for r in tags}

    # -- write-through -------------------------------------------------------------------------

    async def put(self, name: str, tags: Sequence[str]) -> None:
        """``name`` (and ``tags`` in it) exist now: present, whatever the rows said."""
        unique = sorted(set(tags))  # one statement may not change a row twice
        await self._run(_PUT_TAGS if unique else _PUT_REPOSITORY, name=name, tags=unique)

    async def remove_tag(self, name: str, tag: str) -> None:
        """``tag`` left ``name``: a tombstone, so a reconcile that saw it in its walk keeps it out."""
        await self._run(
            "INSERT INTO index_tags (repository, tag, present, changed_at)"
            " VALUES (%(name)s, %(tag)s, false, {now})"
            " ON CONFLICT (repository, tag) DO UPDATE SET present = false, changed_at = excluded.changed_at",
            name=name,
            tag=tag,
        )

    async def remove_repository(self, name: str) -> None:
        """``name`` left the store, and every tag with it."""
        await self._run(
            "WITH t AS (UPDATE index_tags SET present = false, changed_at = {now}"
            " WHERE repository = %(name)s AND present)"
            " INSERT INTO index_repositories (name, present, changed_at) VALUES (%(name)s, false, {now})"
            " ON CONFLICT (name) DO UPDATE SET present = false, changed_at = excluded.changed_at",
            name=name,
        )

    # -- healing -------------------------------------------------------------------------------

    async def drop_tag(self, name: str, tag: str) -> bool:
        """A read found ``tag`` gone from the store: drop its row if present (no tombstone for a
        tag never listed, so clients probing names add no rows). True if a row was dropped."""
        rows = await self._run(
            "UPDATE index_tags SET present = false, changed_at = {now}"
            " WHERE repository = %(name)s AND tag = %(tag)s AND present RETURNING 1",
            name=name,
            tag=tag,
        )
        return bool(rows)

    async def drop_repository(self, name: str) -> bool:
        rows = await self._run(
            "WITH t AS (UPDATE index_tags SET present = false, changed_at = {now}"
            " WHERE repository = %(name)s AND present)"
            " UPDATE index_repositories SET present = false, changed_at = {now}"
            " WHERE name = %(name)s AND present RETURNING 1",
            name=name,
        )
        return bool(rows)

    # -- reconcile -----------------------------------------------------------------------------

    async def apply(
        self,
        *,
        add_repositories: Sequence[str],
        drop_repositories: Sequence[str],
        add_tags: Iterable[tuple[str, str]],
        drop_tags: Iterable[tuple[str, str]],
        before: float,
    ) -> tuple[int, int, int, int]:
        """Apply what a walk of the store (begun at ``before``) found different, to rows unchanged
        since ``before``; a tag is not added to a repository removed since. Returns how many
        rows each of the four changed."""
        added = await self._run(
            "INSERT INTO index_repositories (name, present, changed_at)"
            " SELECT n, true, {now} FROM unnest(%(names)s::text[]) AS n"
            " ON CONFLICT (name) DO UPDATE SET present = true, changed_at = excluded.changed_at"
            " WHERE index_repositories.changed_at < %(before)s RETURNING 1",
            names=list(add_repositories),
            before=before,
        )
        dropped = await self._run(
            "UPDATE index_repositories SET present = false, changed_at = {now}"
            " WHERE name = ANY(%(names)s::text[]) AND present AND changed_at < %(before)s RETURNING 1",
            names=list(drop_repositories),
            before=before,
        )
        repos, tags = _pairs(add_tags)
        tags_added = await self._run(
            "INSERT INTO index_tags (repository, tag, present, changed_at)"
            " SELECT x.r, x.t, true, {now} FROM unnest(%(repos)s::text[], %(tags)s::text[]) AS x(r, t)"
            " WHERE NOT EXISTS (SELECT 1 FROM index_repositories i WHERE i.name = x.r"
            " AND NOT i.present AND i.changed_at >= %(before)s)"
            " ON CONFLICT (repository, tag) DO UPDATE SET present = true, changed_at = excluded.changed_at"
            " WHERE index_tags.changed_at < %(before)s RETURNING 1",
            repos=repos,
            tags=tags,
            before=before,
        )
        repos, tags = _pairs(drop_tags)
        tags_dropped = await self._run(
            "UPDATE index_tags SET present = false, changed_at = {now}"
            " FROM unnest(%(repos)s::text[], %(tags)s::text[]) AS x(r, t)"
            " WHERE repository = x.r AND tag = x.t AND present AND changed_at < %(before)s RETURNING 1",
            repos=repos,
            tags=tags,
            before=before,
        )
        return len(added), len(dropped), len(tags_added), len(tags_dropped)

    async def purge(self, before: float) -> None:
        """Forget tombstones older than ``before``: no walk still running began before them."""
        await self._run("DELETE FROM index_tags WHERE NOT present AND changed_at < %(before)s", before=before)
        await self._run(
            "DELETE FROM index_repositories WHERE NOT present AND changed_at < %(before)s", before=before
        )
