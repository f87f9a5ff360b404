"""Property tests for the name, tag, digest and reference grammars."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.oci.digest import Digest, DigestError
from dockyard.oci.reference import (
    NameError_,
    TagError,
    is_valid_name,
    parse_reference,
    validate_name,
    validate_tag,
)

COMPONENT = st.from_regex(r"[a-z0-9]{1,8}(?:(?:\.|_|__|-{1,3})[a-z0-9]{1,8}){0,2}", fullmatch=True)
NAMES = st.lists(COMPONENT, min_size=1, max_size=5).map("/".join).filter(lambda n: len(n) <= 255)
TAGS = st.from_regex(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", fullmatch=True)


@given(NAMES)
def test_grammatical_names_are_accepted(name: str) -> None:
    assert validate_name(name) == name


@given(st.text(max_size=300))
def test_accepted_names_are_safe_storage_paths(name: str) -> None:
    if is_valid_name(name):
        parts = name.split("/")
        assert all(p and p not in (".", "..") and not p.startswith(("_", ".", "-")) for p in parts)
        assert "\x00" not in name and not name.startswith("/") and len(name) <= 255
        assert re.fullmatch(r"[a-z0-9._/-]+", name)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "A",
        "a/",
        "/a",
        "a//b",
        "..",
        "a/../b",
        "a/./b",
        "-a",
        "a-",
        "a___b",
        "a\x00b",
        "a" * 256,
        "_a",
        "a/_uploads",
    ],
)
def test_bad_names(bad: str) -> None:
    with pytest.raises(NameError_):
        validate_name(bad)


@given(TAGS)
def test_grammatical_tags(tag: str) -> None:
    assert validate_tag(tag) == tag
    assert parse_reference(tag) == tag


@given(st.text(max_size=140))
def test_tags_never_contain_path_separators(tag: str) -> None:
    try:
        validate_tag(tag)
    except TagError:
        return
    assert "/" not in tag and ".." not in tag[:1] and len(tag) <= 128 and tag[0] not in ".-"


@given(st.binary(max_size=256), st.sampled_from(["sha256", "sha512"]))
def test_digest_round_trip(data: bytes, algorithm: str) -> None:
    digest = Digest.of(data, algorithm)
    assert digest.hex == hashlib.new(algorithm, data).hexdigest()
    assert Digest.parse(str(digest)) == digest
    assert parse_reference(str(digest)) == digest


@given(st.text(max_size=200))
def test_digest_parser_never_crashes(value: str) -> None:
    try:
        digest = Digest.parse(value)
    except DigestError:
        return
    assert str(digest) == value
    assert re.fullmatch(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}", value)


@pytest.mark.parametrize(
    "bad",
    [
        "sha256",
        "sha256:",
        "sha256:" + "a" * 63,
        "sha256:" + "A" * 64,
        "md5:" + "a" * 32,
        "SHA256:" + "a" * 64,
        "sha256:" + "a" * 64 + "\n",
    ],
)
def test_bad_digests(bad: str) -> None:
    with pytest.raises(DigestError):
        Digest.parse(bad)
