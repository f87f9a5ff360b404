"""The accelerated download path (``http.accel``): dockyard authorizes a blob GET and hands the
sending to a front nginx with ``X-Accel-Redirect``, naming the blob's file under an ``internal``
location aliased read-only onto the filesystem storage root (``deploy/nginx/dockyard-accel.conf``).

nginx then serves the file with sendfile and answers Range itself; Python never touches the
bytes. Of the redirecting response nginx keeps only Content-Type, Cache-Control, Expires,
Content-Disposition, Accept-Ranges and Set-Cookie, so the shipped location re-adds
Docker-Content-Digest, ETag, X-Content-Type-Options and Docker-Distribution-API-Version from the
``$upstream_http_*`` variables this response carries.

Only requests nginx would answer exactly as the standalone path does are handed over: a GET of a
blob held in a local file, with no Range or a Range dockyard honours (one range, already checked
satisfiable: dockyard answers 416 itself), and no If-Range (nginx, with its own ETag off, would
ignore the range). HEAD stays here: it reads no bytes, so a redirect would only add a hop.
"""

from __future__ import annotations

import os
import re

from starlette.requests import Request
from starlette.responses import Response

from dockyard.config import Config
from dockyard.storage.model import BlobSource

# What storage paths of blobs consist of (digests, the layout's directories); anything else is
# served by the standalone path rather than pasted into a header nginx parses as a URI.
_SAFE = re.compile(r"[A-Za-z0-9_./+=-]+")


def accel_target(config: Config, local: str) -> str | None:
    """The URI under ``http.accel.location`` naming ``local``, a file under the storage root;
    None when accel is off or the file cannot be named there."""
    accel = config.http.accel
    if accel is None:
        return None
    name, params = config.storage.driver()
    if name != "filesystem":
        return None
    root = os.path.abspath(params["rootdirectory"]).rstrip("/") + "/"
    if not local.startswith(root):
        return None
    rel = local[len(root) :]
    if not _SAFE.fullmatch(rel) or ".." in rel.split("/"):
        return None
    return accel.location + rel


def accel_response(
    config: Config, request: Request, source: BlobSource, headers: dict[str, str], honoured_range: bool
) -> Response | None:
    """The ``X-Accel-Redirect`` answer for a GET, or None to serve it standalone.

    ``honoured_range``: the request has no Range header, or one dockyard would honour (nginx, told
    ``max_ranges 1``, honours the same ones)."""
    if config.http.accel is None or not honoured_range or "if-range" in request.headers:
        return None
    local = source.local_path()
    target = accel_target(config, local) if local is not None else None
    if target is None:
        return None
    # nginx states Accept-Ranges itself (the shipped location adds it to a 206, where nginx does not).
    out = {k: v for k, v in headers.items() if k not in ("Content-Length", "Content-Range", "Accept-Ranges")}
    out["X-Accel-Redirect"] = target
    out["Content-Length"] = "0"
    return Response(b"", 200, out)
