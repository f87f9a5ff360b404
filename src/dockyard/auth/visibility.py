"""What the rules let a caller see: shared by both access controllers, the Hub API and the UI.

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
    from dockyard.auth.credentials import Authenticator


def client_address(request: Request) -> str:
    return request.client.host if request.client else "-"


class PolicyVisibility:
    """Shared by both controllers: the repositories a caller may pull, by the rules."""

    policy: Policy
    authenticator: Authenticator

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
