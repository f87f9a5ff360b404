"""Robot accounts / access tokens: named, scoped to repository globs and actions, expiring,
revocable, stored only as a SHA-256 hash (the secret is 256 random bits, shown once).

Log in with user ``robot$<name>`` and the token as the password. Where they live is behind
:class:`RobotAccounts`: without a database, :class:`RobotStore`, a JSON file (0600) re-read when it
changes, so revocation takes effect at once in every worker of one machine; with ``database.dsn``,
``auth.pgrobots.PostgresRobots``, so a robot created on one replica logs in on every other.
Reads are synchronous over a snapshot (the rules ask about robots on every request);
:meth:`RobotAccounts.refresh` brings the snapshot up to date, and logins call it first.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from dockyard.auth.fileutil import stamp, write_private

PREFIX = "robot$"
TOKEN_PREFIX = "dyt_"  # noqa: S105 - a prefix, not a secret
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class RobotError(ValueError):
    pass


@dataclass(frozen=True)
class Robot:
    name: str
    repositories: tuple[str, ...]
    actions: tuple[str, ...]
    created: float
    expires: float | None
    revoked: float | None
    hash: str
    id: str

    @property
    def username(self) -> str:
        return PREFIX + self.name

    def active(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.revoked is None and (self.expires is None or now < self.expires)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def match_token(robots: list[Robot], username: str, secret: str) -> Robot | None:
    """The active robot whose token this is (compared in constant time against every entry)."""
    presented = _digest(secret)
    found = None
    for robot in robots:
        if hmac.compare_digest(presented, robot.hash):
            found = robot
    if found is None or not hmac.compare_digest(username.encode(), found.username.encode()):
        return None
    return found if found.active() else None


def new_robot(
    name: str, repositories: list[str], actions: list[str], lifetime: float | None, now: float
) -> tuple[Robot, str]:
    """A robot and its secret (shown once), after checking what the caller asked for."""
    if not NAME_RE.fullmatch(name):
        raise RobotError(f"invalid robot name {name!r} (lowercase letters, digits, . _ -)")
    if not repositories:
        raise RobotError("give at least one repository pattern")
    bad = set(actions) - {"pull", "push", "delete", "*"}
    if bad or not actions:
        raise RobotError(f"actions must be among pull, push, delete, * (got {sorted(bad) or 'none'})")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    robot = Robot(
        name=name,
        repositories=tuple(repositories),
        actions=tuple(actions),
        created=now,
        expires=now + lifetime if lifetime else None,
        revoked=None,
        hash=_digest(secret),
        id=secrets.token_hex(8),
    )
    return robot, secret


class RobotAccounts(Protocol):
    """Where robot accounts live: a file on this machine, or the replicas' database."""

    async def refresh(self) -> None:
        """Bring the snapshot the synchronous reads answer from up to date."""

    def robots(self) -> list[Robot]: ...

    def get(self, name: str) -> Robot | None: ...

    def authenticate(self, username: str, secret: str) -> Robot | None:
        """The active robot whose token this is, or None."""

    async def create(
        self, name: str, repositories: list[str], actions: list[str], lifetime: float | None
    ) -> tuple[Robot, str]:
        """A new robot and its secret; RobotError if the name is taken by an active one."""

    async def revoke(self, name: str) -> Robot:
        """RobotError if there is no active robot of that name."""


class RobotStore:
    """Robot accounts in a JSON file: the processes of one machine (the default)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int, int] | None = None
        self._robots: list[Robot] = []
        self._lock = threading.Lock()

    async def refresh(self) -> None:
        """Nothing to do: every read checks the file's stamp."""

    def robots(self) -> list[Robot]:
        with self._lock:
            current = stamp(self.path)
            if current != self._stamp:
                self._robots = self._read() if current else []
                self._stamp = current
            return self._robots

    def _read(self) -> list[Robot]:
        data = json.loads(self.path.read_text() or "[]")
        return [
            Robot(**{**r, "repositories": tuple(r["repositories"]), "actions": tuple(r["actions"])})
            for r in data
        ]

    def get(self, name: str) -> Robot | None:
        return next((r for r in self.robots() if r.name == name), None)

    def authenticate(self, username: str, secret: str) -> Robot | None:
        return match_token(self.robots(), username, secret)

    # --- management (the CLI) ---------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[list[Robot]]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                robots = self._read() if self.path.exists() else []
                yield robots
                data = json.dumps([asdict(r) for r in robots], indent=1).encode()
                write_private(self.path, data)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    async def create(
        self, name: str, repositories: list[str], actions: list[str], lifetime: float | None
    ) -> tuple[Robot, str]:
        robot, secret = new_robot(name, repositories, actions, lifetime, time.time())
        with self._locked() as robots:
            if any(r.name == name and r.revoked is None for r in robots):
                raise RobotError(f"a robot named {name!r} exists (revoke it first)")
            robots[:] = [r for r in robots if r.name != name]
            robots.append(robot)
        return robot, secret

    async def revoke(self, name: str) -> Robot:
        with self._locked() as robots:
            for i, robot in enumerate(robots):
                if robot.name == name and robot.revoked is None:
                    robots[i] = revoked = Robot(**{**asdict(robot), "revoked": time.time()})
                    return revoked
        raise RobotError(f"no active robot named {name!r}")
