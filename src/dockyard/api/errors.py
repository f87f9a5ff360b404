"""The one place an error becomes an HTTP response, and a domain error an OCI error.

``to_api_error`` is the whole table from the model's refusals (``errors.DomainError``) to OCI
codes, details and headers. The dispatcher, the Hub API, the token server, the web UI and the CLI
all call it, so a client sees the same code, message and status whichever surface it asked.
"""

from __future__ import annotations

import json

from starlette.responses import Response

from dockyard.api.headers import range_header
from dockyard.errors import (
    BlobUnknown,
    DigestMismatch,
    DomainError,
    ErrorCode,
    GCRunning,
    ManifestInvalid,
    ManifestReferenced,
    ManifestUnknown,
    Mirrored,
    NameUnknown,
    PullRefused,
    QuotaExceeded,
    RangeMismatch,
    ReferencesMissing,
    RegistryError,
    Throttled,
    UploadInUse,
    UploadUnknown,
    UpstreamUnavailable,
)


def to_api_error(exc: DomainError, headers: dict[str, str] | None = None) -> RegistryError:
    """The OCI error for ``exc``; ``headers`` are the handler's own (an upload's Location...)."""
    message = str(exc)
    extra = dict(headers or {})
    match exc:
        case NameUnknown():
            return RegistryError(ErrorCode.NAME_UNKNOWN, message, {"name": exc.name}, headers=extra)
        case BlobUnknown():
            return RegistryError(ErrorCode.BLOB_UNKNOWN, message, exc.digest, headers=extra)
        case ManifestUnknown():
            return RegistryError(ErrorCode.MANIFEST_UNKNOWN, message, exc.reference, headers=extra)
        case UploadUnknown():
            return RegistryError(ErrorCode.BLOB_UPLOAD_UNKNOWN, message, exc.upload_id, headers=extra)
        case UploadInUse():
            return RegistryError(ErrorCode.BLOB_UPLOAD_INVALID, message, headers=extra)
        case RangeMismatch():
            extra["Range"] = range_header(exc.size)
            return RegistryError(ErrorCode.RANGE_INVALID, message, headers=extra)
        case DigestMismatch():
            return RegistryError(ErrorCode.DIGEST_INVALID, message, exc.expected, headers=extra)
        case ManifestInvalid():
            return RegistryError(ErrorCode.MANIFEST_INVALID, message, headers=extra)
        case ReferencesMissing():
            entries = [(ErrorCode.MANIFEST_BLOB_UNKNOWN, exc.describe(m), m.digest) for m in exc.missing]
            first, *more = entries
            return RegistryError(*first, headers=extra, more=more)
        case ManifestReferenced():
            parents = {"referencedBy": exc.parents}
            return RegistryError(ErrorCode.MANIFEST_REFERENCED, message, parents, headers=extra)
        case QuotaExceeded():
            detail = {"quota": exc.quota, "limit": exc.limit, "used": exc.used, "exceededBy": exc.exceeded_by}
            return RegistryError(ErrorCode.DENIED, message, detail, headers=extra)
        case GCRunning():
            return RegistryError(ErrorCode.GC_RUNNING, message, headers=extra)
        case Throttled():
            extra["Retry-After"] = str(exc.retry_after)
            return RegistryError(ErrorCode.TOOMANYREQUESTS, message, headers=extra)
        case Mirrored():
            return RegistryError(ErrorCode.DENIED, message, {"upstream": exc.upstream}, headers=extra)
        case PullRefused():
            return RegistryError(ErrorCode.DENIED, message, exc.detail, headers=extra)
        case UpstreamUnavailable():
            code = ErrorCode.TOOMANYREQUESTS if exc.throttled else ErrorCode.UPSTREAM_UNAVAILABLE
            return RegistryError(code, message, {"upstream": exc.upstream}, headers=extra)
    return RegistryError(ErrorCode.UNKNOWN, headers=extra)  # a case added to the tree but not here


def error_response(error: RegistryError, *, head: bool = False) -> Response:
    body = json.dumps(error.body()).encode()
    headers = {**error.headers, "Content-Length": str(len(body))}
    return Response(b"" if head else body, error.status, headers, media_type="application/json")
