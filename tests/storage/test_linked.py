"""One count of the bytes repositories link, and the three readers of it agree: the read model's
repository size, the admin usage report and quotas."""

from __future__ import annotations

import pytest

from dockyard.browse.browser import Browser
from dockyard.browse.pulls import PullLog
from dockyard.coord.memory import MemoryCoordinator
from dockyard.oci.digest import Digest
from dockyard.storage import paths
from dockyard.storage.drivers.memory import MemoryDriver
from dockyard.storage.inventory import Inventory
from dockyard.storage.linked import linked_sizes, repositories
from dockyard.storage.quota import QuotaRule, Quotas
from dockyard.storage.registry import Registry
from tests.storage.test_gc import blob, image

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_linked_sizes_count_each_digest_once_per_repository_and_skip_gone_bytes() -> None:
    coordinator = MemoryCoordinator()
    registry = Registry(MemoryDriver(), coordinator=coordinator)
    shared, own, gone = b"shared" * 10, b"own" * 7, b"gone" * 3
    manifest = await image(registry, "a/one", "1", shared, own)
    await blob(registry, "a/two", shared)
    await blob(registry, "a/two", gone)
    await registry.driver.delete(paths.blob_dir(Digest.of(gone)))  # linked, bytes gone

    names = await repositories(registry.driver, include_without_manifests=True)
    assert names == ["a/one", "a/two"]
    known: dict[Digest, int] = {}
    linked = await linked_sizes(registry.driver, names, known)
    assert linked["a/two"] == {Digest.of(shared): len(shared)}
    one = linked["a/one"]
    assert one[Digest.of(shared)] == len(shared) and one[Digest.of(own)] == len(own)
    assert manifest in one  # the manifest's own bytes count
    assert len(one) == 4  # config, two layers, manifest
    assert Digest.of(gone) not in known and known[Digest.of(own)] == len(own)

    # The three readers agree with it.
    total_one = sum(one.values())
    browser = Browser(registry, PullLog(registry.driver, coordinator))
    assert await browser.storage_size("a/one") == total_one
    usage = await Inventory(registry).usage()
    assert [(r.repository, r.total, r.shared) for r in usage.repositories] == [
        ("a/one", total_one, len(shared)),
        ("a/two", len(shared), len(shared)),
    ]
    quotas = Quotas(registry.driver, [QuotaRule("a/**", 10_000)])
    assert await quotas.used(quotas.rules[0]) == total_one  # the shared blob once
