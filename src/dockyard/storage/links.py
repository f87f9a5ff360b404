"""Reading and writing link files (``sha256:<hex>``, no newline)."""

from __future__ import annotations

from dockyard.errors import PathNotFound
from dockyard.oci.digest import Digest, DigestError
from dockyard.storage import paths
from dockyard.storage.drivers.checked import CheckedDriver


def parse_link(raw: bytes) -> Digest | None:
    """The digest a link file's content names, or None if it is not one."""
    try:
        return Digest.parse(raw.decode("ascii", "replace").strip())
    except DigestError:
        return None


async def read_link(driver: CheckedDriver, path: str) -> Digest | None:
    """The digest a link file holds, or None if it is missing or unreadable."""
    try:
        raw = await driver.get_content(path)
    except PathNotFound:
        return None
    return parse_link(raw)


async def write_link(driver: CheckedDriver, path: str, digest: Digest) -> None:
    await driver.put_content(path, paths.link_content(digest))
