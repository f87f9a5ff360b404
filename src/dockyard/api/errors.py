"""The one place an error becomes an HTTP response."""

from __future__ import annotations

import json

from starlette.responses import Response

from dockyard.errors import RegistryError


def error_response(error: RegistryError, *, head: bool = False) -> Response:
    body = json.dumps(error.body()).encode()
    headers = {**error.headers, "Content-Length": str(len(body))}
    return Response(b"" if head else body, error.status, headers, media_type="application/json")
