"""Every API error the registry can answer with, declared once.

Handlers raise :class:`RegistryError` with an :class:`ErrorCode` from the table; one handler in
``api.app`` renders the OCI envelope ``{"errors": [{"code", "message", "detail"}]}`` with the
status of the first error. Storage and parsing code raise the domain errors below, which the API
layer translates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    code: str
    message: str
    status: int


class ErrorCode(Enum):
    """(OCI code, default message, HTTP status)."""

    BLOB_UNKNOWN = ErrorSpec("BLOB_UNKNOWN", "blob unknown to registry", 404)
    BLOB_UPLOAD_INVALID = ErrorSpec("BLOB_UPLOAD_INVALID", "blob upload invalid", 400)
    BLOB_UPLOAD_UNKNOWN = ErrorSpec("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404)
    DIGEST_INVALID = ErrorSpec("DIGEST_INVALID", "provided digest did not match uploaded content", 400)
    MANIFEST_BLOB_UNKNOWN = ErrorSpec(
        "MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry", 400
    )
    MANIFEST_INVALID = ErrorSpec("MANIFEST_INVALID", "manifest invalid", 400)
    MANIFEST_TOO_BIG = ErrorSpec("MANIFEST_INVALID", "manifest is larger than the registry accepts", 413)
    MANIFEST_UNKNOWN = ErrorSpec("MANIFEST_UNKNOWN", "manifest unknown to registry", 404)
    MANIFEST_REFERENCED = ErrorSpec("DENIED", "manifest is referenced by an index", 409)
    NAME_INVALID = ErrorSpec("NAME_INVALID", "invalid repository name", 400)
    NAME_UNKNOWN = ErrorSpec("NAME_UNKNOWN", "repository name not known to registry", 404)
    SIZE_INVALID = ErrorSpec("SIZE_INVALID", "provided length did not match content length", 400)
    TAG_INVALID = ErrorSpec("TAG_INVALID", "invalid tag", 400)
    UNAUTHORIZED = ErrorSpec("UNAUTHORIZED", "authentication required", 401)
    DENIED = ErrorSpec("DENIED", "requested access to the resource is denied", 403)
    # A valid bearer token without the action: 401 + error="insufficient_scope" (token spec).
    INSUFFICIENT_SCOPE = ErrorSpec("DENIED", "requested access to the resource is denied", 401)
    UNSUPPORTED = ErrorSpec("UNSUPPORTED", "the operation is unsupported", 405)
    METHOD_UNKNOWN = ErrorSpec("UNSUPPORTED", "the method is not allowed on this endpoint", 405)
    TOOMANYREQUESTS = ErrorSpec("TOOMANYREQUESTS", "too many requests", 429)
    RANGE_INVALID = ErrorSpec("RANGE_INVALID", "invalid content range", 416)
    BLOB_RANGE_UNSATISFIABLE = ErrorSpec("RANGE_INVALID", "requested range not satisfiable", 416)
    PAGINATION_NUMBER_INVALID = ErrorSpec(
        "PAGINATION_NUMBER_INVALID", "invalid number of results requested", 400
    )
    ROUTE_UNKNOWN = ErrorSpec("NOT_FOUND", "no such endpoint", 404)
    UNSUPPORTED_BODY = ErrorSpec("BAD_REQUEST", "the request body is not understood", 400)
    # No part of the body for http.timeouts.body seconds (no OCI code exists for it).
    BODY_TIMEOUT = ErrorSpec("TIMEOUT", "the request body stopped arriving (http.timeouts.body)", 408)
    GC_RUNNING = ErrorSpec("GC_RUNNING", "a garbage collection is already running", 409)
    STORAGE_FULL = ErrorSpec("UNAVAILABLE", "registry storage is full: no space left on device", 507)
    UNAVAILABLE = ErrorSpec("UNAVAILABLE", "service unavailable", 503)
    UNKNOWN = ErrorSpec("UNKNOWN", "unknown error", 500)

    @property
    def spec(self) -> ErrorSpec:
        spec: ErrorSpec = self.value
        return spec


class RegistryError(Exception):
    """An API error: one or more entries of the table, rendered by the API error handler."""

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        detail: Any = None,
        *,
        headers: dict[str, str] | None = None,
        more: Sequence[tuple[ErrorCode, str | None, Any]] | None = None,
    ) -> None:
        self.entries: list[tuple[ErrorCode, str | None, Any]] = [(code, message, detail), *(more or [])]
        self.headers = headers or {}
        super().__init__(message or code.spec.message)

    @classmethod
    def name_unknown(cls, name: str) -> RegistryError:
        return cls(ErrorCode.NAME_UNKNOWN, f"repository {name} is not known to the registry", {"name": name})

    @property
    def status(self) -> int:
        return self.entries[0][0].spec.status

    def body(self) -> dict[str, Any]:
        errors = []
        for code, message, detail in self.entries:
            entry: dict[str, Any] = {"code": code.spec.code, "message": message or code.spec.message}
            if detail is not None:
                entry["detail"] = detail
            errors.append(entry)
        return {"errors": errors}


# --- domain errors raised below the API layer -------------------------------------------------


class StorageError(Exception):
    """Base of errors raised by storage drivers."""


class PathNotFound(StorageError):
    def __init__(self, path: str) -> None:
        super().__init__(f"path not found: {path}")
        self.path = path


class InvalidPath(StorageError):
    def __init__(self, path: str) -> None:
        super().__init__(f"invalid storage path: {path!r}")
        self.path = path


class StorageFull(StorageError):
    """The backend refused a write for lack of space (ENOSPC / EDQUOT)."""


class LockBusy(StorageError):
    """A lock asked for without waiting is held by someone else."""


class UploadBusy(StorageError):
    """Another request is writing to the same upload session right now."""
