"""The response that serves a blob from its ``storage.model.BlobSource``: a redirect when the
source offers a URL (the driver signs them and ``storage.redirect.disable`` is false), else ASGI
pathsend when it is a local file, else a stream.

With pathsend granian streams the file itself (128 KiB reads in its blocking pool), with no
Python per chunk and no buffering beyond the socket's pace. Streaming 1 MiB chunks through the
driver instead was measured side by side with distribution (``python -m bench --only pull``):
faster for one stream on a fresh server (1.23x against pathsend's 0.72-0.8x) but not after the
push phases of a full run (0.72x), even for eight parallel streams, and the workers' resident
memory grew by 80-134 MiB with eight streams. Pathsend stays.
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from dockyard.storage.model import BlobSource


class BlobResponse:
    """``whole`` is false for a range: then neither a redirect nor pathsend (both serve the whole
    blob), only the source's stream from ``offset``."""

    def __init__(
        self,
        source: BlobSource,
        status: int,
        headers: dict[str, str],
        *,
        offset: int = 0,
        length: int | None = None,
        whole: bool = True,
    ) -> None:
        self.source = source
        self.status = status
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.offset = offset
        self.length = length
        self.whole = whole

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.whole and (url := await self.source.redirect_url()):
            digest = [(k, v) for k, v in self.headers if k == b"docker-content-digest"]
            headers = [(b"location", url.encode()), *digest, (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 307, "headers": headers})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        local = self.source.local_path()
        pathsend = "http.response.pathsend" in scope.get("extensions", {})
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        if self.whole and local is not None and pathsend:
            await send({"type": "http.response.pathsend", "path": local})
            return
        async for chunk in self.source.read(self.offset, self.length):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
