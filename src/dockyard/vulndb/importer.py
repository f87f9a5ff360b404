"""``dockyard vulndb update``: OSV advisories from osv.dev's ``all.zip`` exports into the store.

A zip is read one member at a time (``zipfile`` seeks to each from the central directory), so
memory holds one batch of parsed advisories, never the archive; a URL is first streamed to a
temporary file for the same reason. Each batch asks the store for the ``modified`` times it
holds and parses whole and writes only advisories that are new or newer (a record is first read
only for its id, time and ecosystems), so importing the same export again changes nothing and
costs little more than reading it. A withdrawn advisory is stored with its withdrawal time and never matches.
A member that is not an OSV record is counted as invalid and skipped: one bad record never
stops an import.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.vulndb.osv import Head, OsvError, head, parse
from dockyard.vulndb.store import VulnStore

log = logging.getLogger("dockyard.vulndb")
BATCH = 1000
_MAX_RECORD = 16 * 1024 * 1024  # one advisory's JSON; osv.dev's largest are well under 1 MiB


class SourceError(Exception):
    """The source cannot be read at all (missing, not a zip, the download failed)."""


@dataclass(slots=True)
class ImportReport:
    source: str
    started_at: float
    seconds: float = 0.0
    records: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    invalid: int = 0
    ecosystems: Counter[str] = field(default_factory=Counter)

    def counts(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "withdrawn": self.withdrawn,
            "invalid": self.invalid,
            "ecosystems": dict(sorted(self.ecosystems.items())),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "startedAt": self.started_at,
            "seconds": round(self.seconds, 3),
            **self.counts(),
        }


def default_urls(base: str, ecosystems: list[str]) -> list[str]:
    """osv.dev's export of each ecosystem (``vulndb.baseurl``, ``vulndb.ecosystems``)."""
    return [f"{base.rstrip('/')}/{eco}/all.zip" for eco in ecosystems]


def _members(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each JSON record: in a zip, or in a directory (an unpacked export)."""
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory")
    if path.is_dir():
        for item in sorted(path.rglob("*.json")):
            yield str(item.relative_to(path)), item.read_bytes()
        return
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise SourceError(f"{path}: not an OSV export (a zip of JSON records): {exc}") from None
    with archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            if info.file_size > _MAX_RECORD:
                yield info.filename, b""  # counted as invalid, never read into memory
                continue
            with archive.open(info) as member:
                yield info.filename, member.read()


@dataclass(frozen=True, slots=True)
class _Pending:
    name: str
    record: Any
    head: Head


def _head(name: str, raw: bytes) -> _Pending | None:
    try:
        record = json.loads(raw)
        return _Pending(name, record, head(record))
    except (ValueError, OsvError) as exc:  # json's JSONDecodeError and UnicodeDecodeError are ValueErrors
        log.warning("advisory skipped", extra={"record": name, "error": str(exc)})
        return None


async def _write(store: VulnStore, batch: dict[str, _Pending], report: ImportReport) -> None:
    """Parse whole and store the records of ``batch`` newer than what the store holds."""
    stored = await store.modified_of(list(batch))
    fresh = []
    for ident, pending in batch.items():
        held = stored.get(ident)
        if held is not None and held >= pending.head.modified:
            report.unchanged += 1
            continue
        try:
            fresh.append(parse(pending.record))
        except OsvError as exc:
            log.warning("advisory skipped", extra={"record": pending.name, "error": str(exc)})
            report.invalid += 1
            continue
        if held is None:
            report.added += 1
        else:
            report.updated += 1
    await store.replace(fresh)


async def import_path(
    store: VulnStore,
    path: Path,
    *,
    source: str | None = None,
    clock: Callable[[], float] = time.time,
    batch_size: int = BATCH,
) -> ImportReport:
    """Import one export (zip or directory) into ``store``; record and return the counts."""
    report = ImportReport(source or str(path), clock())
    started = time.perf_counter()
    batch: dict[str, _Pending] = {}
    for name, raw in _members(path):
        report.records += 1
        pending = _head(name, raw)
        if pending is None:
            report.invalid += 1
            continue
        if pending.head.withdrawn:
            report.withdrawn += 1
        report.ecosystems.update(pending.head.ecosystems)
        held = batch.get(pending.head.id)
        if held is None or held.head.modified < pending.head.modified:
            batch[pending.head.id] = pending
        if len(batch) >= batch_size:
            await _write(store, batch, report)
            batch = {}
    if batch:
        await _write(store, batch, report)
    report.seconds = time.perf_counter() - started
    await store.record_import(report.source, report.started_at, report.seconds, report.counts())
    log.info("advisories imported", extra=report.to_json())
    return report


def download(url: str, directory: str, *, timeout: float = 60.0) -> Path:
    """Stream ``url`` to a file in ``directory`` (an export is hundreds of MiB: never in memory)."""
    import httpx

    target = Path(directory) / "all.zip"
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            if response.status_code != 200:
                raise SourceError(f"{url}: HTTP {response.status_code}")
            with target.open("wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
    except httpx.HTTPError as exc:
        raise SourceError(f"{url}: {exc}") from None
    return target


async def import_source(store: VulnStore, source: str, **kwargs: Any) -> ImportReport:
    """Import a file, a directory or an ``http(s)://`` URL."""
    if source.startswith(("http://", "https://")):
        with tempfile.TemporaryDirectory(prefix="dockyard-vulndb-") as directory:
            path = download(source, directory)
            return await import_path(store, path, source=source, **kwargs)
    return await import_path(store, Path(source), **kwargs)
