"""The ``log`` and ``http`` sections (listener, TLS, timeouts, the debug listener)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    Field,
    field_validator,
)

from dockyard.config.base import Duration, Section, header_lists, split_addr


class AccessLog(Section):
    disabled: bool = False


class Log(Section):
    level: Literal["error", "warn", "info", "debug"] = "info"
    formatter: Literal["text", "json"] = "text"
    fields: dict[str, str] = Field(default_factory=dict)
    accesslog: AccessLog = AccessLog()

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v


class TLS(Section):
    certificate: str | None = None
    key: str | None = None
    minimumtls: Literal["tls1.2", "tls1.3"] = "tls1.2"


class HTTPTimeouts(Section):
    """How long a slow client may hold a connection (see README, "Security")."""

    # The whole request head (line and headers), and an idle keep-alive connection's wait for the
    # next request: granian's HTTP/1 header read timeout.
    header: Duration = 15.0
    # The longest pause between two pieces of a request body (an upload that stalls, a chunked
    # body cut short, a Content-Length larger than what is sent); 0 waits forever.
    body: Duration = 60.0

    @field_validator("header")
    @classmethod
    def _header(cls, v: float) -> float:
        if v < 0.1:
            raise ValueError("the header timeout must be at least 0.1 seconds")
        return v

    @field_validator("body")
    @classmethod
    def _body(cls, v: float) -> float:
        if v < 0:
            raise ValueError("the body timeout must not be negative (0 turns it off)")
        return v


class Prometheus(Section):
    enabled: bool = False
    path: str = "/metrics"

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("the metrics path must start with '/'")
        return v


class Debug(Section):
    """distribution's debug listener: a second address, apart from the API, that serves the
    Prometheus metrics of every worker process (``http.debug.prometheus``). No address, no listener."""

    addr: str | None = None
    prometheus: Prometheus = Prometheus()

    @field_validator("addr")
    @classmethod
    def _addr(cls, v: str | None) -> str | None:
        if v:
            split_addr(v)
        return v or None


class Accel(Section):
    """The accelerated download path (README, "nginx in front: accelerated downloads"): a blob GET
    that dockyard authorizes is answered with ``X-Accel-Redirect`` to ``location``, an ``internal``
    nginx location aliased read-only onto the filesystem storage root, so nginx sends the file
    with sendfile. Only a front nginx configured that way may sit before a registry with this on:
    a client reaching dockyard directly would get an empty body."""

    kind: Literal["nginx"]
    location: str = "/_dockyard_blobs/"

    @field_validator("location")
    @classmethod
    def _location(cls, v: str) -> str:
        # The value is pasted into a response header and joined with storage paths: plain path
        # characters only, and no "..", so it can never escape the location nginx maps.
        if not re.fullmatch(r"/([A-Za-z0-9_.~-]+/)+", v) or "/../" in v or "/./" in v:
            raise ValueError(
                "http.accel.location must be a path such as /_dockyard_blobs/ (starting and ending "
                "with '/', letters, digits, '_', '.', '~', '-')"
            )
        return v


class HTTP(Section):
    addr: str = "127.0.0.1:5000"
    host: str | None = None
    prefix: str = "/"
    secret: str | None = None  # accepted for compatibility; upload state lives in storage
    relativeurls: bool = False
    tls: TLS = TLS()
    headers: dict[str, list[str]] = Field(default_factory=dict)
    draintimeout: Duration = 30.0
    timeouts: HTTPTimeouts = HTTPTimeouts()
    debug: Debug = Debug()
    accel: Accel | None = None

    @property
    def metrics_enabled(self) -> bool:
        """Whether workers keep Prometheus metrics: enabled, and somewhere to serve them."""
        return self.debug.prometheus.enabled and self.debug.addr is not None

    @field_validator("addr")
    @classmethod
    def _addr(cls, v: str) -> str:
        split_addr(v)
        return v

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("the prefix must start with '/'")
        return "/" + v.strip("/") if v.strip("/") else "/"

    @field_validator("host")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("http.host must be a URL such as https://registry.example.com")
        return v.rstrip("/") if v else v

    _headers = field_validator("headers", mode="before")(header_lists)
