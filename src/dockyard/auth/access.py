"""What a request needs (derived from the route table) and who decides whether it may have it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from starlette.requests import Request

if TYPE_CHECKING:  # the controllers' modules load bcrypt and the JWT stack: only when auth is on
    from dockyard.auth.credentials import Authenticated, Authenticator
    from dockyard.auth.keys import SigningKeys
    from dockyard.auth.rules import Policy
    from dockyard.config import TokenAuth

Mode = Literal["none", "htpasswd", "token"]


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


@dataclass(frozen=True, slots=True)
class TokenIssuer:
    """What the built-in token server issues with: the controller's own authenticator (so failed
    logins are throttled once across ``/token`` and the registry), its rules and its signing keys."""

    config: TokenAuth
    authenticator: Authenticator
    policy: Policy
    keystore: SigningKeys


class AccessController(Protocol):
    """Everything the API, the Hub API and the UI ask about callers, so none of them needs to know
    which controller the configuration chose."""

    mode: Mode  # the ``auth`` mode this controller implements
    issuer: TokenIssuer | None  # set when this controller runs the built-in token server

    async def authorize(self, request: Request, accesses: list[Access]) -> Identity:
        """Return who is asking, or raise RegistryError (401 with a challenge, or 403)."""

    def visible(self, identity: Identity) -> Callable[[str], bool] | None:
        """Which repositories ``identity`` may pull (the catalog lists only these, and automatic
        blob mounts draw only from these); None when every repository is visible."""

    def may(self, identity: Identity, access: Access) -> bool:
        """Whether ``identity`` may have ``access`` (a repository action or ``registry:admin:*``)
        by its token's grants or the rules; asked by listings and the UI, which never challenge."""

    async def authenticate(self, username: str, password: str, client: str) -> Authenticated | None:
        """The caller these credentials name, or None; ``errors.Throttled`` while ``client`` or
        ``username`` is throttled. None always when there are no accounts (mode ``none``)."""

    async def still_valid(self, subject: str, fingerprint: str) -> bool:
        """Whether a login remembered as (subject, credential fingerprint) still holds: the password
        unchanged, the robot not revoked (UI sessions are checked on every page)."""


class AllowAll:
    """No authentication: every request may do everything (the loopback development default)."""

    mode: Mode = "none"
    issuer: TokenIssuer | None = None

    async def authorize(self, request: Request, accesses: list[Access]) -> Identity:
        return ANONYMOUS

    def visible(self, identity: Identity) -> Callable[[str], bool] | None:
        return None

    def may(self, identity: Identity, access: Access) -> bool:
        return True

    async def authenticate(self, username: str, password: str, client: str) -> Authenticated | None:
        return None

    async def still_valid(self, subject: str, fingerprint: str) -> bool:
        return False
