"""What repositories link, and how many stored bytes that is: the one walk behind the UI's and Hub
API's repository size (``browse``), the admin usage report (``storage.inventory``) and quotas
(``storage.quota``).

A repository links a blob through ``_layers`` and a manifest through ``_manifests/revisions``;
both count, each digest once per repository. A digest whose bytes are gone counts nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from dockyard.oci.digest import Digest
from dockyard.oci.reference import is_valid_name
from dockyard.storage import paths
from dockyard.storage.drivers.checked import CheckedDriver

_LINKS = ("_layers", "_manifests/revisions")


async def repositories(driver: CheckedDriver, *, include_without_manifests: bool = False) -> list[str]:
    """Every repository name, sorted, walked from the store (with ``include_without_manifests``,
    also those holding only uploads or layers)."""
    tree = await driver.list_tree(paths.REPOSITORIES)
    marker = ("_manifests", "_uploads", "_layers") if include_without_manifests else ("_manifests",)
    return sorted(
        rel
        for rel, children in tree.items()
        if rel and any(m in children for m in marker) and is_valid_name(rel)
    )


async def linked_digests(driver: CheckedDriver, name: str) -> set[Digest]:
    """Every blob and manifest ``name`` links."""
    digests: set[Digest] = set()
    for sub in _LINKS:
        digests.update(paths.digests_in(await driver.list_tree(f"{paths.repository(name)}/{sub}"), 2))
    return digests


async def linked_sizes(
    driver: CheckedDriver, names: Iterable[str], known: dict[Digest, int] | None = None
) -> dict[str, dict[Digest, int]]:
    """For each of ``names``, the stored size of each digest it links (gone ones left out).

    ``known`` is a cache of sizes the caller keeps across calls (content-addressed, so a size is
    never stale while the bytes exist); sizes looked up now are added to it, in one batch."""
    known = {} if known is None else known
    linked = {name: await linked_digests(driver, name) for name in names}
    wanted = sorted({d for digests in linked.values() for d in digests if d not in known})
    for digest, info in zip(
        wanted, await driver.stat_many([paths.blob_data(d) for d in wanted], files=True), strict=True
    ):
        if info is not None:
            known[digest] = info.size
    return {name: {d: known[d] for d in digests if d in known} for name, digests in linked.items()}
