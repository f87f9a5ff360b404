"""What every configuration section shares: the base model, the error, durations, header lists."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from dockyard.durations import parse_duration

Duration = Annotated[float, BeforeValidator(parse_duration)]


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def header_lists(cls: Any, v: Any) -> Any:
    """``headers`` maps a name to a list of values; a single string is a list of one (as in
    distribution's files)."""
    if isinstance(v, dict):
        return {k: ([x] if isinstance(x, str) else x) for k, x in v.items()}
    return v


def split_addr(addr: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``[v6]:port`` → (host, port); an empty host means all interfaces."""
    host, sep, port = addr.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError(f"{addr!r} is not host:port (e.g. :5000, 127.0.0.1:5000, [::1]:5000)")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (from ``split_addr``) reaches only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
