"""Who is using the UI and what they may do: the registry's users, robot tokens and rules."""

from __future__ import annotations

from collections.abc import Callable

from dockyard.auth.access import ANONYMOUS, Access, AccessController, Identity
from dockyard.web.sessions import Session


def auth_enabled(access: AccessController) -> bool:
    return access.mode != "none"


async def identity_of(access: AccessController, session: Session | None) -> Identity:
    """The session's user while their password is unchanged and their robot not revoked."""
    if session is None or not await access.still_valid(session.subject, session.fingerprint):
        return ANONYMOUS
    return Identity(session.subject)


class Permissions:
    def __init__(self, access: AccessController, identity: Identity) -> None:
        self.access = access
        self.identity = identity
        self._visible = access.visible(identity)

    @property
    def visible(self) -> Callable[[str], bool] | None:
        return self._visible

    def can_pull(self, name: str) -> bool:
        return self._visible is None or self._visible(name)

    def can_delete(self, name: str) -> bool:
        return self.access.may(self.identity, Access("repository", name, "delete"))

    def is_admin(self) -> bool:
        return self.access.may(self.identity, Access("registry", "admin", "*"))
