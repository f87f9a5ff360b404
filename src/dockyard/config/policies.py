"""Retention, quotas, the web UI and the coordinator's ``database``."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    BeforeValidator,
    Field,
    field_validator,
)

from dockyard.config.base import Duration, Section
from dockyard.sizes import parse_size


class RetentionPolicy(Section):
    repositories: str = "**"
    keep: int | None = Field(default=None, ge=0)
    keepmatch: str | None = None
    match: str | None = None
    olderthan: Duration | None = None
    untagged: bool = False

    @field_validator("keepmatch", "match")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {v!r}: {exc}") from None
        return v


class Retention(Section):
    interval: Duration = 0.0  # 0: only on demand (dockyard prune, POST /admin/v1/retention)
    force: bool = False  # allow a policy to delete every tag of a repository
    policies: list[RetentionPolicy] = Field(default_factory=list)


class Quota(Section):
    repositories: str
    limit: Annotated[int, BeforeValidator(parse_size)]
    # dockyard: a percentage of ``limit``; the push that takes usage to it is told to webhooks
    # (action ``quota-warning``). None: no warning.
    warning: int | None = Field(default=None, ge=1, le=100)

    @property
    def warning_bytes(self) -> int | None:
        return None if self.warning is None else self.limit * self.warning // 100


class UI(Section):
    """dockyard's web UI at ``/`` (``dockyard.web``) and its login sessions."""

    enabled: bool = True
    title: str = "dockyard"
    secret: str | None = None  # signs session cookies; default: http.secret, else a key kept in storage
    sessionlifetime: Duration = 12 * 3600.0


class ListingIndex(Section):
    """The derived index of repositories and tags kept in the database (``storage.index``): one
    replica at a time walks the store every ``reconcileinterval`` and fixes what differs (writes
    by other tools to the bucket; a replica that died between its store and its index write)."""

    reconcileinterval: Duration = 300.0


class Database(Section):
    """The coordinator's database. Set ``dsn`` (``postgresql://user@host:5432/db``) when several
    machines serve one store; without it, the processes of one machine coordinate through files
    in the store (the filesystem driver) or in memory (the in-memory driver). With it, listings
    answer from an index kept there (``index``)."""

    dsn: str | None = None
    index: ListingIndex = ListingIndex()


class VulnDB(Section):
    """The advisory database (``dockyard.vulndb``): where it is kept and where ``dockyard vulndb
    update`` fetches from. With ``database.dsn`` it is in that database (every replica shares
    it); otherwise a SQLite file, ``path``, by default beside the filesystem driver's data
    (``<rootdirectory>/dockyard-vulndb.sqlite``; other drivers need ``path`` set)."""

    path: str | None = None
    # osv.dev's exports: ``<baseurl>/<Ecosystem>/all.zip`` per ecosystem below.
    baseurl: str = "https://osv-vulnerabilities.storage.googleapis.com"
    ecosystems: list[str] = Field(
        default_factory=lambda: [
            "Debian",
            "Ubuntu",
            "Alpine",
            "PyPI",
            "npm",
            "Go",
            "Maven",
            "crates.io",
            "RubyGems",
        ]
    )

    @field_validator("baseurl")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return v.rstrip("/")


# --- proxy: a pull-through cache of other registries (dockyard.proxy) ------------------------------
