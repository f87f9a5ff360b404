"""Semantic versions of image tags, and the ranges ``sync`` rules select them by.

Tags are versions the way registries use them: ``1.27.3``, ``v1.27``, ``1.27.3-alpine`` (a
pre-release in semver's grammar, though images mean a variant by it). A missing minor or patch is
0 (``1.27`` is ``1.27.0``). A range is comparators separated by spaces or commas, all of which must
hold (``>=1.25 <2``), alternatives joined by ``||``; the comparators are ``=``, ``>``, ``>=``,
``<``, ``<=``, ``^`` (same major, or same minor below 1.0) and ``~`` (same minor), as npm and
Helm write them. As in both, a tag with a pre-release part matches only a range that names a
pre-release of the same ``major.minor.patch``, so ``>=1.25`` selects ``1.27.3`` and not
``1.27.3-alpine`` unless asked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION = re.compile(
    r"v?(\d{1,9})(?:\.(\d{1,9}))?(?:\.(\d{1,9}))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?"
)
_COMPARATOR = re.compile(r"(>=|<=|>|<|=|\^|~)?\s*([^\s<>=^~]+)")


@dataclass(frozen=True, slots=True, order=True)
class Version:
    major: int
    minor: int
    patch: int
    # A release sorts after its pre-releases: (1, ()) against (0, pre-release identifiers).
    pre: tuple[int, tuple[tuple[int, int | str], ...]] = (1, ())

    @property
    def prerelease(self) -> bool:
        return self.pre[0] == 0

    @property
    def core(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)


def parse_version(tag: str) -> Version | None:
    """The version a tag names, or None when it names none (``latest``, ``stable``, a digest)."""
    m = _VERSION.fullmatch(tag)
    if m is None:
        return None
    pre: tuple[int, tuple[tuple[int, int | str], ...]] = (1, ())
    if m.group(4):
        # Numeric identifiers sort below alphanumeric ones and numerically among themselves.
        ids = tuple((0, int(p)) if p.isdigit() else (1, p) for p in m.group(4).split("."))
        pre = (0, ids)
    return Version(int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0), pre)


@dataclass(frozen=True, slots=True)
class Comparator:
    op: str
    version: Version

    def holds(self, v: Version) -> bool:
        w = self.version
        if self.op == "=":
            return v == w
        if self.op == ">":
            return v > w
        if self.op == ">=":
            return v >= w
        if self.op == "<":
            return v < w
        if self.op == "<=":
            return v <= w
        if self.op == "~":
            return w <= v < Version(w.major, w.minor + 1, 0, (0, ()))
        # "^": the leftmost non-zero part stays
        if w.major > 0:
            upper = Version(w.major + 1, 0, 0, (0, ()))
        elif w.minor > 0:
            upper = Version(0, w.minor + 1, 0, (0, ()))
        else:
            upper = Version(0, 0, w.patch + 1, (0, ()))
        return w <= v < upper


Range = list[list[Comparator]]  # alternatives (||) of conjunctions


def parse_range(text: str) -> Range:
    """Parse a range; ValueError names what is wrong."""
    alternatives: Range = []
    for part in text.split("||"):
        conj = []
        for m in _COMPARATOR.finditer(part.replace(",", " ")):
            op, raw = m.group(1) or "=", m.group(2)
            version = parse_version(raw)
            if version is None:
                raise ValueError(f"semver: {raw!r} in {text!r} is not a version such as 1.27 or 1.27.3")
            conj.append(Comparator(op, version))
        if not conj:
            raise ValueError(f"semver: {text!r} has an empty alternative")
        left = _COMPARATOR.sub("", part.replace(",", " ")).strip()
        if left:
            raise ValueError(f"semver: {left!r} in {text!r} compares nothing")
        alternatives.append(conj)
    return alternatives


def matches(tag: str, spec: Range) -> bool:
    """Whether ``tag`` is a version within ``spec``."""
    v = parse_version(tag)
    if v is None:
        return False
    for conj in spec:
        if not all(c.holds(v) for c in conj):
            continue
        if v.prerelease and not any(c.version.prerelease and c.version.core == v.core for c in conj):
            continue
        return True
    return False
