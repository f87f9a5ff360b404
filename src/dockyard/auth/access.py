"""What a request needs (derived from the route table) and who decides whether it may have it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request


@dataclass(frozen=True, slots=True)
class Access:
    """One resource scope item, e.g. ``repository:library/alpine:pull``."""

    type: str
    name: str
    action: str

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{self.action}"


@dataclass(frozen=True, slots=True)
class Identity:
    subject: str  # "" for anonymous
    # What a bearer token granted, as (type, name, action) triples (token mode only).
    granted: frozenset[tuple[str, str, str]] = frozenset()


ANONYMOUS = Identity("")


class AccessController(Protocol):
    async def authorize(self, request: Request, accesses: list[Access]) -> Identity:
        """Return who is asking, or raise RegistryError (401 with a challenge, or 403)."""

    def visible(self, identity: Identity) -> Callable[[str], bool] | None:
        """Which repositories ``identity`` may pull (the catalog lists only these, and automatic
        blob mounts draw only from these); None when every repository is visible."""


class AllowAll:
    """No authentication: every request may do everything (the loopback development default)."""

    async def authorize(self, request: Request, accesses: list[Access]) -> Identity:
        return ANONYMOUS

    def visible(self, identity: Identity) -> Callable[[str], bool] | None:
        return None
