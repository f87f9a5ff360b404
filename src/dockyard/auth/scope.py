"""The token scope grammar (distribution ``scope.md``): ``type:name:action,action`` items, space-separated.

The name may hold one ``:`` (a registry host's port), so the type is split off at the first ``:``
and the actions at the last. ``repository(plugin)`` is read as ``repository`` (the class is
deprecated and ignored). Repository names must satisfy the OCI name grammar, which rules out
``..`` and other traversal; the only ``registry`` resource is ``catalog``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockyard.oci.reference import NameError_, validate_name

_TYPE_RE = re.compile(r"(?P<type>[a-z0-9]+)(?:\((?P<cls>[a-z0-9]+)\))?")
_ACTION_RE = re.compile(r"[a-z]*|\*")
KNOWN_ACTIONS = frozenset({"pull", "push", "delete", "*"})


class ScopeError(ValueError):
    """A scope string that does not follow the grammar."""


@dataclass(frozen=True, slots=True)
class ResourceScope:
    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def claim(self) -> dict[str, object]:
        """The JWT ``access`` entry for this resource."""
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def parse_resource_scope(item: str) -> ResourceScope:
    rtype, sep, rest = item.partition(":")
    name, sep2, actions_text = rest.rpartition(":")
    if not sep or not sep2 or not name:
        raise ScopeError(f"scope {item[:200]!r} is not type:name:actions")
    found = _TYPE_RE.fullmatch(rtype)
    if found is None:
        raise ScopeError(f"scope {item[:200]!r}: bad resource type")
    rtype = found["type"]
    actions: list[str] = []
    for action in actions_text.split(","):
        if not _ACTION_RE.fullmatch(action):
            raise ScopeError(f"scope {item[:200]!r}: bad action {action[:40]!r}")
        if action and action not in actions:
            actions.append(action)
    if rtype == "repository":
        try:
            validate_name(name)
        except NameError_ as exc:
            raise ScopeError(f"scope {item[:200]!r}: {exc}") from None
    elif rtype == "registry":
        if name not in ("catalog", "admin"):
            raise ScopeError(f"scope {item[:200]!r}: registry resources are 'catalog' and 'admin'")
    elif not re.fullmatch(r"[a-zA-Z0-9._:/-]+", name):
        raise ScopeError(f"scope {item[:200]!r}: bad resource name")
    return ResourceScope(rtype, name, tuple(actions))


def parse_scopes(values: list[str]) -> list[ResourceScope]:
    """Every ``scope`` value (each may list several space-separated items), merged per resource."""
    merged: dict[tuple[str, str], list[str]] = {}
    for value in values:
        for item in value.split(" "):
            if not item:
                continue
            scope = parse_resource_scope(item)
            actions = merged.setdefault((scope.type, scope.name), [])
            actions.extend(a for a in scope.actions if a not in actions)
    return [ResourceScope(t, n, tuple(a)) for (t, n), a in merged.items()]


def format_scopes(scopes: list[ResourceScope]) -> str:
    return " ".join(str(s) for s in scopes)
