"""The ``notifications`` (webhook endpoints, as distribution has them) and ``audit`` sections."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    Field,
    field_validator,
)

from dockyard.config.base import Duration, Section, header_lists


class EndpointIgnore(Section):
    mediatypes: list[str] = Field(default_factory=list)
    # distribution's four, and dockyard's own kinds (notify.envelope.DOCKYARD_ACTIONS)
    actions: list[
        Literal[
            "push", "pull", "delete", "mount", "repository-delete", "gc", "retention", "quota-warning", "scan"
        ]
    ] = Field(default_factory=list)


class Endpoint(Section):
    """One receiver of distribution's notification envelopes (``notifications.endpoints[]``)."""

    name: str
    url: str
    headers: dict[str, list[str]] = Field(default_factory=dict)
    timeout: Duration = 5.0
    # Consecutive failures after which the endpoint is reported failing (logged once, admin API).
    threshold: int = Field(default=5, ge=1)
    backoff: Duration = 1.0  # the first retry's wait; doubled per failure up to maxbackoff
    ignoredmediatypes: list[str] = Field(default_factory=list)
    ignore: EndpointIgnore = EndpointIgnore()
    disabled: bool = False
    secret: str | None = None  # dockyard: signs each body, X-Dockyard-Signature: sha256=<HMAC-SHA256>
    maxbackoff: Duration = 300.0  # dockyard
    # dockyard: distribution's envelope (the default), or CloudEvents 1.0 JSON: one event a request
    # (structured mode), or the envelope's events as one batch (``cloudevents-batch``)
    format: Literal["distribution", "cloudevents", "cloudevents-batch"] = "distribution"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", v):
            raise ValueError("an endpoint name is 1-64 letters, digits, '.', '_' or '-'")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("an endpoint url starts with http:// or https://")
        return v

    _headers = field_validator("headers", mode="before")(header_lists)


class NotificationEvents(Section):
    includereferences: bool = True  # accepted from distribution configurations


class Notifications(Section):
    """Webhooks as distribution sends them, delivered at least once from a durable queue."""

    events: NotificationEvents = NotificationEvents()
    endpoints: list[Endpoint] = Field(default_factory=list)
    # dockyard: events kept waiting per endpoint at most; past it the oldest are dropped (counted
    # and logged), so a receiver that is down for good never fills the disk or blocks a push. The
    # sender holds the waiting events in memory (about 1-2 KiB each).
    maxpending: int = Field(default=10_000, ge=1)
    # dockyard: one process of all workers and replicas sends, holding a lease it renews a third
    # of this early; a sender that died unannounced (SIGKILL, a lost machine) holds the queue this
    # long before another takes over. Shorter: faster takeover, a coordinator write more often.
    lease: Duration = 30.0
    # dockyard: a pull's event is written with the next write of the queue, or at the latest this
    # long after the pull (one write per window under a stream of pulls, not one per request). A
    # crash loses at most this much of pull events; pushes, deletes and the other changes are
    # durable before their request is answered, whatever this says. 0 writes each at once.
    pullwindow: Duration = 0.1

    @field_validator("lease")
    @classmethod
    def _lease(cls, v: float) -> float:
        if v < 3.0:
            raise ValueError("the sender's lease is at least 3s (renewed every third of it)")
        return v

    @field_validator("pullwindow")
    @classmethod
    def _pullwindow(cls, v: float) -> float:
        if not 0 <= v <= 10:
            raise ValueError("pullwindow is between 0 and 10s")
        return v

    @field_validator("endpoints")
    @classmethod
    def _unique(cls, v: list[Endpoint]) -> list[Endpoint]:
        names = [e.name for e in v]
        if len(set(names)) != len(names):
            raise ValueError("endpoint names must be unique (each keeps its own queue position)")
        return v


class Audit(Section):
    """dockyard's audit log: who changed what, and who logged in, kept in the store."""

    enabled: bool = False
    retention: Duration = 90 * 24 * 3600.0  # whole days older than this are deleted

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: float) -> float:
        if v < 24 * 3600:
            raise ValueError("the audit retention is at least one day (24h)")
        return v
