"""Parsers and builders for the headers and query parameters the API speaks.

Each parser raises :class:`RegistryError` with the code the spec gives for bad input.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from dockyard.errors import ErrorCode, RegistryError

_BYTES_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d{1,19})-(\d{1,19})(?:/(?:\d{1,19}|\*))?")


class RangeNotSatisfiable(Exception):
    pass


def parse_byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single RFC 9110 ``Range: bytes=...`` → inclusive (start, end) within ``size``.

    None means "send the whole content" (no header, or one this server may ignore such as a
    multi-range). Raise :class:`RangeNotSatisfiable` when the range lies outside the content.
    """
    if not header:
        return None
    match = _BYTES_RANGE.fullmatch(header.strip())
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # syntactically invalid: ignore the header
    if start >= size:
        raise RangeNotSatisfiable
    return start, min(end, size - 1)


def parse_content_range(header: str) -> tuple[int, int]:
    """An upload chunk's ``Content-Range: <start>-<end>`` (inclusive)."""
    match = _CONTENT_RANGE.fullmatch(header.strip())
    if not match:
        raise RegistryError(
            ErrorCode.BLOB_UPLOAD_INVALID,
            f"malformed Content-Range {header[:64]!r}: expected <start>-<end>, e.g. 0-1048575",
        )
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise RegistryError(ErrorCode.RANGE_INVALID, f"Content-Range {header[:64]!r} ends before it starts")
    return start, end


def parse_content_length(header: str | None) -> int | None:
    if header is None:
        return None
    value = header.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 19:
        raise RegistryError(ErrorCode.SIZE_INVALID, f"invalid Content-Length {header[:32]!r}")
    return int(value)


def parse_page_size(value: str | None, *, default: int | None, maximum: int) -> tuple[int | None, bool]:
    """``n`` → (page size, clamped?). None means "everything"."""
    if value is None or value == "":
        return default, False
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise RegistryError(
            ErrorCode.PAGINATION_NUMBER_INVALID,
            f"n must be a non-negative integer, not {value[:32]!r}",
            {"n": value[:32]},
        )
    n = int(value)
    return (maximum, True) if n > maximum else (n, False)


def next_link(path: str, n: int, last: str, extra: dict[str, str] | None = None) -> str:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in (extra or {}).items())
    query = (query + "&" if query else "") + f"n={n}&last={quote(last, safe='')}"
    return f'<{path}?{query}>; rel="next"'


def range_header(size: int) -> str:
    """The upload ``Range`` header: inclusive last offset, ``0-0`` for an empty upload."""
    return f"0-{max(size - 1, 0)}"
