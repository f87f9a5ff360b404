"""What every page needs: the caller, their permissions, the CSRF token, and rendering."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from dockyard.auth.access import Identity
from dockyard.errors import ErrorCode, RegistryError
from dockyard.origin import request_origin
from dockyard.services import Services
from dockyard.storage.inventory import Usage
from dockyard.web.identity import Permissions, auth_enabled, identity_of
from dockyard.web.sessions import CSRF_COOKIE, SESSION_COOKIE, load_key, new_csrf, verify
from dockyard.web.templating import environment

USAGE_TTL = 30.0


class UIState:
    """Built once per worker."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.env: Environment = environment()
        self._key: bytes | None = None
        self.usage: tuple[float, int, Usage] | None = None

    async def key(self) -> bytes:
        if self._key is None:
            self._key = await load_key(self.services.config, self.services.secrets)
        return self._key

    async def usage_report(self) -> Usage:
        """The store's usage, recomputed when a repository changed anywhere (the content
        generation moved) or after ``USAGE_TTL`` (what no generation announces)."""
        now = time.monotonic()
        generation = await self.services.registry.content_generation()
        if self.usage is None or now - self.usage[0] > USAGE_TTL or generation != self.usage[1]:
            self.usage = (now, generation, await self.services.inventory.usage())
        return self.usage[2]


@dataclass(slots=True)
class Page:
    ui: UIState
    request: Request
    identity: Identity
    perms: Permissions
    csrf: str
    new_csrf: bool
    cookies: list[tuple[str, str, int]] = field(default_factory=list)  # (name, value, max-age)

    @property
    def services(self) -> Services:
        return self.ui.services

    @property
    def prefix(self) -> str:
        return self.services.config.http.prefix.rstrip("/")

    def url(self, path: str, **query: Any) -> str:
        params = {k: v for k, v in query.items() if v not in (None, "")}
        return self.prefix + path + ("?" + urlencode(params) if params else "")

    @property
    def registry_host(self) -> str:
        configured = self.services.config.http.host
        return request_origin(self.request.headers, self.request.url.scheme, configured).host or "localhost"

    @property
    def secure(self) -> bool:
        """Whether the client's connection is https (cookies are marked Secure then)."""
        return request_origin(self.request.headers, self.request.url.scheme).scheme == "https"

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        body = self.ui.env.get_template(template).render(
            page=self,
            title=self.services.config.ui.title,
            user=self.identity.subject,
            auth=auth_enabled(self.services.access),
            perms=self.perms,
            csrf=self.csrf,
            host=self.registry_host,
            **values,
        )
        return HTMLResponse(body, status)

    def redirect(self, path: str, **query: Any) -> Response:
        return RedirectResponse(self.url(path, **query), 303)

    def finish(self, response: Response) -> Response:
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'"
        )
        if self.new_csrf:
            self.cookies.append((CSRF_COOKIE, self.csrf, 7 * 86400))
        for name, value, max_age in self.cookies:
            response.set_cookie(
                name,
                value,
                max_age=max_age if value else 0,
                path=self.prefix or "/",
                secure=self.secure,
                httponly=True,
                samesite="strict",
            )
        return response


async def open_page(ui: UIState, request: Request) -> Page:
    access = ui.services.access
    session = verify(await ui.key(), request.cookies.get(SESSION_COOKIE)) if auth_enabled(access) else None
    identity = await identity_of(access, session)
    csrf = request.cookies.get(CSRF_COOKIE)
    return Page(ui, request, identity, Permissions(access, identity), csrf or new_csrf(), csrf is None)


_STATUS = {
    ErrorCode.NAME_UNKNOWN: "No such repository",
    ErrorCode.MANIFEST_UNKNOWN: "No such tag or image",
    ErrorCode.NAME_INVALID: "Not a valid repository name",
    ErrorCode.TAG_INVALID: "Not a valid tag",
    ErrorCode.DIGEST_INVALID: "Not a valid digest",
}


def render_error(page: Page, error: RegistryError | None) -> Response:
    if error is None:
        return page.render("error.html", 500, heading="Something went wrong", message="The error was logged.")
    code = error.entries[0][0]
    return page.render(
        "error.html", error.status, heading=_STATUS.get(code, "That did not work"), message=str(error)
    )


def not_found(page: Page, what: str) -> Response:
    """What a caller may not pull looks like what does not exist; anonymous callers may log in."""
    if not page.identity.subject and auth_enabled(page.services.access):
        return page.redirect("/ui/login", next=str(page.request.url.path) + "?" + page.request.url.query)
    return page.render("error.html", 404, heading="Not found", message=what)
