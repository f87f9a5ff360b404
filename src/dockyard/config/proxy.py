"""The ``proxy`` section: distribution's single ``remoteurl`` and dockyard's upstreams by prefix."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import (
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from dockyard.config.base import Duration, Section
from dockyard.semver import parse_range
from dockyard.sizes import parse_size


class Credentials(Section):
    """How a proxy signs in to its upstream. The secret comes from the configuration itself
    (distribution's ``password``), an environment variable, or a file (a mounted secret); it is
    never logged, and ``repr`` hides it."""

    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    passwordenv: str | None = None
    passwordfile: str | None = None

    def secret(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The password, read now (a rotated file or variable is picked up on the next token)."""
        if self.password is not None:
            return self.password
        if self.passwordenv is not None:
            return (os.environ if environ is None else environ).get(self.passwordenv)
        if self.passwordfile is not None:
            try:
                return Path(self.passwordfile).read_text().strip()
            except OSError:
                return None
        return None


def _remote(v: str) -> str:
    if not v.startswith(("http://", "https://")):
        raise ValueError("remoteurl must be a URL such as https://registry-1.docker.io")
    return v.rstrip("/")


def _check_platforms(v: list[str]) -> list[str]:
    for p in v:
        if not re.fullmatch(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?", p):
            raise ValueError(f"{p!r} is not a platform such as linux/amd64 or linux/arm64/v8")
    return v


class Upstream(Section):
    """One upstream registry, mirrored under a repository prefix: ``prefix: docker.io`` serves
    ``docker.io/library/nginx`` from ``<remoteurl>/v2/library/nginx``. ``dockerhub`` makes names
    outside every prefix that no hosted repository holds resolve here (docker's
    ``registry-mirrors`` asks for ``library/nginx`` with no host)."""

    prefix: str
    remoteurl: str
    credentials: Credentials = Credentials()
    ttl: Duration = 168 * 3600.0  # distribution's meaning: how long cached content is kept
    revalidate: Duration = 60.0  # how long a cached tag is served before a HEAD asks again
    platforms: list[str] = Field(default_factory=list)  # os/arch[/variant]; empty: all
    dockerhub: bool = False
    timeout: Duration = 30.0  # connect and per-read timeout towards the upstream

    @field_validator("remoteurl")
    @classmethod
    def _url(cls, v: str) -> str:
        return _remote(v)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        v = v.strip("/")
        if v.endswith("/**"):  # the glob form names the same prefix
            v = v[:-3]
        if not re.fullmatch(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*", v):
            raise ValueError(f"{v!r} is not a repository prefix such as docker.io or ghcr.io/org")
        return v

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, v: list[str]) -> list[str]:
        return _check_platforms(v)


class Cache(Section):
    """How the cache is kept in bounds. Content of an upstream is *expired* once neither a pull nor
    a fetch has touched it for that upstream's ``ttl`` (0: never); with ``maxsize`` the least
    recently pulled images go first whenever the cache holds more. Both run every ``interval`` on
    one process of one replica (the maintenance scheduler's lease), and the blobs they free go in
    the same run."""

    maxsize: Annotated[int, BeforeValidator(parse_size)] | None = None
    interval: Duration = 3600.0

    @field_validator("interval")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("interval must be more than 0")
        return v


class SyncRule(Section):
    """Mirror ahead of time: the tags of ``repositories`` (stored names under an upstream's prefix,
    ``docker.io/library/nginx``) that match ``tags`` (a regular expression, whole tag) and
    ``semver`` (a range such as ``>=1.25 <2`` or ``^1.27``; tags that are no version never match
    it), for ``platforms`` (default: the upstream's filter, else every platform), every
    ``interval``. ``limit`` keeps only the highest (semver) or last (sorted) that many tags."""

    repositories: list[str]
    tags: str | None = None
    semver: str | None = None
    platforms: list[str] = Field(default_factory=list)
    interval: Duration = 6 * 3600.0
    limit: int | None = Field(default=None, ge=1)

    @field_validator("tags")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"tags: {v!r} is not a regular expression ({exc})") from None
        return v

    @field_validator("semver")
    @classmethod
    def _range(cls, v: str | None) -> str | None:
        if v is not None:
            parse_range(v)
        return v

    @field_validator("interval")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("interval must be more than 0")
        return v

    @field_validator("repositories")
    @classmethod
    def _some(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("name at least one repository")
        return [r.strip("/") for r in v]

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, v: list[str]) -> list[str]:
        return _check_platforms(v)


class Proxy(Section):
    """distribution's ``proxy`` section (``remoteurl``, ``username``, ``password``, ``ttl``: the
    whole registry mirrors one upstream, and refuses pushes), plus dockyard's ``upstreams``:
    many registries, each under its prefix, beside hosted repositories."""

    remoteurl: str | None = None
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    ttl: Duration = 168 * 3600.0
    revalidate: Duration = 60.0
    upstreams: list[Upstream] = Field(default_factory=list)
    # Where blobs being fetched are spooled, so later requesters on this machine read the bytes
    # received so far (default: a directory under the system's temporary directory).
    spooldirectory: str | None = None
    cache: Cache = Cache()
    sync: list[SyncRule] = Field(default_factory=list)

    @field_validator("remoteurl")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else _remote(v)

    @model_validator(mode="after")
    def _one_form(self) -> Proxy:
        if self.remoteurl is not None and self.upstreams:
            raise ValueError(
                "set either remoteurl (the whole registry mirrors one upstream) or upstreams "
                "(each under its prefix), not both"
            )
        return self

    @model_validator(mode="after")
    def _sync_under_prefixes(self) -> Proxy:
        prefixes = [u.prefix for u in self.all_upstreams()]
        for rule in self.sync:
            for name in rule.repositories:
                if not any(p == "" or name.startswith(p + "/") for p in prefixes):
                    raise ValueError(f"sync: {name} lies under no upstream's prefix ({', '.join(prefixes)})")
        return self

    @field_validator("upstreams")
    @classmethod
    def _distinct(cls, v: list[Upstream]) -> list[Upstream]:
        prefixes = [u.prefix for u in v]
        for a in prefixes:
            for b in prefixes:
                if a != b and b.startswith(a + "/"):
                    raise ValueError(f"prefix {b} lies inside prefix {a}; use one of them")
        if len(set(prefixes)) != len(prefixes):
            raise ValueError("two upstreams have the same prefix")
        if sum(u.dockerhub for u in v) > 1:
            raise ValueError("only one upstream may take unprefixed names (dockerhub: true)")
        return v

    def all_upstreams(self) -> list[Upstream]:
        """Every upstream; distribution's ``remoteurl`` is one with the empty prefix (all names)."""
        if self.remoteurl is None:
            return list(self.upstreams)
        whole = Upstream.model_construct(
            prefix="",
            remoteurl=self.remoteurl,
            credentials=Credentials(username=self.username, password=self.password),
            ttl=self.ttl,
            revalidate=self.revalidate,
            platforms=[],
            dockerhub=False,
            timeout=30.0,
        )
        return [whole]

    @property
    def enabled(self) -> bool:
        return self.remoteurl is not None or bool(self.upstreams)
