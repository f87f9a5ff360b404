"""One OSV record (https://ossf.github.io/osv-schema/) → an :class:`Advisory`.

Only what matching needs is kept: per affected package its base ecosystem, release, name, the
ranges (``GIT`` ranges dropped: images carry versions, not commits) and explicit ``versions``;
the advisory's newest CVSS vector and the ecosystem's own rating; aliases (and ``upstream``
ids, which count as aliases for finding another record's severity); and whether it was
withdrawn. A record that is not an OSV object raises :class:`OsvError`, so an import counts it
as invalid and goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dockyard.vulndb import severity as sev
from dockyard.vulndb.ecosystems import normalize_name, split_ecosystem

_RANGE_TYPES = frozenset({"ECOSYSTEM", "SEMVER"})
_EVENTS = ("introduced", "fixed", "last_affected")
_FRACTION = re.compile(r"(\.\d{1,6})\d*")


class OsvError(ValueError):
    """A record that is not a usable OSV advisory."""


def parse_time(raw: Any, field: str) -> float:
    """An RFC 3339 time (``2024-01-02T03:04:05.123456789Z``) → epoch seconds."""
    if not isinstance(raw, str):
        raise OsvError(f"{field} is not a time")
    text = _FRACTION.sub(lambda m: m[1], raw.strip().replace("Z", "+00:00").replace("z", "+00:00"), 1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise OsvError(f"{field} {raw!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@dataclass(frozen=True, slots=True)
class Range:
    kind: str  # ECOSYSTEM or SEMVER
    events: tuple[tuple[str, str], ...]  # ("introduced" | "fixed" | "last_affected", version)


@dataclass(frozen=True, slots=True)
class Affected:
    ecosystem: str  # base: "Debian", "PyPI"
    release: str  # "12", "v3.19", "22.04"; "" when the ecosystem names none
    name: str  # normalized (ecosystems.normalize_name)
    ranges: tuple[Range, ...]
    versions: tuple[str, ...]
    rating: str | None  # this package's own rating in its ecosystem (Debian urgency, ...)

    def to_json(self) -> dict[str, Any]:
        return {
            "ranges": [{"type": r.kind, "events": [list(e) for e in r.events]} for r in self.ranges],
            "versions": list(self.versions),
            "rating": self.rating,
        }

    @classmethod
    def from_json(cls, ecosystem: str, release: str, name: str, data: dict[str, Any]) -> Affected:
        ranges = tuple(
            Range(r["type"], tuple((e[0], e[1]) for e in r["events"])) for r in data.get("ranges", [])
        )
        return cls(ecosystem, release, name, ranges, tuple(data.get("versions", [])), data.get("rating"))


@dataclass(frozen=True, slots=True)
class Advisory:
    id: str
    modified: float
    withdrawn: float | None
    aliases: tuple[str, ...]  # as the record lists them (CVE ids, GHSA ids)
    upstream: tuple[str, ...]  # OSV 1.6 ``upstream``: ids this one derives from
    summary: str
    cvss: sev.Severity | None  # the newest CVSS vector the record carries
    rating: str | None  # the ecosystem's own rating for the record as a whole
    affected: tuple[Affected, ...]

    @property
    def ecosystems(self) -> frozenset[str]:
        return frozenset(a.ecosystem for a in self.affected)


def _strings(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise OsvError(f"{field} is not a list of strings")
    return tuple(value)


def _object(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OsvError(f"{field} is not an object")
    return value


def _rating(*places: dict[str, Any]) -> str | None:
    """The first rating word found in a record's ``ecosystem_specific``/``database_specific``."""
    for place in places:
        for key in ("severity", "urgency", "priority"):
            level = sev.from_word(place.get(key))
            if level is not None:
                return level
    return None


def _word_entries(entries: Any) -> str | None:
    """Ubuntu's records carry their priority as a severity entry of type ``Ubuntu``."""
    if isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, dict) and entry.get("type") == "Ubuntu":
                level = sev.from_word(entry.get("score"))
                if level is not None:
                    return level
    return None


def _ranges(raw: Any, where: str) -> tuple[Range, ...]:
    out = []
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        item = _object(item, f"{where}.ranges[{i}]")
        kind = item.get("type")
        if kind not in _RANGE_TYPES:
            continue  # GIT ranges name commits, which an image's packages do not carry
        events = []
        raw_events = item.get("events")
        for event in raw_events if isinstance(raw_events, list) else []:
            for key in _EVENTS:
                value = event.get(key) if isinstance(event, dict) else None
                if isinstance(value, str) and value:
                    events.append((key, value))
        if events:
            out.append(Range(str(kind), tuple(events)))
    return tuple(out)


def _affected(raw: Any, i: int, record_rating: str | None) -> Affected | None:
    where = f"affected[{i}]"
    item = _object(raw, where)
    package = _object(item.get("package"), f"{where}.package")
    ecosystem, name = package.get("ecosystem"), package.get("name")
    if not isinstance(ecosystem, str) or not isinstance(name, str) or not ecosystem or not name:
        return None  # OSV allows an affected entry without a package (a GIT repo only)
    base, release = split_ecosystem(ecosystem)
    rating = (
        _word_entries(item.get("severity"))
        or _rating(
            _object(item.get("ecosystem_specific"), f"{where}.ecosystem_specific"),
            _object(item.get("database_specific"), f"{where}.database_specific"),
        )
        or record_rating
    )
    return Affected(
        base,
        release,
        normalize_name(base, name),
        _ranges(item.get("ranges"), where),
        _strings(item.get("versions"), f"{where}.versions"),
        rating,
    )


@dataclass(frozen=True, slots=True)
class Head:
    """What an import reads before deciding to parse a record whole: an export re-imported
    unchanged costs a JSON decode and this per record, not the ranges and CVSS vectors."""

    id: str
    modified: float
    withdrawn: bool
    ecosystems: frozenset[str]


def head(record: Any) -> Head:
    """A record's id, ``modified`` time, withdrawal and ecosystems; :class:`OsvError` when unusable."""
    record = _object(record, "the record")
    ident = record.get("id")
    if not isinstance(ident, str) or not ident:
        raise OsvError("the record has no id")
    ecosystems = set()
    affected = record.get("affected")
    for item in affected if isinstance(affected, list) else []:
        package = item.get("package") if isinstance(item, dict) else None
        ecosystem = package.get("ecosystem") if isinstance(package, dict) else None
        if isinstance(ecosystem, str) and ecosystem:
            ecosystems.add(split_ecosystem(ecosystem)[0])
    modified = parse_time(record.get("modified"), "modified")
    return Head(ident, modified, record.get("withdrawn") is not None, frozenset(ecosystems))


def parse(record: Any) -> Advisory:
    """An OSV record (decoded JSON) → an :class:`Advisory`; :class:`OsvError` when unusable."""
    record = _object(record, "the record")
    ident = record.get("id")
    if not isinstance(ident, str) or not ident:
        raise OsvError("the record has no id")
    modified = parse_time(record.get("modified"), "modified")
    withdrawn = record.get("withdrawn")
    summary = record.get("summary") or record.get("details") or ""
    affected_raw = record.get("affected") or []
    if not isinstance(affected_raw, list):
        raise OsvError("affected is not a list")
    top_rating = _word_entries(record.get("severity")) or _rating(
        _object(record.get("database_specific"), "database_specific")
    )
    top_entries = record.get("severity")
    entries = list(top_entries) if isinstance(top_entries, list) else []
    for item in affected_raw:
        if isinstance(item, dict) and isinstance(item.get("severity"), list):
            entries.extend(item["severity"])
    affected = (_affected(item, i, top_rating) for i, item in enumerate(affected_raw))
    return Advisory(
        id=ident,
        modified=modified,
        withdrawn=parse_time(withdrawn, "withdrawn") if withdrawn is not None else None,
        aliases=_strings(record.get("aliases"), "aliases"),
        upstream=_strings(record.get("upstream"), "upstream"),
        summary=str(summary)[:500] if isinstance(summary, str) else "",
        cvss=sev.from_entries(entries),
        rating=top_rating,
        affected=tuple(a for a in affected if a is not None),
    )
