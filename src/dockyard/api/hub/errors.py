"""Errors in Docker Hub's shapes: ``{"fields": {...}, "text": ...}`` for a bad parameter (400),
``{"detail": ..., "message": ...}`` otherwise. Registry errors (auth, unknown names) keep the OCI shape."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps

from starlette.responses import JSONResponse, Response

from dockyard.api.context import Context


class HubError(Exception):
    def __init__(self, status: int, body: dict[str, object]) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body

    @classmethod
    def bad_field(cls, field: str, problem: str, text: str) -> HubError:
        return cls(400, {"fields": {field: [problem]}, "text": text})

    @classmethod
    def not_found(cls, detail: str, message: str) -> HubError:
        return cls(404, {"detail": detail, "message": message, "errinfo": {}})


Handler = Callable[[Context], Awaitable[Response]]


def hub_errors(handler: Handler) -> Handler:
    @wraps(handler)
    async def wrapper(ctx: Context) -> Response:
        try:
            return await handler(ctx)
        except HubError as exc:
            return JSONResponse(exc.body, exc.status)

    return wrapper
