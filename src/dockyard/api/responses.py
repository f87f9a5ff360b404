"""Responses that stream stored files: zero-copy (ASGI pathsend) when the driver has a local path."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from dockyard.storage.driver import StorageDriver


class StoredFileResponse:
    def __init__(
        self,
        driver: StorageDriver,
        path: str,
        status: int,
        headers: dict[str, str],
        *,
        offset: int = 0,
        length: int | None = None,
        whole: bool = True,
    ) -> None:
        self.driver = driver
        self.path = path
        self.status = status
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.offset = offset
        self.length = length
        self.whole = whole

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        local = self.driver.local_path(self.path)
        pathsend = "http.response.pathsend" in scope.get("extensions", {})
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        if self.whole and local is not None and pathsend:
            await send({"type": "http.response.pathsend", "path": local})
            return
        async for chunk in self.driver.read(self.path, self.offset, self.length):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
