"""Copy a registry from one storage to another (``dockyard migrate SRC DST``).

What is copied is distribution's layout, the registry itself: every blob under ``blobs/``, and
every file under ``repositories/`` but upload sessions (``_uploads``). Not copied: dockyard's own
``_dockyard/`` area (coordination files, the webhook queue, the audit log, pull times), which
belongs to the registry serving a store, not to its content.

The order keeps the destination consistent at every moment, as a registry writing it would:

1. **blobs**, each streamed from the source into a temporary path at the destination while it is
   hashed, and published at its content address only if the digest matches (what a push does);
   a blob that does not match is reported and not published. Nothing is held in memory but the
   chunk in flight (and an object store writer's current part);
2. **repository links** but tags (layer links, manifest revisions, referrers), after every blob
   they can point to;
3. **tags** last, so a tag never names a manifest the destination does not hold yet.

Resumable: a blob already at its address at the destination with the source's size is skipped
(blobs appear there only after their digest was verified, by this copy or by a registry; with
``verify_existing`` they are hashed again), and a link with the same bytes is skipped. Temporaries
of an interrupted run are removed when the next one starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dockyard.errors import PathNotFound
from dockyard.oci.digest import Digest, new_hasher
from dockyard.storage import paths
from dockyard.storage.drivers.checked import CheckedDriver

TEMPORARIES = f"{paths.ROOT}/_dockyard/migrate"
BATCH = 1 << 20  # bytes handed to the destination writer at once
LINK_BATCH = 256  # small files read and written per round trip batch

Progress = Callable[[str, int, int], None]
"""Called with (phase, bytes or files done, total) as the copy advances."""


@dataclass
class MigrationReport:
    blobs: int = 0  # found at the source
    blobs_copied: int = 0
    blobs_present: int = 0  # already at the destination (skipped)
    bytes_copied: int = 0
    files: int = 0  # repository files (links) found at the source, tags included
    files_copied: int = 0
    files_present: int = 0
    tags: int = 0
    failed: list[str] = field(default_factory=list)  # what could not be copied, and why
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "blobs": self.blobs,
            "blobsCopied": self.blobs_copied,
            "blobsPresent": self.blobs_present,
            "bytesCopied": self.bytes_copied,
            "files": self.files,
            "filesCopied": self.files_copied,
            "filesPresent": self.files_present,
            "tags": self.tags,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
        }


def _flatten(tree: dict[str, list[str]], base: str) -> list[str]:
    """The file paths of a ``list_tree`` answer (entries that are no directory of the tree)."""
    files = []
    for directory, names in tree.items():
        for name in names:
            rel = f"{directory}/{name}" if directory else name
            if rel not in tree:
                files.append(f"{base}/{rel}")
    return sorted(files)


def _is_tag(path: str) -> bool:
    return "/_manifests/tags/" in path


async def _blob_paths(driver: CheckedDriver) -> dict[Digest, str]:
    try:
        tree = await driver.list_tree(paths.BLOBS)
    except PathNotFound:
        return {}
    found: dict[Digest, str] = {}
    for path in _flatten(tree, paths.BLOBS):
        rel = path[len(paths.BLOBS) + 1 :].split("/")  # <alg>/<2 hex>/<hex>/data
        if len(rel) == 4 and rel[3] == "data":
            with contextlib.suppress(ValueError):
                digest = Digest.parse(f"{rel[0]}:{rel[2]}")
                if rel[1] == digest.hex[:2]:
                    found[digest] = path
    return found


async def _repository_files(driver: CheckedDriver) -> list[str]:
    try:
        tree = await driver.list_tree(paths.REPOSITORIES, skip_prefix="")
    except PathNotFound:
        return []
    return [p for p in _flatten(tree, paths.REPOSITORIES) if "/_uploads/" not in p]


class Migration:
    def __init__(
        self,
        src: CheckedDriver,
        dst: CheckedDriver,
        *,
        jobs: int = 4,
        verify_existing: bool = False,
        progress: Progress | None = None,
    ) -> None:
        self.src = src
        self.dst = dst
        self.jobs = max(1, jobs)
        self.verify_existing = verify_existing
        self.progress = progress or (lambda phase, done, total: None)
        self.report = MigrationReport()
        self._done = 0  # blob bytes copied, for the progress
        self._bad: set[str] = set()  # blobs whose source bytes did not match their digest

    async def run(self) -> MigrationReport:
        began = time.monotonic()
        with contextlib.suppress(PathNotFound):
            await self.dst.delete(TEMPORARIES)  # an interrupted run's
        await self._blobs()
        files = await _repository_files(self.src)
        self.report.files = len(files)
        links = [p for p in files if not _is_tag(p)]
        tags = [p for p in files if _is_tag(p)]
        self.report.tags = sum(1 for p in tags if p.endswith("/current/link"))
        await self._files("links", links, 0, len(files))
        await self._files("tags", tags, len(links), len(files))
        with contextlib.suppress(PathNotFound):
            await self.dst.delete(TEMPORARIES)  # emptied by the commits; a filesystem keeps the directory
        self.report.seconds = time.monotonic() - began
        return self.report

    # -- blobs ---------------------------------------------------------------------------------

    async def _blobs(self) -> None:
        found = await _blob_paths(self.src)
        self.report.blobs = len(found)
        infos = await self.src.stat_many(list(found.values()))
        sizes = {d: i.size for d, i in zip(found, infos, strict=True) if i is not None}
        there = await self.dst.stat_many([found[d] for d in sizes])
        todo: list[Digest] = []
        for (digest, size), info in zip(sizes.items(), there, strict=True):
            there_whole = info is not None and info.size == size
            if there_whole and (not self.verify_existing or await self._verified_there(digest)):
                self.report.blobs_present += 1
                continue
            if info is not None:
                # Other bytes at the address (damaged, or a copy cut short by something else
                # than this command): a commit would keep them, so they go first.
                await self.dst.delete(paths.blob_data(digest))
            todo.append(digest)
        total = sum(sizes[d] for d in todo)
        self.progress("blobs", 0, total)
        limit = asyncio.Semaphore(self.jobs)

        async def one(digest: Digest) -> None:
            async with limit:
                await self._copy_blob(digest, sizes[digest], total)

        tasks = [asyncio.ensure_future(one(d)) for d in todo]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # Interrupted: stop the other copies too (each drops its temporary on the way out).
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _verified_there(self, digest: Digest) -> bool:
        actual, _ = await self.dst.hash_file(paths.blob_data(digest), digest.algorithm)
        return actual == digest.hex

    async def _copy_blob(self, digest: Digest, size: int, total: int) -> None:
        temporary = f"{TEMPORARIES}/{uuid.uuid4()}"
        writer = await self.dst.writer(temporary)
        hasher = new_hasher(digest.algorithm)
        pending: list[bytes] = []
        buffered = 0
        try:
            async for chunk in self.src.read(paths.blob_data(digest)):
                pending.append(chunk)
                buffered += len(chunk)
                if buffered >= BATCH:
                    await writer.write(b"".join(pending), hasher)
                    self._advance(buffered, total)
                    pending, buffered = [], 0
            if pending:
                await writer.write(b"".join(pending), hasher)
                self._advance(buffered, total)
            if hasher.hexdigest() != digest.hex or writer.size != size:
                await writer.abort()
                self._bad.add(str(digest))
                self.report.failed.append(
                    f"{digest}: the source's bytes ({writer.size} of {size}) hash to "
                    f"{digest.algorithm}:{hasher.hexdigest()}; not copied"
                )
                return
            await writer.commit(paths.blob_data(digest), remove=[temporary])
        except BaseException:
            with contextlib.suppress(Exception):
                await writer.abort()
            raise
        self.report.blobs_copied += 1
        self.report.bytes_copied += size

    def _advance(self, n: int, total: int) -> None:
        self._done += n
        self.progress("blobs", self._done, total)

    # -- repository files ----------------------------------------------------------------------

    async def _files(self, phase: str, files: Sequence[str], done: int, total: int) -> None:
        self.progress(phase, done, total)
        for start in range(0, len(files), LINK_BATCH):
            batch = list(files[start : start + LINK_BATCH])
            wanted = await self.src.get_many(batch)
            have = await self.dst.get_many(batch)
            write: list[tuple[str, bytes]] = []
            for path, body, there in zip(batch, wanted, have, strict=True):
                if body is None:
                    continue  # deleted at the source meanwhile
                if body.strip().decode(errors="replace") in self._bad:
                    # A link to a blob that was not copied would make the destination serve a
                    # manifest or layer it does not have.
                    self.report.failed.append(f"{path}: links to {body.decode(errors='replace')}, not copied")
                elif there == body:
                    self.report.files_present += 1
                else:
                    write.append((path, body))
            await self.dst.put_many(write)
            self.report.files_copied += len(write)
            done += len(batch)
            self.progress(phase, done, total)
