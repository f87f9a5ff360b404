"""Every error the registry can answer with, declared once, and what the model refuses, in its words.

Two kinds live here, on the lowest floor so that every layer can name them:

* :class:`ErrorCode` / :class:`RegistryError`: the OCI error table (code, message, HTTP status).
  Only the HTTP surfaces (``api``, ``web``, the CLI's HTTP backend) and the access controllers,
  whose challenges are HTTP by nature, raise them; ruff's banned-api rule (TID251) keeps them out
  of ``storage``, ``browse`` and the rest of ``auth``.
* The domain tree below (:class:`DomainError`), raised by the registry model, the read model and
  the authenticator, with no status and no header. ``api.errors.to_api_error`` translates each
  to its OCI error in one table; the API dispatcher, the Hub API, the token server, the UI and
  the CLI all go through it, so a message or status is chosen in exactly one place.
  Driver errors (:class:`StorageError`) are a separate small tree the model handles itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from dockyard.sizes import human


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
    # More ``tag`` query parameters on a push by digest than the registry takes (spec main: 414).
    TOO_MANY_TAGS = ErrorSpec("TAG_INVALID", "too many tags in one request", 414)
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
    QUERY_INVALID = ErrorSpec("BAD_REQUEST", "a query parameter is not understood", 400)
    # No part of the body for http.timeouts.body seconds (no OCI code exists for it).
    BODY_TIMEOUT = ErrorSpec("TIMEOUT", "the request body stopped arriving (http.timeouts.body)", 408)
    GC_RUNNING = ErrorSpec("GC_RUNNING", "a garbage collection is already running", 409)
    STORAGE_FULL = ErrorSpec("UNAVAILABLE", "registry storage is full: no space left on device", 507)
    UNAVAILABLE = ErrorSpec("UNAVAILABLE", "service unavailable", 503)
    # A pull-through cache's upstream did not serve what is not cached (its answer in the message).
    UPSTREAM_UNAVAILABLE = ErrorSpec("UNAVAILABLE", "the upstream registry did not answer", 502)
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


class Unavailable(Exception):
    """A service the registry stands on did not answer: the object store or the database. Its
    message names the service (never its credentials); the API answers 503 ``UNAVAILABLE`` with
    it, since the request may succeed when retried, and the process keeps serving."""


class StorageUnavailable(StorageError, Unavailable):
    """The storage backend could not be reached, or answered that it is unavailable."""


class DatabaseUnavailable(Unavailable):
    """The coordinator's database could not be reached, or lost the connection."""


class LockLost(DatabaseUnavailable):
    """A lock's database connection broke while the lock was held, so the database released it
    and an exclusive holder elsewhere (a collection's batch) may have run beside the section. The
    section's work is not vouched for: the request answers 503 and the client retries, instead of
    hearing of a success that may name content the collection removed."""


class LockBusy(StorageError):
    """A lock asked for without waiting is held by someone else."""


# --- what the registry model refuses --------------------------------------------------------------
#
# DomainError
# ├── NameUnknown(name)                        no such repository
# ├── BlobUnknown(name, digest)                a blob not linked in the repository, or not stored
# ├── ManifestUnknown(name, reference)         a tag or manifest not in the repository
# ├── UploadUnknown(upload_id)                 no such upload session (or it has finished)
# ├── UploadInUse(upload_id)                   another request is writing to the session
# ├── RangeMismatch(start, size)               a chunk that does not start where the data ends
# ├── DigestMismatch(expected, actual, upload) content that does not hash to its claimed digest
# ├── ManifestInvalid(reason)                  a manifest that does not parse or validate
# ├── ReferencesMissing(name, missing)         a manifest naming content the repository lacks
# ├── ManifestReferenced(digest, parents)      deleting a manifest that an index still lists
# ├── QuotaExceeded(quota, limit, used, size)  storing more than a repository quota allows
# ├── GCRunning                                a collection is already running on this registry
# ├── Throttled(retry_after)                   too many failed logins from a client or for a name
# ├── Mirrored(name, upstream, action)         a write to a repository a pull-through cache mirrors
# ├── PullRefused(message, detail)             a pull a policy refuses (scan.policy)
# └── UpstreamUnavailable(upstream, answer)    an upstream that failed, for content not cached
#
# str(error) is the sentence a person reads (the API's "message", the CLI's and the UI's text).


class DomainError(Exception):
    """Base of everything the registry model refuses; closed: add a case here and to the table in
    ``api.errors``, never elsewhere."""


class NameUnknown(DomainError):
    def __init__(self, name: str) -> None:
        super().__init__(f"repository {name} is not known to the registry")
        self.name = name


class BlobUnknown(DomainError):
    def __init__(self, name: str, digest: str) -> None:
        super().__init__(f"blob {digest} is not in repository {name}")
        self.name = name
        self.digest = digest


class ManifestUnknown(DomainError):
    def __init__(self, name: str, reference: str) -> None:
        super().__init__(f"manifest {reference} is not in repository {name}")
        self.name = name
        self.reference = reference


class UploadUnknown(DomainError):
    def __init__(self, upload_id: str) -> None:
        super().__init__(f"upload {upload_id} is unknown or finished")
        self.upload_id = upload_id


class UploadInUse(DomainError):
    """Another request is writing to the session (it holds the coordinator's lock on the upload)."""

    def __init__(self, upload_id: str) -> None:
        super().__init__(f"another request is writing to upload {upload_id}; retry when it has finished")
        self.upload_id = upload_id


class RangeMismatch(DomainError):
    def __init__(self, start: int, size: int) -> None:
        super().__init__(
            f"chunk starts at byte {start} but the upload has {size} bytes; "
            "ask the upload URL for the current range and resume from there"
        )
        self.start = start
        self.size = size


class DigestMismatch(DomainError):
    """``actual`` is the full ``algorithm:hex``; ``upload`` tells a blob upload (discarded) from a
    manifest pushed by digest."""

    def __init__(self, expected: str, actual: str, *, upload: bool) -> None:
        if upload:
            message = f"uploaded content has digest {actual}, not {expected}; the upload was discarded"
        else:
            message = f"manifest content has digest {actual}, not {expected} as in the URL"
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class ManifestInvalid(DomainError):
    pass


@dataclass(frozen=True, slots=True)
class Missing:
    """One reference a manifest makes that its repository cannot satisfy."""

    media_type: str
    digest: str


class ReferencesMissing(DomainError):
    def __init__(self, name: str, missing: Sequence[Missing]) -> None:
        self.name = name
        self.missing = list(missing)
        super().__init__(self.describe(self.missing[0]))

    def describe(self, item: Missing) -> str:
        return f"{item.media_type} {item.digest} is not in repository {self.name}"


class ManifestReferenced(DomainError):
    def __init__(self, digest: str, parents: Sequence[str]) -> None:
        super().__init__(
            f"manifest {digest} is part of index {parents[0]}"
            + (f" and {len(parents) - 1} more" if len(parents) > 1 else "")
            + "; delete the index first, or delete with ?force=true to break it"
        )
        self.digest = digest
        self.parents = list(parents)


class QuotaExceeded(DomainError):
    def __init__(self, quota: str, limit: int, used: int, size: int) -> None:
        super().__init__(
            f"quota for {quota} is {human(limit)} and {human(used)} is used; "
            f"storing {human(size)} more would exceed it by {human(used + size - limit)}"
        )
        self.quota = quota
        self.limit = limit
        self.used = used
        self.size = size

    @property
    def exceeded_by(self) -> int:
        return self.used + self.size - self.limit


class GCRunning(DomainError):
    def __init__(self) -> None:
        super().__init__("a garbage collection is already running on this registry")


class Throttled(DomainError):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many failed logins; try again later")
        self.retry_after = retry_after


class Mirrored(DomainError):
    """A push or delete to a repository under a proxied prefix: its content is the upstream's."""

    def __init__(self, name: str, upstream: str, action: str) -> None:
        super().__init__(
            f"repository {name} is a read-only mirror of {upstream}: {action} is refused; "
            "push to a repository outside the proxied prefixes"
        )
        self.name = name
        self.upstream = upstream


class PullRefused(DomainError):
    """A manifest pull a pull policy refuses (``scan.policy``): ``detail`` names the policy and
    the worst finding or the missing signature."""

    def __init__(self, message: str, detail: dict[str, Any]) -> None:
        super().__init__(message)
        self.detail = detail


class UpstreamUnavailable(DomainError):
    """The upstream of a pull-through cache failed (unreachable, 5xx, 429, a broken answer) and
    nothing usable is cached; ``answer`` says what it answered, ``throttled`` for its 429."""

    def __init__(self, upstream: str, answer: str, *, throttled: bool = False) -> None:
        super().__init__(f"upstream {upstream} failed and nothing is cached: {answer}")
        self.upstream = upstream
        self.answer = answer
        self.throttled = throttled
