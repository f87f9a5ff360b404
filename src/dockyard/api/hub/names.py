"""Mapping dockyard's repository names onto Docker Hub's ``{namespace}/{repository}``.

* ``a/b`` is namespace ``a``, repository ``b``.
* ``a/b/c`` (nested) is namespace ``a``, repository ``b/c``: in a URL the repository may be written
  with its slash as is (``/v2/repositories/a/b/c/tags/``) or encoded (``b%2Fc``).
* ``myimage`` (no slash) is namespace ``library``, repository ``myimage``, as on Docker Hub. If a
  repository literally named ``library/myimage`` exists it wins: ``library/myimage`` addresses it,
  and the top-level ``myimage`` is then reachable through the registry API and the UI only.
* A repository with a path component named ``tags``, ``manifests``, ``blobs`` or ``referrers``
  cannot be addressed here (those words end the repository part of a Hub path).
"""

from __future__ import annotations

from dockyard.storage.registry import Registry

LIBRARY = "library"
RESERVED = ("tags", "manifests", "blobs", "referrers")
# One repository path component that is not a reserved word, then more of them.
_COMPONENT = r"(?!(?:" + "|".join(RESERVED) + r")(?:/|$))[^/]+"
REPOSITORY_PATTERN = rf"(?P<repository>{_COMPONENT}(?:/{_COMPONENT})*?)"
NAMESPACE_PATTERN = r"(?P<namespace>[^/]+)"


def split(name: str) -> tuple[str, str]:
    """A stored name → (namespace, repository)."""
    namespace, sep, rest = name.partition("/")
    return (namespace, rest) if sep else (LIBRARY, name)


async def resolve(registry: Registry, namespace: str, repository: str) -> str:
    """(namespace, repository) from a Hub path → the stored repository name."""
    full = f"{namespace}/{repository}"
    if namespace == LIBRARY and "/" not in repository and not await registry.repository_exists(full):
        return repository
    return full


def members(names: list[str], namespace: str) -> list[tuple[str, str]]:
    """The (stored name, Hub repository) pairs of ``namespace`` in the sorted ``names``."""
    prefix = namespace + "/"
    inside = [(n, n[len(prefix) :]) for n in names if n.startswith(prefix)]
    if namespace != LIBRARY:
        return inside
    taken = {repo for _, repo in inside}
    top = [(n, n) for n in names if "/" not in n and n not in taken]
    return sorted(inside + top, key=lambda pair: pair[1])
