"""``check_path``: the one regex refuses exactly what the definition says (a plain absolute path
of components of safe characters, none of them ``.`` or ``..``)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.errors import InvalidPath
from dockyard.storage.driver import check_path

SAFE = re.compile(r"[A-Za-z0-9._-]+")


def allowed(path: str) -> bool:
    parts = path.split("/")
    return (
        len(parts) > 1
        and parts[0] == ""
        and all(SAFE.fullmatch(p) and p not in (".", "..") for p in parts[1:])
    )


PIECES = st.sampled_from(
    ["/", ".", "..", "a", "-", "_", "x.y", "é", " ", "\x00", "/..", "/.", "...", ".a", "a."]
)


@given(st.lists(PIECES, max_size=12).map("".join))
def test_check_path_refuses_exactly_the_unsafe(path: str) -> None:
    if allowed(path):
        assert check_path(path) == path
    else:
        with pytest.raises(InvalidPath):
            check_path(path)


@pytest.mark.parametrize("path", ["/.hidden", "/a/..b", "/a/b..", "/a/.../b", "/sha256/ab"])
def test_dots_inside_a_component_are_fine(path: str) -> None:
    assert check_path(path) == path
