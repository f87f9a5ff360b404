"""The web UI as an ASGI wrapper: ``/`` and ``/ui/…`` (under ``http.prefix``) are pages, anything
else goes on to the registry. Turned off with ``ui.enabled: false`` (then ``/`` is the JSON probe)."""

from __future__ import annotations

import logging
import mimetypes
import time
from collections.abc import Awaitable, Callable
from importlib import resources

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard.api.errors import to_api_error
from dockyard.errors import DomainError, ErrorCode, RegistryError, Unavailable
from dockyard.services import Services
from dockyard.web import actions, observe, pages
from dockyard.web.context import Page, UIState, open_page, render_error

log = logging.getLogger("dockyard.web")
PageHandler = Callable[[Page], Awaitable[Response]]

ROUTES: dict[tuple[str, str], PageHandler] = {
    ("GET", "/"): pages.repositories,
    ("GET", "/ui/repository"): pages.repository,
    ("GET", "/ui/image"): pages.image,
    ("GET", "/ui/usage"): pages.usage,
    ("GET", "/ui/mirrors"): pages.mirrors,
    ("GET", "/ui/events"): observe.events,
    ("POST", "/ui/events/redeliver"): observe.redeliver,
    ("GET", "/ui/audit"): observe.audit,
    ("GET", "/ui/login"): actions.login_form,
    ("POST", "/ui/login"): actions.login,
    ("POST", "/ui/logout"): actions.logout,
    ("POST", "/ui/delete"): actions.delete,
}
_STATIC = resources.files("dockyard.web") / "static"


class WebApp:
    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services
        self.prefix = services.config.http.prefix.rstrip("/")
        self.state = UIState(services)
        self.static_names = frozenset(
            i.name for i in _STATIC.iterdir() if i.is_file() and not i.name.startswith(".")
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        local = path[len(self.prefix) :] if self.prefix and path.startswith(self.prefix) else path
        if self.prefix and not path.startswith(self.prefix):
            local = ""
        if local.startswith("/ui/static/"):
            response = self.static(local[len("/ui/static/") :])
        else:
            method = "GET" if scope["method"] == "HEAD" else scope["method"]
            handler = ROUTES.get((method, local or "-"))
            if handler is None:
                if local == "/" or local.startswith("/ui/"):
                    response = Response("not found", 404 if local != "/" else 405)
                else:
                    await self.app(scope, receive, send)
                    return
            else:
                response = await self.page(handler, Request(scope, receive))
        await response(scope, receive, send)

    async def page(self, handler: PageHandler, request: Request) -> Response:
        started = time.perf_counter()
        page = await open_page(self.state, request)
        try:
            response = await handler(page)
        except RegistryError as exc:
            response = render_error(page, exc)
        except DomainError as exc:
            response = render_error(page, to_api_error(exc))
        except Unavailable as exc:  # the store or the database is down: 503 naming it, no traceback
            log.error("backend unavailable", extra={"path": request.url.path, "error": str(exc)})
            response = render_error(page, RegistryError(ErrorCode.UNAVAILABLE, str(exc)))
        except ClientDisconnect:  # a form body cut short, refused by granian, or timed out
            response = page.render(
                "error.html", 400, heading="Request refused", message="The form did not arrive whole."
            )
        except Exception:
            log.exception("failed to render a page", extra={"path": request.url.path})
            response = render_error(page, None)
        response.headers["Server-Timing"] = f"render;dur={(time.perf_counter() - started) * 1000:.1f}"
        return page.finish(response)

    def static(self, name: str) -> Response:
        # Only the files shipped: a request names one of them or nothing (no path is built from
        # it, so no "File name too long" or traversal can come of it).
        if name not in self.static_names:
            return Response("not found", 404)
        item = _STATIC / name
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Response(
            item.read_bytes(), 200, {"Cache-Control": "public, max-age=3600"}, media_type=media_type
        )
