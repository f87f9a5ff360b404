"""Property: for any store of repositories and tags, every page the index answers is the page the
store walk answers (``n``, any ``last`` a client may send, unknown repositories included)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.coord.index import PostgresIndexRows
from dockyard.coord.memory import MemoryCoordinator
from dockyard.coord.postgres import PostgresCoordinator
from dockyard.errors import NameUnknown
from dockyard.oci.digest import Digest
from dockyard.storage import paths
from dockyard.storage.catalog import Catalog
from dockyard.storage.drivers import create_driver
from dockyard.storage.index import IndexedListing
from dockyard.storage.listing import Listing, StoreListing
from dockyard.storage.tags import TagStore

pytestmark = pytest.mark.anyio

DIGEST = Digest.parse("sha256:" + "ab" * 32)
names = st.from_regex(r"[a-z0-9]{1,3}([._-][a-z0-9]{1,2})?(/[a-z0-9]{1,2})?", fullmatch=True)
tag_names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,3}", fullmatch=True)
stores = st.dictionaries(names, st.sets(tag_names, max_size=6), max_size=8)
# What a client may send as ``last``: anything, names, and names cut by a NUL (which PostgreSQL text
# cannot hold).
with_nul = st.builds(lambda a, b: f"{a}\0{b}", names | tag_names, st.text(max_size=2))
lasts = st.one_of(st.none(), st.text(max_size=4), names, tag_names, with_nul)


@pytest.fixture
async def rows(dsn: str) -> AsyncIterator[PostgresIndexRows]:
    coordinator = PostgresCoordinator(dsn)
    try:
        yield PostgresIndexRows(coordinator)
    finally:
        await coordinator.close()


async def _page(listing: Listing, name: str | None, n: int | None, last: str | None) -> object:
    try:
        if name is None:
            return await listing.repositories_page(n or 1, last)
        return await listing.tags_page(name, n, last)
    except NameUnknown:
        return "NAME_UNKNOWN"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    store=stores,
    queries=st.lists(st.tuples(st.none() | names, st.none() | st.integers(1, 5), lasts), max_size=12),
)
async def test_index_pages_equal_store_pages(
    rows: PostgresIndexRows,
    store: dict[str, set[str]],
    queries: list[tuple[str | None, int | None, str | None]],
) -> None:
    driver = create_driver("inmemory", {}, redirect=False)
    for name, tags in store.items():
        await driver.put_content(paths.revision_link(name, DIGEST), str(DIGEST).encode())
        for tag in tags:
            await driver.put_content(paths.tag_current_link(name, tag), str(DIGEST).encode())
    walked = StoreListing(Catalog(driver, MemoryCoordinator()), TagStore(driver))
    await rows.coordinator.statement("TRUNCATE index_repositories, index_tags")
    indexed = IndexedListing(rows, driver, TagStore(driver))
    await indexed.reconcile()

    # Every page of the catalog and of each repository's tags, following ``last``.
    for name in [None, *store]:
        for n in (1, 2, 5):
            last: str | None = None
            while True:
                page = await _page(indexed, name, n, last)
                assert page == await _page(walked, name, n, last)
                assert isinstance(page, tuple)
                if not page[1]:
                    break
                last = page[0][-1]
    for name, n, last in queries:
        assert await _page(indexed, name, n, last) == await _page(walked, name, n, last), (name, n, last)
    assert await indexed.repositories() == await walked.repositories()
