"""Building the access controller the configuration asks for, and start-up checks.

``auth`` modes: none (no section: every request may do everything), ``htpasswd`` (Basic on every
request), ``token`` (bearer tokens from the built-in server and/or an external issuer).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.auth.access import AccessController, AllowAll
from dockyard.config import Config, ConfigError, TokenAuth, is_loopback, split_addr
from dockyard.events import EventSink

if TYPE_CHECKING:
    from dockyard.auth.credentials import Authenticator
    from dockyard.auth.keys import KeyStore

# The controllers, JWT and crypto modules are imported only by the modes that use them, so a
# registry without auth (and the serving parent process) does not carry them in memory.

log = logging.getLogger("dockyard.auth")


def keystore(token: TokenAuth) -> KeyStore:
    from dockyard.auth.keys import KeyStore

    server = token.server
    return KeyStore(server.keys, retain=max(server.expiration, server.refreshexpiration) + token.leeway)


def _authenticator(config: Config, events: EventSink | None) -> Authenticator:
    from dockyard.auth.credentials import Authenticator
    from dockyard.auth.htpasswd import HtpasswdFile
    from dockyard.auth.robots import RobotStore
    from dockyard.auth.throttle import NoThrottle, Throttle

    auth = config.auth
    users = HtpasswdFile(auth.userfile) if auth.userfile else None
    throttle = (
        Throttle(auth.throttle.attempts, auth.throttle.window) if auth.throttle.enabled else NoThrottle()
    )
    return Authenticator(users, RobotStore(auth.robots.path), throttle, events)


def build_access(
    config: Config, *, clock: Callable[[], float] = time.monotonic, events: EventSink | None = None
) -> AccessController:
    """The controller for the configured mode; ``clock`` (monotonic seconds) paces its re-reads;
    ``events`` hears of logins."""
    auth = config.auth
    if auth.token is None and auth.htpasswd is None:
        return AllowAll()
    from dockyard.auth.controllers import BasicController, TokenController
    from dockyard.auth.rules import Policy

    policy = Policy(auth.access)
    if auth.token is not None:
        token = auth.token
        store = keystore(token) if token.server.enabled else None
        if store is not None:
            store.ensure(token.server.algorithm)
        return TokenController(
            token, config.http.prefix, _authenticator(config, events), policy, store, clock=clock
        )
    if auth.htpasswd is not None:
        return BasicController(auth.htpasswd.realm, _authenticator(config, events), policy)
    return AllowAll()


def check(config: Config) -> list[str]:
    """Validate the auth section beyond its schema; return warnings to print loudly at start."""
    auth = config.auth
    warnings: list[str] = []
    if auth.token is not None:
        token = auth.token
        if not (token.server.enabled or token.rootcertbundle or token.jwks):
            raise ConfigError(
                "auth.token: trust something: enable the built-in server (auth.token.server.enabled), "
                "or set auth.token.rootcertbundle or auth.token.jwks"
            )
        if not token.server.enabled and not token.realm:
            raise ConfigError("auth.token.realm: required with an external token issuer")
        if token.rootcertbundle and not Path(token.rootcertbundle).is_file():
            raise ConfigError(f"auth.token.rootcertbundle: cannot read {token.rootcertbundle}")
        if token.server.enabled and not auth.userfile:
            warnings.append(
                "auth.token.server has no user file: only robot accounts and anonymous rules apply"
            )
    if auth.htpasswd is not None and not Path(auth.htpasswd.path).is_file():
        warnings.append(f"auth.htpasswd.path {auth.htpasswd.path} does not exist yet: nobody can log in")
    if auth.mode != "none" and not config.http.tls.certificate:
        host, _ = split_addr(config.http.addr)
        if not is_loopback(host):
            warnings.append(
                f"!!! {auth.mode} authentication is served over PLAIN HTTP on {config.http.addr}: "
                "passwords and tokens cross the network in clear text. Configure http.tls "
                "(or terminate TLS in front "
                "and bind to a loopback address). !!!"
            )
    return warnings


def prepare(config: Config) -> None:
    """Run once in the serving parent: check the section, create the signing key, warn."""
    for warning in check(config):
        log.warning(warning)
    if config.auth.token is not None and config.auth.token.server.enabled:
        keystore(config.auth.token).ensure(config.auth.token.server.algorithm)
