"""The domain tree and its one translation: every case maps to its own OCI error, nothing to UNKNOWN."""

from __future__ import annotations

import pytest

from dockyard import errors
from dockyard.api.errors import to_api_error
from dockyard.errors import DomainError, ErrorCode

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64

CASES: list[tuple[DomainError, ErrorCode, int]] = [
    (errors.NameUnknown("a/b"), ErrorCode.NAME_UNKNOWN, 404),
    (errors.BlobUnknown("a/b", D1), ErrorCode.BLOB_UNKNOWN, 404),
    (errors.ManifestUnknown("a/b", "v1"), ErrorCode.MANIFEST_UNKNOWN, 404),
    (errors.UploadUnknown("u1"), ErrorCode.BLOB_UPLOAD_UNKNOWN, 404),
    (errors.UploadInUse("u1"), ErrorCode.BLOB_UPLOAD_INVALID, 400),
    (errors.RangeMismatch(10, 3), ErrorCode.RANGE_INVALID, 416),
    (errors.DigestMismatch(D1, D2, upload=True), ErrorCode.DIGEST_INVALID, 400),
    (errors.ManifestInvalid("not JSON"), ErrorCode.MANIFEST_INVALID, 400),
    (errors.ReferencesMissing("a/b", [errors.Missing("m", D1)]), ErrorCode.MANIFEST_BLOB_UNKNOWN, 400),
    (errors.ManifestReferenced(D1, [D2]), ErrorCode.MANIFEST_REFERENCED, 409),
    (errors.QuotaExceeded("q/**", 1000, 0, 2048), ErrorCode.DENIED, 403),
    (errors.GCRunning(), ErrorCode.GC_RUNNING, 409),
    (errors.Throttled(30), ErrorCode.TOOMANYREQUESTS, 429),
    (errors.Mirrored("docker.io/a", "https://registry-1.docker.io", "a push"), ErrorCode.DENIED, 403),
    (
        errors.PullRefused('pull refused by policy "p": it is not signed', {"policy": "p"}),
        ErrorCode.DENIED,
        403,
    ),
    (errors.UpstreamUnavailable("https://up", "HTTP 503"), ErrorCode.UPSTREAM_UNAVAILABLE, 502),
]


def test_every_case_of_the_tree_is_in_the_table() -> None:
    leaves = {cls for cls in DomainError.__subclasses__()}
    assert leaves == {type(exc) for exc, _, _ in CASES}


@pytest.mark.parametrize(("exc", "code", "status"), CASES, ids=lambda v: type(v).__name__)
def test_translation(exc: DomainError, code: ErrorCode, status: int) -> None:
    error = to_api_error(exc)
    assert error.entries[0][0] is code and error.status == status
    assert error.body()["errors"][0]["message"] == str(exc)


def test_a_throttled_upstream_is_too_many_requests() -> None:
    error = to_api_error(errors.UpstreamUnavailable("https://up", "HTTP 429", throttled=True))
    assert error.entries[0][0] is ErrorCode.TOOMANYREQUESTS and error.status == 429


def test_range_mismatch_adds_the_range_to_the_handlers_headers() -> None:
    error = to_api_error(errors.RangeMismatch(10, 3), {"Location": "/u", "Range": "0-0"})
    assert list(error.headers.items()) == [("Location", "/u"), ("Range", "0-2")]


def test_references_missing_lists_every_reference() -> None:
    exc = errors.ReferencesMissing("a/b", [errors.Missing("m1", D1), errors.Missing("m2", D2)])
    body = to_api_error(exc).body()
    assert body == {
        "errors": [
            {"code": "MANIFEST_BLOB_UNKNOWN", "message": f"m1 {D1} is not in repository a/b", "detail": D1},
            {"code": "MANIFEST_BLOB_UNKNOWN", "message": f"m2 {D2} is not in repository a/b", "detail": D2},
        ]
    }


def test_quota_detail_says_by_how_much() -> None:
    detail = to_api_error(errors.QuotaExceeded("q/**", 1000, 600, 500)).body()["errors"][0]["detail"]
    assert detail == {"quota": "q/**", "limit": 1000, "used": 600, "exceededBy": 100}
