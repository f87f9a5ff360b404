"""Semantic versions of image tags, and the ranges ``sync`` rules select them by.

The range grammar and its semantics are npm's (``>=1.25 <2``, ``^1.27``, ``~1.2.0``, ``1.27.x``,
alternatives joined by ``||``), as Helm also writes them, implemented by ``semantic_version``'s
``NpmSpec``; this module only adapts image tags to it. Tags are versions the way registries use
them: ``1.27.3``, ``v1.27`` (the ``v`` is dropped), ``1.27`` (a missing part is 0),
``1.27.3-alpine`` (a pre-release in semver's grammar, though images mean a variant by it). As in
npm, a tag with a pre-release part matches only a range that names a pre-release of the same
``major.minor.patch``, so ``>=1.25`` selects ``1.27.3`` and not ``1.27.3-alpine`` unless asked.
Commas may separate comparators (``>0.9,<=1``), as in other registries' sync rules.

``semantic_version`` was chosen over ``node-semver`` (a port of npm's own code) because the port
accepts malformed ranges silently (``>=1.x <<2`` parses), where an operator's typo must be named.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import semantic_version

_TAG = re.compile(r"v?(\d{1,9}(?:\.\d{1,9}){0,2}(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)")


@functools.total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    """A tag's version, ordered as semver orders them (a release after its pre-releases)."""

    value: Any  # semantic_version.Version (the library is untyped)

    def __lt__(self, other: Version) -> bool:
        return bool(self.value < other.value)


@dataclass(frozen=True, slots=True)
class Range:
    """A parsed range; ``version in range`` applies npm's rules."""

    text: str
    spec: Any  # semantic_version.NpmSpec

    def __contains__(self, version: Version) -> bool:
        return bool(version.value in self.spec)


def parse_version(tag: str) -> Version | None:
    """The version a tag names, or None when it names none (``latest``, ``stable``, a digest)."""
    m = _TAG.fullmatch(tag)
    if m is None:
        return None
    try:
        return Version(semantic_version.Version.coerce(m[1]))
    except ValueError:
        return None


def parse_range(text: str) -> Range:
    """Parse a range; ValueError names what is wrong."""
    spec = re.sub(r"[\s,]+", " ", text).strip()
    if any(not alternative.strip() for alternative in spec.split("||")):
        raise ValueError(f"semver: {text!r} has an empty alternative")
    try:
        return Range(text, semantic_version.NpmSpec(spec))
    except ValueError as exc:
        raise ValueError(f"semver: {text!r} is not a range such as >=1.25 <2 or ^1.27 ({exc})") from None


def matches(tag: str, spec: Range) -> bool:
    """Whether ``tag`` is a version within ``spec``."""
    version = parse_version(tag)
    return version is not None and version in spec
