"""What a request needs (derived from the route table) and who decides whether it may have it."""

from __future__ import annotations

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


ANONYMOUS = Identity("")


class AccessController(Protocol):
    async def authorize(self, request: Request, accesses: list[Access]) -> Identity:
        """Return who is asking, or raise RegistryError (401 with a challenge, or 403)."""


class AllowAll:
    """No authentication: every request may do everything (the loopback development default)."""

    async def authorize(self, request: Request, accesses: list[Access]) -> Identity:
        return ANONYMOUS
