"""The ASGI application: route matching, access checks, error rendering, access log."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.types import Message, Receive, Scope, Send

from dockyard.api import routes
from dockyard.api.bodytimeout import TIMED_OUT
from dockyard.api.context import Context
from dockyard.api.errors import error_response, to_api_error
from dockyard.api.hub.identify import identify as hub_identify
from dockyard.api.hub.names import resolve as resolve_hub_name
from dockyard.api.params import name_param
from dockyard.auth.access import Access
from dockyard.errors import DomainError, ErrorCode, RegistryError, StorageFull, Unavailable
from dockyard.events.request import current_request
from dockyard.maintenance import Scheduler
from dockyard.services import Services
from dockyard.storage.replicas import Heartbeat

access_log = logging.getLogger("dockyard.access")
api_log = logging.getLogger("dockyard.api")
# The scope key holding the upstream namespace a request's ``ns=`` parameter selected.
NAMESPACE = "dockyard.namespace"


class RegistryApp:
    def __init__(
        self, services: Services, scheduler: Scheduler | None = None, heartbeat: Heartbeat | None = None
    ) -> None:
        """``heartbeat`` keeps this replica's liveness record (under ``dockyard serve``)."""
        self.services = services
        self.scheduler = scheduler
        self.heartbeat = heartbeat
        http = services.config.http
        self.prefix = "" if http.prefix == "/" else http.prefix
        self.static_headers = [(b"docker-distribution-api-version", b"registry/2.0")] + [
            (k.lower().encode(), v.encode()) for k, values in http.headers.items() for v in values
        ]
        self.read_only = services.config.storage.maintenance.readonly.enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        state = {"status": 0, "bytes": 0}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                message["headers"] = list(message.get("headers", [])) + self.static_headers
                if NAMESPACE in scope:
                    message["headers"].append((b"oci-namespace", scope[NAMESPACE].encode()))
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            elif message["type"] == "http.response.pathsend":
                state["bytes"] = -1
            await send(message)

        request = Request(scope, receive)
        head = scope["method"] == "HEAD"
        try:
            response = await self.dispatch(request)
        except RegistryError as exc:
            response = error_response(exc, head=head)
        except DomainError as exc:
            response = error_response(to_api_error(exc), head=head)
        except StorageFull:
            api_log.error("storage full", extra={"path": scope["path"]})
            response = error_response(RegistryError(ErrorCode.STORAGE_FULL), head=head)
        except Unavailable as exc:
            api_log.error("backend unavailable", extra={"path": scope["path"], "error": str(exc)})
            unavailable = RegistryError(ErrorCode.UNAVAILABLE, str(exc), headers={"Retry-After": "5"})
            response = error_response(unavailable, head=head)
        except ClientDisconnect:
            # The body did not arrive whole: a hang-up, a body granian refused (broken chunked
            # framing) or one that stopped arriving (http.timeouts.body). Answer in case the
            # client still listens; a hang-up is logged as 499 whatever was sent.
            timed_out = bool(scope.get(TIMED_OUT))
            with contextlib.suppress(OSError):
                await body_cut_response(scope, timed_out)(scope, receive, send_wrapper)
            self._log(scope, 408 if timed_out else 499, 0, started)
            return
        except Exception:
            api_log.exception(
                "failed to handle request", extra={"method": scope["method"], "path": scope["path"]}
            )
            response = error_response(RegistryError(ErrorCode.UNKNOWN), head=head)
        try:
            await response(scope, receive, send_wrapper)
        except OSError:  # the client went away while the body was being sent
            state["status"] = state["status"] or 499
        self._log(scope, state["status"], state["bytes"], started)

    def _log(self, scope: Scope, status: int, size: int, started: float) -> None:
        if not access_log.isEnabledFor(logging.INFO) or access_log.disabled:
            return
        client = scope.get("client") or ("-", 0)
        info = current_request()
        access_log.info(
            "request",
            extra={
                "request_id": info.id if info is not None else "-",
                "remote": client[0],
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "bytes": size,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )

    async def dispatch(self, request: Request) -> Any:
        path: str = request.scope["path"]
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                raise RegistryError(ErrorCode.ROUTE_UNKNOWN, f"no such endpoint: {path[:200]}")
            path = path[len(self.prefix) :]
        found = routes.match(path)
        if found is None:
            raise RegistryError(ErrorCode.ROUTE_UNKNOWN, f"no such endpoint: {path[:200]}")
        route, params = found
        method = request.method
        info = current_request()
        if info is not None:
            info.route = route.name
        handler = route.methods.get(method)
        if handler is None:
            raise RegistryError(
                ErrorCode.METHOD_UNKNOWN,
                f"{method} is not allowed on this endpoint",
                headers={"Allow": ", ".join(route.methods)},
            )
        if route.scope == "hub-repository":  # Hub's namespace/repository → the stored name
            # Checked before resolving (which looks in storage); what it resolves to is the same
            # name or its last component, so valid too.
            name_param(f"{params['namespace']}/{params['repository']}")
            params["name"] = await resolve_hub_name(
                self.services.registry, params["namespace"], params["repository"]
            )
        elif "name" in params:
            name_param(params["name"])
            # The query is parsed only on a registry with namespaces (most requests have none).
            ns = request.query_params.get("ns") if self.services.namespaces else None
            if ns and ns in self.services.namespaces:
                # A containerd mirror request (hosts.toml): ``ns`` names the registry the image is
                # from, so ``library/nginx?ns=docker.io`` is the cache's ``docker.io/library/nginx``
                # (answered with OCI-Namespace, so the client knows the parameter was honoured).
                params["name"] = name_param(f"{ns}/{params['name']}")
                request.scope[NAMESPACE] = ns
        if self.read_only and method in routes.WRITE_METHODS:
            raise RegistryError(
                ErrorCode.UNSUPPORTED,
                "the registry is in read-only mode (storage.maintenance.readonly.enabled): "
                "writes are refused",
            )
        mount_from = request.query_params.get("from") if route.name == "upload-start" else None
        if mount_from:  # before it names an access item or a challenge's scope
            name_param(mount_from, "from")
        needed = required_access(route, method, params, mount_from)
        if route.scope in ("hub-list", "hub-repository"):
            identity = await hub_identify(self.services.access, request, needed)
        else:
            identity = await self.services.access.authorize(request, needed)
        if info is not None:
            info.actor = identity.subject
        ctx = Context(request, self.services, params, identity)
        return await handler(ctx)

    # -- process lifetime ----------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Start the maintenance scheduler (when one is given), and at shutdown stop it and close
        the coordinator."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.scheduler is not None:
                    await self.scheduler.start()
                if self.heartbeat is not None:
                    self.heartbeat.start()
                if self.services.proxy is not None:
                    self.services.proxy.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.heartbeat is not None:
                    await self.heartbeat.stop()
                if self.scheduler is not None:
                    await self.scheduler.stop()
                if self.services.proxy is not None:  # fills in flight finish, or stop, first
                    await self.services.proxy.close(self.services.config.http.draintimeout)
                await self.services.coordinator.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def body_cut_response(scope: Scope, timed_out: bool) -> Any:
    """The error for a request body that did not arrive whole, in the route's own terms."""
    if timed_out:
        error = RegistryError(ErrorCode.BODY_TIMEOUT)
    else:
        path: str = scope["path"]
        code = (
            ErrorCode.BLOB_UPLOAD_INVALID
            if "/blobs/uploads" in path
            else ErrorCode.MANIFEST_INVALID
            if "/manifests/" in path
            else ErrorCode.UNSUPPORTED_BODY
        )
        error = RegistryError(
            code,
            "the request body ended before its declared end, or its framing is broken "
            "(chunked encoding, Content-Length)",
        )
    return error_response(error, head=scope["method"] == "HEAD")


def required_access(
    route: routes.Route, method: str, params: dict[str, str], mount_from: str | None = None
) -> list[Access]:
    if route.scope == "catalog":
        return [Access("registry", "catalog", "*")]
    if route.scope in ("none", "hub-list"):
        return []
    if route.scope == "admin":
        return [Access("registry", "admin", "*")]
    name = params["name"]
    needed = [Access("repository", name, action) for action in routes.ACTIONS[method]]
    if route.name == "upload-start" and mount_from and mount_from != name:  # cross-repository mount
        needed.append(Access("repository", mount_from, "pull"))
    return needed
