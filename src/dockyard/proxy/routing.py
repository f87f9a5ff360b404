"""Which upstream a repository name belongs to, and under which name it is stored.

* ``<prefix>/<rest>`` (``docker.io/library/nginx``): the upstream with that prefix, asked for
  ``<rest>``; for the Docker Hub upstream (``dockerhub: true``) a one-component rest gets Docker
  Hub's ``library/`` (``docker.io/nginx`` is ``library/nginx`` there, stored as
  ``docker.io/library/nginx``).
* distribution's ``proxy.remoteurl``: the empty prefix, every name, stored as it is.
* any other name is hosted, except on reads of a name no hosted repository holds while an
  upstream has ``dockerhub: true``: docker's ``registry-mirrors`` asks for ``library/nginx`` with
  no host. Such a read is the Docker Hub upstream's, stored under its prefixed name. A push to an
  unprefixed name is always hosted, and from then on that hosted repository answers for the name
  (it shadows the mirror for ``registry-mirrors`` clients, which can still use the prefixed name).
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.proxy.upstream import UpstreamClient


@dataclass(frozen=True, slots=True)
class Target:
    """A proxied repository: its upstream, its name there, and its name in this registry."""

    upstream: UpstreamClient
    remote: str
    stored: str


class Router:
    def __init__(self, upstreams: list[UpstreamClient]) -> None:
        self.upstreams = upstreams
        self.dockerhub = next((u for u in upstreams if u.config.dockerhub), None)
        # Longest prefix first (prefixes never nest: the configuration refuses it; kept for clarity).
        self._prefixed = sorted(upstreams, key=lambda u: -len(u.config.prefix))

    @property
    def namespaces(self) -> frozenset[str]:
        """The prefixes a containerd ``ns=`` parameter may name."""
        return frozenset(u.config.prefix for u in self.upstreams if u.config.prefix)

    def prefixed(self, name: str) -> Target | None:
        """The target of a name under a prefix (or of every name, for distribution's remoteurl)."""
        for upstream in self._prefixed:
            prefix = upstream.config.prefix
            if not prefix:
                return Target(upstream, name, name)
            if name.startswith(prefix + "/"):
                rest = name[len(prefix) + 1 :]
                if upstream.config.dockerhub and "/" not in rest:
                    rest = f"library/{rest}"
                return Target(upstream, rest, f"{prefix}/{rest}")
        return None

    def unprefixed(self, name: str) -> Target | None:
        """Where a read of a name outside every prefix goes when no hosted repository holds it."""
        hub = self.dockerhub
        if hub is None:
            return None
        rest = name if "/" in name else f"library/{name}"
        return Target(hub, rest, f"{hub.config.prefix}/{rest}")
