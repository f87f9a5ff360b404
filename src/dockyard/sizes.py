"""Byte sizes for people: ``10GiB``, ``500MB``, ``1.5G``, plain integers (bytes)."""

from __future__ import annotations

import re

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGTP]?i?B?)", re.IGNORECASE)
_FACTORS = {"": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5}


def parse_size(value: str | int) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a size such as 10GiB, 500MB or a number of bytes")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size must not be negative")
        return value
    match = _SIZE.fullmatch(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a size; use forms such as 10GiB, 500MB or 1048576")
    number, unit = float(match.group(1)), match.group(2).upper()
    binary = "I" in unit
    prefix = unit.replace("I", "").replace("B", "")
    factor = 1024 ** list(_FACTORS).index(prefix) if binary else _FACTORS[prefix]
    return int(number * factor)


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover
