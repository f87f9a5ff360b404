"""Property tests of what the advisory database parses: OSV records, ecosystem and release
names, purls, times, and the range walk (Hypothesis, small budget in ``make test``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dockyard.vulndb.ecosystems import PurlError, package_of, release_key, split_ecosystem
from dockyard.vulndb.osv import Affected, OsvError, Range, head, parse, parse_time
from dockyard.vulndb.severity import from_vector, from_word
from dockyard.vulndb.versions import check
from tests.fuzzing import budget
from tests.vulndb import osvdata

pytestmark = pytest.mark.fuzz

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_KEYS = ["id", "modified", "withdrawn", "aliases", "upstream", "summary", "severity", "affected",
         "database_specific", "package", "ecosystem", "name", "ranges", "events", "versions", "type",
         "introduced", "fixed", "last_affected", "ecosystem_specific", "score"]  # fmt: skip


@st.composite
def _mutated(draw: st.DrawFn) -> Any:
    """A real record with values swapped for random JSON at random depths."""
    record: Any = draw(st.sampled_from(osvdata.advisories()))
    record = __import__("copy").deepcopy(record)
    for _ in range(draw(st.integers(1, 4))):
        node = record
        for _ in range(draw(st.integers(0, 3))):
            children = [
                v for v in (node.values() if isinstance(node, dict) else node) if isinstance(v, dict | list)
            ]
            if not children:
                break
            node = draw(st.sampled_from(children))
        value = draw(_json)
        if isinstance(node, dict):
            node[draw(st.sampled_from(_KEYS))] = value
        elif node:
            node[draw(st.integers(0, len(node) - 1))] = value
    return record


@budget(150)
@given(st.one_of(_json, _mutated()))
def test_a_record_parses_or_is_refused_never_crashes(record: Any) -> None:
    try:
        first = head(record)
    except OsvError:
        first = None
    try:
        advisory = parse(record)
    except OsvError:
        return
    assert first is not None and (first.id, first.modified) == (advisory.id, advisory.modified)
    assert first.ecosystems >= advisory.ecosystems
    assert advisory.id and isinstance(advisory.modified, float)
    for entry in advisory.affected:
        check(entry, "1.0")  # whatever the ranges hold, a version check answers


@budget(50)
@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)), st.integers(0, 9))
def test_rfc3339_times_read_back(moment: datetime, extra_digits: int) -> None:
    moment = moment.replace(tzinfo=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "1" * extra_digits + "Z"  # nanoseconds too
    assert parse_time(text, "modified") == pytest.approx(moment.timestamp(), abs=1e-6)


@budget(60)
@given(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30))
def test_releases_reduce_to_one_key(major: int, minor: int, patch: int) -> None:
    """An advisory's ecosystem and an SBOM's distro qualifier name the same release alike."""
    assert split_ecosystem(f"Debian:{major}") == ("Debian", release_key("Debian", f"{major}.{minor}"))
    alpine = split_ecosystem(f"Alpine:v{major}.{minor}")
    assert (
        alpine
        == ("Alpine", release_key("Alpine", f"{major}.{minor}.{patch}"))
        == ("Alpine", f"v{major}.{minor}")
    )
    ubuntu = f"{major}.{minor:02d}"
    for form in (f"Ubuntu:{ubuntu}", f"Ubuntu:{ubuntu}:LTS", f"Ubuntu:Pro:{ubuntu}:LTS"):
        assert split_ecosystem(form) == ("Ubuntu", ubuntu)
    assert split_ecosystem(f"Debian:{major}") != split_ecosystem(f"Debian:{major + 1}")
    assert split_ecosystem("PyPI") == ("PyPI", "")


@budget(100)
@given(st.text(max_size=60) | st.builds(lambda t, rest: f"pkg:{t}/{rest}", st.sampled_from(
    ["deb", "apk", "pypi", "npm", "golang", "maven", "cargo", "gem", "rpm"]), st.text(max_size=30)))  # fmt: skip
def test_a_purl_is_a_package_or_refused(text: str) -> None:
    try:
        package = package_of(text)
    except PurlError:
        return
    assert package.version and package.lookups and package.ecosystem


def test_packages_of_each_ecosystem() -> None:
    ssl = package_of(osvdata.PURLS["libssl3"], "sha256:1")
    assert (ssl.ecosystem, ssl.release, ssl.lookups) == (
        "Debian", "12", (("libssl3", "3.0.11-1~deb12u2"), ("openssl", "3.0.11-1~deb12u2")),
    )  # fmt: skip
    binnmu = package_of("pkg:deb/debian/libfoo1@1.0-1+b1?upstream=foo%401.0-1&distro=debian-11.9")
    assert (binnmu.release, binnmu.lookups[1]) == ("11", ("foo", "1.0-1"))
    assert package_of(osvdata.PURLS["musl"]).release == "v3.19"
    assert package_of(osvdata.PURLS["libc6"]).release == "22.04"
    assert package_of("pkg:pypi/Zope.Interface@5.0").lookups == (("zope-interface", "5.0"),)
    assert package_of(osvdata.PURLS["log4j"]).name == "org.apache.logging.log4j:log4j-core"
    assert package_of(osvdata.PURLS["stdlib"]).lookups == (("stdlib", "1.21.5"),)
    assert package_of("pkg:deb/debian/x@1").release == ""  # no distro qualifier: no release
    for refused in ("pkg:rpm/fedora/x@1", "pkg:pypi/x", "pkg:deb/mint/x@1", "pkg:apk/wolfi/x@1", "nope"):
        with pytest.raises(PurlError):
            package_of(refused)


_version = st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 5))


def _text(v: tuple[int, int, int]) -> str:
    return ".".join(map(str, v))


@budget(150)
@given(_version, _version, _version, st.sampled_from(["fixed", "last_affected"]))
def test_the_range_walk_is_the_interval(installed: Any, start: Any, end: Any, kind: str) -> None:
    """``introduced: a`` then ``fixed: b`` covers [a, b); ``last_affected: b`` covers [a, b]
    (for a below b: OSV sorts events by version, so a fix below the introduction ends nothing)."""
    assume(start < end)
    rng = Range("ECOSYSTEM", (("introduced", _text(start)), (kind, _text(end))))
    entry = Affected("PyPI", "", "x", (rng,), (), None)
    inside = start <= installed < end if kind == "fixed" else start <= installed <= end
    verdict = check(entry, _text(installed))
    assert verdict.affected == inside
    assert verdict.fixed == (_text(end) if inside and kind == "fixed" else None)


def test_the_range_walk_in_each_order() -> None:
    def affected(ecosystem: str, installed: str, fixed: str, kind: str = "ECOSYSTEM") -> bool:
        rng = Range(kind, (("introduced", "0"), ("fixed", fixed)))
        return check(Affected(ecosystem, "", "x", (rng,), (), None), installed).affected

    assert affected("Debian", "1.0~rc1-1", "1.0-1") and not affected("Debian", "1:0.9-1", "2.0-1")
    assert affected("Alpine", "1.2.4-r9", "1.2.4-r10") and affected("Alpine", "1.2.4_rc1-r0", "1.2.4-r0")
    # apk's snapshot suffixes (Alpine 3.19's musl is 1.2.4_git20230717-r4): after the release,
    # before the next, ordered by their numbers and revisions.
    assert affected("Alpine", "1.2.4_git20230717-r4", "1.2.4_git20230717-r5")
    assert affected("Alpine", "1.2.4_git20230717-r4", "1.2.5-r0")
    assert affected("Alpine", "1.2.4_svn5", "1.2.4_svn10") and affected("Alpine", "1.2.4_hg1-r0", "1.2.5")
    assert not affected("Alpine", "1.2.4_git20230717-r4", "1.2.4-r9")  # a snapshot is past the release
    assert not affected("Alpine", "1.2.4_cvs20230101-r0", "1.2.4_cvs20221231-r9")
    assert affected("PyPI", "2.0rc1", "2.0") and not affected("PyPI", "2.0.post1", "2.0")
    assert affected("Go", "v0.0.0-20220101000000-abcdefabcdef", "0.1.0", "SEMVER")
    assert affected("Maven", "1.0-SNAPSHOT", "1.0") and not affected("Maven", "1.0.Final", "1.0")
    assert affected("RubyGems", "1.0.0.pre", "1.0.0") and affected("npm", "1.0.0-beta", "1.0.0", "SEMVER")
    assert not affected("PyPI", "not a version!", "2.0")  # unparseable: never affected by a range
    assert not affected("Conan", "1.0", "2.0")  # an order this module does not know
    listed = Affected("PyPI", "", "x", (), ("1.0.0",), None)
    assert check(listed, "1.0").affected  # listed versions compare in the ecosystem's order
    both = Affected(
        "PyPI", "", "x", (Range("ECOSYSTEM", (("introduced", "1.0"), ("fixed", "1.1"))),), ("1.0",), None
    )
    assert check(both, "1.0").fixed == "1.1"  # a listed version's range names its fix


def test_severity_words_and_vectors() -> None:
    assert [from_word(w) for w in ("unimportant", "low**", "MODERATE", "important", "untriaged", 3)] == [
        "low", "low", "medium", "high", None, None,
    ]  # fmt: skip
    v2 = from_vector("CVSS_V2", "AV:N/AC:L/Au:N/C:C/I:C/A:C")
    assert v2 is not None and (v2.level, v2.score) == ("high", 10.0)
    assert from_vector("CVSS_V3", "CVSS:3.1/garbage") is None
    assert from_vector("CVSS_V4", "nope") is None
    assert from_vector("Ubuntu", "high") is None
