"""Answering a registry's challenges the way ``docker login`` does: Basic, or the Docker token flow
(``WWW-Authenticate: Bearer realm=…,service=…,scope=…``), anonymous or with credentials.

Tokens are kept per scope until they expire, so a pull-through cache asking an upstream for many
repositories sends each request once with the right token instead of being challenged every time.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass

import httpx

_PARAM = re.compile(r'([A-Za-z_]+)="([^"]*)"')
# The repository a registry API path is about (its scope), after any base path of the remote URL.
_REPOSITORY = re.compile(r"/v2/(.+?)/(?:manifests|blobs|tags|referrers)/")
# A token is renewed this long before its stated expiry, so it never expires in flight.
_MARGIN = 5.0
# What the token spec says a token lives when the answer names no expiry.
_DEFAULT_LIFETIME = 60.0


def challenge_params(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…",scope="…"`` → ("bearer", {...})."""
    scheme, _, rest = header.partition(" ")
    return scheme.lower(), {k.lower(): v for k, v in _PARAM.findall(rest)}


def scope_key(request: httpx.Request) -> str:
    """The scope a request needs, as the cache key of its token: ``repository:<name>:pull`` for a
    repository's paths, "" for the rest (the base, the catalog, an admin API)."""
    found = _REPOSITORY.search(request.url.path)
    if found is None:
        return ""
    action = "pull" if request.method in ("GET", "HEAD") else "pull,push"
    return f"repository:{found.group(1)}:{action}"


_READ_ANSWER = "dockyard.read-answer"  # marks a token request: its answer is read before the flow sees it


def reads_answer(request: httpx.Request) -> bool:
    """Whether the flow reads the answer to ``request`` (a token request's) before it goes on."""
    return bool(request.extensions.get(_READ_ANSWER))


def _reads(response: httpx.Response) -> bool:
    return reads_answer(response.request)


@dataclass(slots=True)
class _Token:
    value: str
    expires: float


class RegistryAuth(httpx.Auth):
    """Basic, or Bearer via the realm the registry names in its challenge; bearer tokens cached per
    scope until they expire (``clock``: epoch seconds, injected by tests). ``password`` may be a
    callable, read each time credentials are sent, so a rotated secret file is picked up."""

    # Only the token server's answers (and challenges) are read here: the response to the request
    # itself streams untouched (a blob of gigabytes must not be read into memory first).
    requires_response_body = False

    def __init__(
        self,
        username: str | None,
        password: str | Callable[[], str | None] | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.username = username
        self._password = password
        self.clock = clock
        self.tokens: dict[str, _Token] = {}
        self.basic = False  # the registry asked for Basic: send it up front from now on
        self.token_requests = 0  # how many times a token was fetched (tests and the admin API read it)

    @property
    def password(self) -> str | None:
        return self._password() if callable(self._password) else self._password

    @property
    def bearer(self) -> str | None:
        """The most recently obtained token (the command line uses one scope at a time)."""
        return next(reversed(self.tokens.values())).value if self.tokens else None

    def _basic_header(self) -> str:
        return httpx.BasicAuth(self.username or "", self.password or "")._auth_header

    def _cached(self, key: str) -> str | None:
        token = self.tokens.get(key)
        if token is None or token.expires <= self.clock():
            self.tokens.pop(key, None)
            return None
        return token.value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        key = scope_key(request)
        if self.basic and self.username:
            request.headers["Authorization"] = self._basic_header()
        elif (token := self._cached(key)) is not None:
            request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        scheme, params = challenge_params(response.headers.get("www-authenticate", ""))
        if scheme == "basic" and self.username:
            self.basic = True
            request.headers["Authorization"] = self._basic_header()
            yield request
        elif scheme == "bearer" and "realm" in params:
            query = {k: v for k, v in params.items() if k in ("service", "scope")}
            token_request = httpx.Request(
                "GET", params["realm"], params=query, extensions={_READ_ANSWER: True}
            )
            if self.username:
                token_request.headers["Authorization"] = self._basic_header()
            self.token_requests += 1
            token_response = yield token_request
            if token_response.status_code != 200:
                return
            try:
                body = token_response.json()
                value = body.get("token") or body.get("access_token")
                lifetime = float(body.get("expires_in") or _DEFAULT_LIFETIME)
            except (ValueError, AttributeError, TypeError):
                return
            if not isinstance(value, str) or not value:
                return
            self.tokens.pop(key, None)  # re-inserted last: ``bearer`` is the newest
            self.tokens[key] = _Token(value, self.clock() + max(lifetime - _MARGIN, 0.0))
            request.headers["Authorization"] = f"Bearer {value}"
            yield request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        flow = self.auth_flow(request)
        outgoing = next(flow)
        while True:
            response = yield outgoing
            if _reads(response):
                response.read()
            try:
                outgoing = flow.send(response)
            except StopIteration:
                return

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        flow = self.auth_flow(request)
        outgoing = next(flow)
        while True:
            response = yield outgoing
            if _reads(response):
                await response.aread()
            try:
                outgoing = flow.send(response)
            except StopIteration:
                return
