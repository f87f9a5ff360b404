"""Access rules: who may pull, push and delete which repositories.

A rule names repositories by glob (``*`` within one path component, ``**`` across components:
``team-a/**`` is everything under ``team-a/``), the actions it grants, and to whom: users,
groups, every authenticated caller, or anonymous callers too (public repositories). Admins may do
everything. Without an ``auth.access`` section every authenticated user may do everything
(distribution's htpasswd behaviour) and anonymous callers nothing. Robot accounts get exactly
their own scope.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from dockyard.auth.robots import Robot
from dockyard.auth.scope import ResourceScope
from dockyard.config import AccessPolicy
from dockyard.globs import glob_match

ALL_ACTIONS = frozenset({"pull", "push", "delete"})


def _expand(actions: Iterable[str]) -> frozenset[str]:
    acts = frozenset(actions)
    return ALL_ACTIONS if "*" in acts else acts & ALL_ACTIONS


@dataclass(frozen=True)
class Principal:
    """Who is asking: ``subject`` "" is anonymous; a robot carries its own scope."""

    subject: str
    groups: frozenset[str] = frozenset()
    admin: bool = False
    robot: Robot | None = None

    @property
    def anonymous(self) -> bool:
        return self.subject == ""


ANONYMOUS_PRINCIPAL = Principal("")


@dataclass
class Policy:
    config: AccessPolicy | None = None
    _members: dict[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        members: dict[str, set[str]] = {}
        if self.config is not None:
            for group, users in self.config.groups.items():
                for user in users:
                    members.setdefault(user, set()).add(group)
        self._members = {u: frozenset(g) for u, g in members.items()}

    def principal(self, subject: str, robot: Robot | None = None) -> Principal:
        if not subject:
            return ANONYMOUS_PRINCIPAL
        if robot is not None:
            return Principal(subject, robot=robot)
        admins = self.config.admins if self.config is not None else []
        return Principal(subject, self._members.get(subject, frozenset()), subject in admins)

    def repository_actions(self, who: Principal, name: str) -> frozenset[str]:
        if who.robot is not None:
            robot = who.robot
            if any(glob_match(p, name) for p in robot.repositories):
                return _expand(robot.actions)
            return frozenset()
        if self.config is None:
            return frozenset() if who.anonymous else ALL_ACTIONS
        if who.admin:
            return ALL_ACTIONS
        granted: set[str] = set()
        for rule in self.config.rules:
            applies = (
                rule.anonymous
                or (not who.anonymous and rule.authenticated)
                or (not who.anonymous and who.subject in rule.users)
                or bool(who.groups.intersection(rule.groups))
            )
            if applies and any(glob_match(p, name) for p in rule.repositories):
                granted |= _expand(rule.actions)
        return frozenset(granted)

    def may_list_catalog(self, who: Principal) -> bool:
        if who.robot is not None:
            return "pull" in _expand(who.robot.actions)
        if who.anonymous:
            return self.config is not None and any(r.anonymous for r in self.config.rules)
        return True

    def is_admin(self, who: Principal) -> bool:
        if who.robot is not None or who.anonymous:
            return False
        return self.config is None or who.admin

    def may_pull(self, who: Principal, name: str) -> bool:
        return "pull" in self.repository_actions(who, name)

    def grant(self, who: Principal, requested: Iterable[ResourceScope]) -> list[ResourceScope]:
        """The intersection of what was asked and what is allowed (possibly empty; never an error)."""
        out: list[ResourceScope] = []
        actions: tuple[str, ...]
        for scope in requested:
            if scope.type == "repository":
                allowed = self.repository_actions(who, scope.name)
                wanted = ALL_ACTIONS if "*" in scope.actions else frozenset(scope.actions)
                actions = tuple(a for a in ("pull", "push", "delete") if a in wanted & allowed)
            elif scope.type == "registry" and scope.name == "catalog":
                actions = ("*",) if "*" in scope.actions and self.may_list_catalog(who) else ()
            elif scope.type == "registry" and scope.name == "admin":
                actions = ("*",) if "*" in scope.actions and self.is_admin(who) else ()
            else:
                actions = ()
            out.append(ResourceScope(scope.type, scope.name, actions))
        return [s for s in out if s.actions]
