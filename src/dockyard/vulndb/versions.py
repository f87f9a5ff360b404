"""Each ecosystem's version order (``univers``) and OSV's walk over a range's events.

No comparator is written here: dpkg epochs and tildes, apk ``-rN`` revisions and ``_rc``
suffixes, PEP 440 pre-releases, Go pseudo-versions, Maven qualifiers and RubyGems' ``.pre`` are
univers' classes. Only ``<``, ``>`` and ``==`` are used: some of univers' classes (Alpine's,
through Gentoo's) define those three and inherit ``<=``/``>=`` from attrs, which compares the
raw strings (``1.2.4-r2 >= 1.2.4-r10`` is true there), so "at or above" is written ``not <``.
A ``SEMVER`` range is compared as semver whatever the ecosystem (Go's with its
``v`` prefix allowed); an ``ECOSYSTEM`` range in the ecosystem's own order.

The walk is the one the OSV schema gives: events sorted by version (``introduced: "0"`` first),
then a version is affected once an ``introduced`` at or below it is passed, and no longer after
a ``fixed`` at or below it or a ``last_affected`` below it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from univers import versions as uv

from dockyard.vulndb.osv import Affected, Range

log = logging.getLogger("dockyard.vulndb")
_ECOSYSTEM_ORDER: dict[str, type[uv.Version]] = {
    "Debian": uv.DebianVersion,
    "Ubuntu": uv.DebianVersion,
    "Alpine": uv.AlpineLinuxVersion,
    "PyPI": uv.PypiVersion,
    "npm": uv.SemverVersion,
    "Go": uv.GolangVersion,
    "Maven": uv.MavenVersion,
    "crates.io": uv.SemverVersion,
    "RubyGems": uv.RubygemsVersion,
}


def order_of(ecosystem: str, kind: str) -> type[uv.Version] | None:
    """The version class a range of ``kind`` in ``ecosystem`` compares in; None when unknown."""
    if kind == "SEMVER":
        return uv.GolangVersion if ecosystem == "Go" else uv.SemverVersion
    return _ECOSYSTEM_ORDER.get(ecosystem)


_PARSED: dict[tuple[str, str], uv.Version | None] = {}
_PARSED_MAX = 65536  # versions met while matching; cleared whole when full


# apk's snapshot suffixes, which univers' Alpine class (Gentoo's suffixes) refuses: the real
# musl of Alpine 3.19 is "1.2.4_git20230717-r4", so without this no advisory would ever match it.
_APK_SNAPSHOT = re.compile(r"_(?:cvs|svn|git|hg)(?=\d*(?:[_-]|$))")


def _spelled_for(cls: type[uv.Version], text: str) -> str:
    """``text`` as ``cls`` accepts it. apk orders ``_cvs``, ``_svn``, ``_git`` and ``_hg`` after the
    plain version and before the next one (post-release snapshots), as Gentoo's ``_p`` is, so they
    are read as ``_p``: ``1.2.4 < 1.2.4_git20230717 < 1.2.5`` and snapshots of one kind compare by
    their numbers. What is lost is apk's order *between* kinds (``_git1 < _p1``): a package keeps
    one snapshot scheme, so its advisories and installed versions do not mix them."""
    if cls is uv.AlpineLinuxVersion:
        return _APK_SNAPSHOT.sub("_p", text)
    return text


def parse_version(cls: type[uv.Version], text: str) -> uv.Version | None:
    """``text`` in ``cls``'s order; None when it is not a version there (logged, then skipped)."""
    key = (cls.__name__, text)
    if key in _PARSED:
        return _PARSED[key]
    parsed: uv.Version | None
    try:
        parsed = cls(_spelled_for(cls, text))
    except Exception:  # univers raises InvalidVersion, ValueError or TypeError by class
        log.debug("not a version", extra={"version": text, "order": cls.__name__})
        parsed = None
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[key] = parsed
    return parsed


@dataclass(frozen=True, slots=True)
class Verdict:
    affected: bool
    fixed: str | None = None  # the version that fixes it, when the advisory names one


_NO = Verdict(False)


def _walk(cls: type[uv.Version], rng: Range, installed: uv.Version) -> Verdict:
    events: list[tuple[int, uv.Version | None, str, str]] = []
    for kind, text in rng.events:
        if kind == "introduced" and text == "0":
            events.append((0, None, kind, text))
            continue
        parsed = parse_version(cls, text)
        if parsed is not None:
            events.append((1, parsed, kind, text))
    events.sort(key=_sort_key)
    affected = False
    for _, version, kind, _text in events:
        if kind == "introduced" and (version is None or not installed < version):
            affected = True
        elif version is not None and _ends(kind, installed, version):
            affected = False
    if not affected:
        return _NO
    fixes = [(v, t) for _, v, k, t in events if k == "fixed" and v is not None and v > installed]
    return Verdict(True, min(fixes, key=lambda f: f[0])[1] if fixes else None)


def _ends(kind: str, installed: uv.Version, version: uv.Version) -> bool:
    """Whether a ``fixed`` or ``last_affected`` event at ``version`` ends the affected span."""
    if kind == "fixed":
        return not installed < version
    return kind == "last_affected" and bool(installed > version)


class _Sortable:
    """Orders events by version with ``introduced: "0"`` first; univers versions compare with ``<``."""

    __slots__ = ("rank", "version")

    def __init__(self, rank: int, version: uv.Version | None) -> None:
        self.rank, self.version = rank, version

    def __lt__(self, other: _Sortable) -> bool:
        if self.rank != other.rank or self.version is None or other.version is None:
            return self.rank < other.rank
        return bool(self.version < other.version)


def _sort_key(event: tuple[int, uv.Version | None, str, str]) -> _Sortable:
    return _Sortable(event[0], event[1])


def _listed(cls: type[uv.Version] | None, versions: tuple[str, ...], installed: str) -> bool:
    if installed in versions:
        return True
    if cls is None:
        return False
    mine = parse_version(cls, installed)
    return mine is not None and any(parse_version(cls, v) == mine for v in versions)


def check(entry: Affected, installed: str) -> Verdict:
    """Whether ``installed`` of ``entry``'s package is affected, and the version that fixes it."""
    own = order_of(entry.ecosystem, "ECOSYSTEM")
    if entry.versions and _listed(own, entry.versions, installed):
        found = Verdict(True)
        for rng in entry.ranges:  # a range may also say which version fixed a listed one
            cls = order_of(entry.ecosystem, rng.kind)
            mine = parse_version(cls, installed) if cls is not None else None
            if cls is not None and mine is not None and (walked := _walk(cls, rng, mine)).affected:
                return walked
        return found
    for rng in entry.ranges:
        cls = order_of(entry.ecosystem, rng.kind)
        if cls is None:
            continue
        mine = parse_version(cls, installed)
        if mine is None:
            continue
        verdict = _walk(cls, rng, mine)
        if verdict.affected:
            return verdict
    return _NO
