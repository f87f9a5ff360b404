"""What the rules let a caller see and do: the half both access controllers share.

Kept apart from ``controllers`` so that code asking "may this caller see that repository?" does
not import cryptography, PyJWT and bcrypt: a registry without auth never loads them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.requests import Request

from dockyard.auth.access import Access, Identity
from dockyard.auth.robots import PREFIX
from dockyard.auth.rules import Policy, Principal

if TYPE_CHECKING:
    from dockyard.auth.credentials import Authenticated, Authenticator


def client_address(request: Request) -> str:
    return request.client.host if request.client else "-"


class PolicyVisibility:
    """The base of both controllers: accounts (``authenticator``) and what the rules (``policy``)
    let each caller see and do. Only ``authorize`` (how a request proves who it is) differs."""

    def __init__(self, authenticator: Authenticator, policy: Policy) -> None:
        self.authenticator = authenticator
        self.policy = policy

    def principal(self, subject: str) -> Principal:
        robot = None
        if subject.startswith(PREFIX) and self.authenticator.robots is not None:
            robot = self.authenticator.robots.get(subject[len(PREFIX) :])
            if robot is None or not robot.active():
                return Principal(subject, robot=None, groups=frozenset(), admin=False)
        return self.policy.principal(subject, robot)

    def allowed(self, who: Principal, access: Access) -> bool:
        if access.type == "repository":
            return access.action in self.policy.repository_actions(who, access.name)
        if access.type == "registry" and access.name == "catalog":
            return self.policy.may_list_catalog(who)
        if access.type == "registry" and access.name == "admin":
            return self.policy.is_admin(who)
        return False

    def visible(self, identity: Identity) -> Callable[[str], bool] | None:
        who = self.principal(identity.subject)
        granted = identity.granted

        def may_pull(name: str) -> bool:
            return ("repository", name, "pull") in granted or self.policy.may_pull(who, name)

        return may_pull

    def may(self, identity: Identity, access: Access) -> bool:
        if (access.type, access.name, access.action) in identity.granted:
            return True
        return self.allowed(self.principal(identity.subject), access)

    async def authenticate(self, username: str, password: str, client: str) -> Authenticated | None:
        return await self.authenticator.login(username, password, client)

    async def still_valid(self, subject: str, fingerprint: str) -> bool:
        return await self.authenticator.still_valid(subject, fingerprint) is not None
