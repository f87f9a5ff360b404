"""Where a client reached the registry: scheme and host, as the registry API's ``Location``
headers, the token challenge's realm and the UI's ``docker pull`` lines all need them.

Behind proxies, ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` hold one value per hop,
comma-separated, the client-facing one first (``X-Forwarded-Host: a, b`` after two proxies): the
first is the origin. ``http.host``, when configured, is the origin regardless of the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str  # "" when the request named none (no Host header)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}"


def _first(value: str | None) -> str:
    return (value or "").split(",")[0].strip()


def request_origin(headers: Mapping[str, str], scheme: str, configured: str | None = None) -> Origin:
    """The origin a request was made to. ``scheme`` is the connection's own (``http``/``https``);
    ``configured`` is ``http.host`` (``https://registry.example.com``), which wins when set."""
    if configured:
        configured_scheme, _, host = configured.partition("://")
        return Origin(configured_scheme, host)
    forwarded_scheme = _first(headers.get("x-forwarded-proto"))
    host = _first(headers.get("x-forwarded-host")) or headers.get("host", "")
    return Origin(forwarded_scheme or scheme, host)
