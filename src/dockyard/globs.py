"""Repository globs: ``*`` within one path component, ``**`` across components, ``?`` one character.

``team-a/**`` is everything under ``team-a/``; ``library/*`` is one level below ``library``.
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=1024)
def glob_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def glob_match(pattern: str, name: str) -> bool:
    return glob_regex(pattern).fullmatch(name) is not None
