"""Severity levels: from a CVSS vector (v2, v3.x, v4, read by the ``cvss`` library), else the
ecosystem's own rating (Debian urgency, Ubuntu priority, GitHub's severity word), else unknown.

The matcher chooses between these per finding (an advisory's own vector, then an alias's, then
the rating); this module only turns each source into a level. Levels order from ``unknown`` up,
so ``unknown`` sorts below ``low``: whether it blocks is a policy's decision, not this order's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

LEVELS = ("unknown", "none", "low", "medium", "high", "critical")
RANK = {level: i for i, level in enumerate(LEVELS)}
# OSV severity types, newest CVSS first: the newest vector an advisory carries decides.
_CVSS_TYPES = ("CVSS_V4", "CVSS_V3", "CVSS_V2")
# The ecosystems' own words → levels. Debian's urgency "unimportant" and Ubuntu's "negligible"
# are real (low) ratings; "not yet assigned" and "untriaged" are not ratings at all.
_WORDS = {
    "critical": "critical",
    "important": "high",
    "high": "high",
    "moderate": "medium",
    "medium": "medium",
    "low": "low",
    "unimportant": "low",
    "negligible": "low",
}


@dataclass(frozen=True, slots=True)
class Severity:
    level: str
    score: float | None = None
    vector: str | None = None
    source: str = "unknown"  # "cvss", "alias:<id>", "ecosystem" or "unknown"

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "score": self.score, "vector": self.vector, "source": self.source}


UNKNOWN = Severity("unknown")


def from_vector(kind: str, vector: str) -> Severity | None:
    """One OSV severity entry (``CVSS_V3`` and its vector) → a level; None when unreadable."""
    import cvss  # here, not at import: a worker that never reads advisories does not carry it

    try:
        if kind == "CVSS_V4":
            v4 = cvss.CVSS4(vector)
            return Severity(str(v4.severity).lower(), float(v4.base_score), vector, "cvss")
        if kind == "CVSS_V3":
            v3 = cvss.CVSS3(vector)
            return Severity(str(v3.severities()[0]).lower(), float(v3.scores()[0]), vector, "cvss")
        if kind == "CVSS_V2":
            v2 = cvss.CVSS2(vector)
            return Severity(str(v2.severities()[0]).lower(), float(v2.scores()[0]), vector, "cvss")
    except (cvss.CVSSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return None


def from_entries(entries: Iterable[Any]) -> Severity | None:
    """The level of the newest readable CVSS vector among OSV ``severity`` entries."""
    by_kind: dict[str, list[Severity]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        kind, vector = entry.get("type"), entry.get("score")
        if kind in _CVSS_TYPES and isinstance(vector, str):
            found = from_vector(kind, vector)
            if found is not None and found.level in RANK:
                by_kind.setdefault(kind, []).append(found)
    for kind in _CVSS_TYPES:
        if kind in by_kind:
            return max(by_kind[kind], key=lambda s: (s.score or 0.0, RANK[s.level]))
    return None


def from_word(word: Any) -> str | None:
    """An ecosystem's rating word (``medium``, ``unimportant``, ``MODERATE``) → a level, or None."""
    if not isinstance(word, str):
        return None
    return _WORDS.get(word.strip().rstrip("*").lower())


def worst(levels: Iterable[str]) -> str:
    return max(levels, key=lambda level: RANK.get(level, 0), default="unknown")
