"""The ``auth`` section: htpasswd, the token server, access rules, robots, throttling."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
)

from dockyard.config.base import Duration, Section


class HtpasswdAuth(Section):
    realm: str = "dockyard"
    path: str


class TokenServer(Section):
    """dockyard's built-in token issuer, served at ``path`` beside the API."""

    enabled: bool = False
    path: str = "/token"
    keys: str = "./registry-auth/keys"  # signing keys (0600), generated on first start
    algorithm: Literal["ES256", "RS256"] = "ES256"
    kid: Literal["thumbprint", "libtrust"] = "thumbprint"
    expiration: Duration = 300.0
    refreshexpiration: Duration = 30 * 24 * 3600.0
    htpasswd: str | None = None  # the user database; default: auth.htpasswd.path


class TokenAuth(Section):
    realm: str | None = None  # default with the built-in server: <this registry>/token
    service: str = "dockyard"
    issuer: str = "dockyard"
    rootcertbundle: str | None = None
    jwks: str | None = None  # a JWKS file or an http(s) URL
    autoredirect: bool = False
    signingalgorithms: list[str] | None = None
    leeway: Duration = 60.0
    server: TokenServer = TokenServer()


class AccessRule(Section):
    repositories: list[str]
    actions: list[Literal["pull", "push", "delete", "*"]]
    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    anonymous: bool = False
    authenticated: bool = False


class AccessPolicy(Section):
    admins: list[str] = Field(default_factory=list)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    rules: list[AccessRule] = Field(default_factory=list)


class Robots(Section):
    path: str = "./registry-auth/robots.json"


class Throttle(Section):
    enabled: bool = True
    attempts: int = 5
    window: Duration = 60.0


class Auth(Section):
    htpasswd: HtpasswdAuth | None = None
    token: TokenAuth | None = None
    access: AccessPolicy | None = None  # dockyard: per-repository rules (default: users may do all)
    robots: Robots = Robots()  # dockyard: robot accounts / access tokens
    throttle: Throttle = Throttle()  # dockyard: failed-login throttling

    @property
    def mode(self) -> Literal["none", "htpasswd", "token"]:
        if self.token is not None:
            return "token"
        return "htpasswd" if self.htpasswd is not None else "none"

    @property
    def userfile(self) -> str | None:
        server = self.token.server.htpasswd if self.token is not None else None
        return server or (self.htpasswd.path if self.htpasswd is not None else None)
