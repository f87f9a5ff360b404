"""The htpasswd user file, bcrypt entries only (what Apache's ``htpasswd -B`` writes: ``user:$2y$…``).

Lookups re-read the file when it changes, so ``dockyard user add`` takes effect without a
restart. Checking a user who does not exist still runs bcrypt, against a dummy hash of the same
cost as the file's entries, so the answer and its timing do not reveal which users exist.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

import bcrypt

from dockyard.auth.fileutil import stamp, write_private

log = logging.getLogger("dockyard.auth")
USER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
DEFAULT_COST = 10
_BCRYPT_RE = re.compile(r"\$2[abxy]?\$(\d\d)\$[./A-Za-z0-9]{53}")


class HtpasswdError(ValueError):
    pass


def hash_password(password: str, cost: int = DEFAULT_COST) -> str:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()
    return "$2y$" + hashed[4:]  # Apache's prefix; bcrypt reads $2y$ and $2b$ alike


def _cost(entry: str) -> int | None:
    found = _BCRYPT_RE.fullmatch(entry)
    return int(found[1]) if found else None


_dummies: dict[int, bytes] = {}


def _dummy(cost: int) -> bytes:
    if cost not in _dummies:
        _dummies[cost] = bcrypt.hashpw(b"no such user", bcrypt.gensalt(rounds=cost))
    return _dummies[cost]


def parse(text: str, source: str = "htpasswd") -> dict[str, str]:
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or _cost(hashed) is None:
            log.warning(
                "ignoring an htpasswd entry that is not bcrypt", extra={"file": source, "line": number}
            )
            continue
        entries[user] = hashed
    return entries


class HtpasswdFile:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int, int] | None = None
        self._entries: dict[str, str] = {}
        self._lock = threading.Lock()

    def entries(self) -> dict[str, str]:
        with self._lock:
            current = stamp(self.path)
            if current != self._stamp:
                self._entries = parse(self.path.read_text(), str(self.path)) if current else {}
                self._stamp = current
            return self._entries

    def users(self) -> list[str]:
        return sorted(self.entries())

    def hash_of(self, user: str) -> str | None:
        return self.entries().get(user)

    def verify(self, user: str, password: str) -> str | None:
        """The user's stored hash when the password matches, else None (same cost either way)."""
        entries = self.entries()
        hashed = entries.get(user)
        if hashed is None:
            costs = [c for c in map(_cost, entries.values()) if c is not None]
            cost = max(set(costs), key=costs.count) if costs else DEFAULT_COST
            bcrypt.checkpw(password.encode(), _dummy(cost))
            return None
        try:
            ok = bcrypt.checkpw(password.encode(), hashed.encode())
        except ValueError:
            return None
        return hashed if ok else None

    # --- writes (the CLI) ------------------------------------------------------------------

    def set_password(self, user: str, password: str, *, cost: int = DEFAULT_COST, create: bool) -> None:
        if not USER_RE.fullmatch(user):
            raise HtpasswdError(f"invalid user name {user!r} (letters, digits, . _ @ + -)")
        if user.startswith("robot$"):
            raise HtpasswdError("user names starting with 'robot$' are reserved for robot accounts")
        if not password:
            raise HtpasswdError("the password must not be empty")
        entries = dict(self.entries())
        if create and user in entries:
            raise HtpasswdError(f"user {user!r} already exists (use 'dockyard user passwd')")
        if not create and user not in entries:
            raise HtpasswdError(f"no user {user!r}")
        entries[user] = hash_password(password, cost)
        self._write(entries)

    def remove(self, user: str) -> None:
        entries = dict(self.entries())
        if user not in entries:
            raise HtpasswdError(f"no user {user!r}")
        del entries[user]
        self._write(entries)

    def _write(self, entries: dict[str, str]) -> None:
        text = "".join(f"{user}:{hashed}\n" for user, hashed in entries.items())
        write_private(self.path, text.encode())
