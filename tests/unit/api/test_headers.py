"""Property tests for Range, Content-Range, Content-Length, page sizes and Link headers."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.api.headers import (
    RangeNotSatisfiable,
    next_link,
    parse_byte_range,
    parse_content_length,
    parse_content_range,
    parse_page_size,
)
from dockyard.errors import RegistryError

SIZES = st.integers(min_value=0, max_value=10**12)


@given(SIZES, st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=10**12))
def test_byte_range_is_within_content(size: int, a: int, b: int) -> None:
    try:
        result = parse_byte_range(f"bytes={a}-{b}", size)
    except RangeNotSatisfiable:
        assert a >= size
        return
    if result is None:
        assert b < a
        return
    start, end = result
    assert start == a and 0 <= start <= end < size and end == min(b, size - 1)


@given(SIZES, st.integers(min_value=0, max_value=10**12))
def test_suffix_and_open_ranges(size: int, n: int) -> None:
    try:
        start, end = parse_byte_range(f"bytes=-{n}", size) or (0, size - 1)
    except RangeNotSatisfiable:
        assert n == 0 or size == 0
    else:
        assert end == size - 1 and end - start + 1 == min(n, size)
    try:
        open_range = parse_byte_range(f"bytes={n}-", size)
    except RangeNotSatisfiable:
        assert n >= size
    else:
        assert open_range == (n, size - 1)


@given(st.text(max_size=40), SIZES)
def test_byte_range_parser_never_crashes(header: str, size: int) -> None:
    try:
        result = parse_byte_range(header, size)
    except RangeNotSatisfiable:
        return
    if result is not None:
        assert 0 <= result[0] <= result[1] < size


@given(st.integers(min_value=0, max_value=10**15), st.integers(min_value=0, max_value=10**15))
def test_content_range_round_trip(start: int, end: int) -> None:
    for header in (f"{start}-{end}", f"bytes {start}-{end}", f"bytes={start}-{end}/*"):
        if end < start:
            with pytest.raises(RegistryError) as info:
                parse_content_range(header)
            assert info.value.status == 416
        else:
            assert parse_content_range(header) == (start, end)


@given(st.text(max_size=40))
def test_content_range_rejects_garbage_with_400_or_416(header: str) -> None:
    try:
        start, end = parse_content_range(header)
    except RegistryError as exc:
        assert exc.status in (400, 416)
    else:
        assert 0 <= start <= end


@given(st.text(max_size=25))
def test_content_length(value: str) -> None:
    try:
        n = parse_content_length(value)
    except RegistryError as exc:
        assert exc.entries[0][0].spec.code == "SIZE_INVALID"
    else:
        assert n is not None and n >= 0 and str(n) == value.strip().lstrip("0").rjust(1, "0")


@given(st.one_of(st.none(), st.text(max_size=12), st.integers(min_value=0, max_value=10**6).map(str)))
def test_page_size(value: str | None) -> None:
    try:
        n, clamped = parse_page_size(value, default=100, maximum=1000)
    except RegistryError as exc:
        assert exc.entries[0][0].spec.code == "PAGINATION_NUMBER_INVALID"
        return
    assert n is not None and 0 <= n <= 1000
    assert clamped == (value not in (None, "") and int(value) > 1000)


@given(st.text(min_size=1, max_size=50), st.integers(min_value=1, max_value=1000))
def test_link_header_round_trips_last(last: str, n: int) -> None:
    link = next_link("http://h/v2/x/tags/list", n, last)
    assert link.endswith('>; rel="next"')
    query = parse_qs(urlsplit(link[1 : link.index(">")]).query, keep_blank_values=True)
    assert query["n"] == [str(n)] and query["last"] == [last]
