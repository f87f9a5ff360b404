"""Building the access controller the configuration asks for, and start-up checks.

``auth`` modes: none (no section: every request may do everything), ``htpasswd`` (Basic on every
request), ``token`` (bearer tokens from the built-in server and/or an external issuer).

The state accounts need (robots, failed logins, signing keys) comes in as one :class:`AuthState`:
:func:`local_state` keeps it in files and memory as on one machine; with ``database.dsn``,
:func:`postgres_state` keeps it in the replicas' database. Nothing past this point asks which.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.auth.access import AccessController, AllowAll
from dockyard.config import Config, ConfigError, TokenAuth, is_loopback, split_addr
from dockyard.events import EventSink

if TYPE_CHECKING:
    from dockyard.auth.credentials import Authenticator
    from dockyard.auth.keys import KeyStore, SigningKeys
    from dockyard.auth.robots import RobotAccounts
    from dockyard.auth.throttle import LoginThrottle
    from dockyard.coord.postgres import PostgresCoordinator

# The controllers, JWT and crypto modules are imported only by the modes that use them, so a
# registry without auth (and the serving parent process) does not carry them in memory.

log = logging.getLogger("dockyard.auth")


def retention(token: TokenAuth) -> float:
    """How long a retired signing key keeps validating: the longest life of a token it signed."""
    return max(token.server.expiration, token.server.refreshexpiration) + token.leeway


def keystore(token: TokenAuth) -> KeyStore:
    from dockyard.auth.keys import KeyStore

    return KeyStore(token.server.keys, retain=retention(token))


@dataclass(frozen=True, slots=True)
class AuthState:
    """Where the accounts' state lives; ``keys`` is None without the built-in token server."""

    robots: RobotAccounts
    throttle: LoginThrottle
    keys: SigningKeys | None


def local_state(config: Config, *, create_key: bool = True) -> AuthState:
    """Files on this machine (robots, the key directory) and this process's memory (throttling).
    Creates the first signing key unless told not to (safe from several processes at once)."""
    from dockyard.auth.keys import FileKeys
    from dockyard.auth.robots import RobotStore
    from dockyard.auth.throttle import NoThrottle, Throttle

    auth = config.auth
    throttle = (
        Throttle(auth.throttle.attempts, auth.throttle.window) if auth.throttle.enabled else NoThrottle()
    )
    keys = None
    if auth.token is not None and auth.token.server.enabled:
        store = keystore(auth.token)
        if create_key:
            store.ensure(auth.token.server.algorithm)
        keys = FileKeys(store, auth.token.server.algorithm)
    return AuthState(RobotStore(auth.robots.path), throttle, keys)


def postgres_state(config: Config, coordinator: PostgresCoordinator) -> AuthState:
    """The replicas' database: what any replica writes, every replica reads. The first signing key
    is made by the first replica to need one."""
    from dockyard.auth.pgkeys import PostgresKeys
    from dockyard.auth.pgrobots import PostgresRobots
    from dockyard.auth.pgthrottle import PostgresThrottle
    from dockyard.auth.throttle import NoThrottle

    auth = config.auth
    throttle: LoginThrottle = (
        PostgresThrottle(coordinator, auth.throttle.attempts, auth.throttle.window)
        if auth.throttle.enabled
        else NoThrottle()
    )
    keys = None
    if auth.token is not None and auth.token.server.enabled:
        keys = PostgresKeys(coordinator, auth.token.server.algorithm, retain=retention(auth.token))
    return AuthState(PostgresRobots(coordinator), throttle, keys)


def _authenticator(config: Config, state: AuthState, events: EventSink | None) -> Authenticator:
    from dockyard.auth.credentials import Authenticator
    from dockyard.auth.htpasswd import HtpasswdFile

    users = HtpasswdFile(config.auth.userfile) if config.auth.userfile else None
    return Authenticator(users, state.robots, state.throttle, events)


def build_access(
    config: Config,
    *,
    clock: Callable[[], float] = time.monotonic,
    events: EventSink | None = None,
    state: Callable[[], AuthState] | None = None,
) -> AccessController:
    """The controller for the configured mode; ``clock`` (monotonic seconds) paces its re-reads;
    ``events`` hears of logins; ``state`` makes where accounts live (default: :func:`local_state`),
    called only when a mode with accounts is configured."""
    auth = config.auth
    if auth.token is None and auth.htpasswd is None:
        return AllowAll()
    accounts = state() if state is not None else local_state(config)
    from dockyard.auth.controllers import BasicController, TokenController
    from dockyard.auth.rules import Policy

    policy = Policy(auth.access)
    if auth.token is not None:
        authenticator = _authenticator(config, accounts, events)
        return TokenController(
            auth.token, config.http.prefix, authenticator, policy, accounts.keys, clock=clock
        )
    if auth.htpasswd is not None:
        return BasicController(auth.htpasswd.realm, _authenticator(config, accounts, events), policy)
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
    """Run once in the serving parent: check the section, create the signing key, warn. (With a
    database the first replica's first worker creates the key there instead.)"""
    for warning in check(config):
        log.warning(warning)
    token = config.auth.token
    if token is not None and token.server.enabled and not config.database.dsn:
        keystore(token).ensure(token.server.algorithm)
