"""Checking a username and password: htpasswd users and robot tokens, throttled.

Every failure looks the same to the client (401, one message), whether the user exists or not;
unknown users cost a dummy bcrypt check. Throttling counts failures per client address and per
account name and refuses with ``Throttled`` (429 ``TOOMANYREQUESTS`` with ``Retry-After``) while
over the limit.
Nothing here logs a password or token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from dataclasses import dataclass

import anyio.to_thread

from dockyard.auth.htpasswd import HtpasswdFile
from dockyard.auth.robots import PREFIX, TOKEN_PREFIX, Robot, RobotAccounts
from dockyard.auth.throttle import LoginThrottle
from dockyard.errors import Throttled
from dockyard.events import EventSink, LoginFailed, LoginSucceeded, NullSink

log = logging.getLogger("dockyard.auth")


@dataclass(frozen=True)
class Authenticated:
    subject: str
    robot: Robot | None
    fingerprint: str  # changes when the password changes or the robot is replaced; binds refresh tokens


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """``Basic base64(user:password)`` → (user, password); None when absent or not Basic."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    user, _, password = decoded.partition(":")
    return user, password


def _user_fingerprint(hashed: str) -> str:
    return hashlib.sha256(hashed.encode()).hexdigest()[:32]


class Authenticator:
    """``events`` hears of each login that succeeded, failed or was throttled (metrics, audit)."""

    def __init__(
        self,
        users: HtpasswdFile | None,
        robots: RobotAccounts | None,
        throttle: LoginThrottle,
        events: EventSink | None = None,
    ) -> None:
        self.users = users
        self.robots = robots
        self.throttle = throttle
        self.events = events or NullSink()

    async def login(self, username: str, password: str, client: str) -> Authenticated | None:
        """The caller if the credentials are good; None if not; Throttled while over the limit."""
        keys = [f"addr:{client}", f"user:{username[:256]}"]
        account = username[:256]
        wait = await self.throttle.retry_after(keys)
        if wait:
            self.events.emit(LoginFailed(account, client, throttled=True))
            raise Throttled(wait)
        found = await self._check(username, password)
        if found is None:
            await self.throttle.failure(keys)
            log.info("failed login", extra={"remote": client})
            self.events.emit(LoginFailed(account, client))
        else:
            await self.throttle.success(keys[1])
            self.events.emit(LoginSucceeded(found.subject, client))
        return found

    async def _check(self, username: str, password: str) -> Authenticated | None:
        if username.startswith(PREFIX) and password.startswith(TOKEN_PREFIX):
            if self.robots is None:
                return None
            await self.robots.refresh()
            robot = self.robots.authenticate(username, password)
            return Authenticated(username, robot, robot.id) if robot else None
        if self.users is None:
            return None
        users = self.users
        hashed = await anyio.to_thread.run_sync(users.verify, username, password)
        return Authenticated(username, None, _user_fingerprint(hashed)) if hashed else None

    async def still_valid(self, subject: str, fingerprint: str) -> Authenticated | None:
        """Re-check a refresh token's subject: the password unchanged, the robot not revoked."""
        if subject.startswith(PREFIX):
            if self.robots is None:
                return None
            await self.robots.refresh()
            robot = self.robots.get(subject[len(PREFIX) :])
            if robot is None or not robot.active() or not hmac.compare_digest(robot.id, fingerprint):
                return None
            return Authenticated(subject, robot, robot.id)
        hashed = self.users.hash_of(subject) if self.users else None
        if hashed is None or not hmac.compare_digest(_user_fingerprint(hashed), fingerprint):
            return None
        return Authenticated(subject, None, fingerprint)
