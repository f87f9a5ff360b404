"""Go-style durations (``168h``, ``1h30m``, ``500ms``) as used in distribution's config."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: str | int | float) -> float:
    """Seconds in a duration; a bare number is seconds. Raise ValueError with the accepted form."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 24h or 1h30m")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration must not be negative")
        return float(value)
    text = value.strip()
    if text in ("0", ""):
        return 0.0
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"{value!r} is not a duration; use forms such as 30s, 15m, 24h, 7d or 1h30m")
    return total
