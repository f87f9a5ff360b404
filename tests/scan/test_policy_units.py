"""The pieces of the pull policies that the app-level tests reach only in their usual shapes:
scan results of every shape, the per-worker cache, and malformed cosign signatures."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from dockyard.events import ManifestPulled, TagDeleted
from dockyard.scan.policy import Found, PolicyCache, image_kind, read_result
from tests.scan import signing
from tests.scan.policyapp import OCI_MANIFEST, denied


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


FINDING = {"advisory": "A-1", "aliases": ["CVE-1"], "package": "p", "installed": "1", "severity": "high"}


def test_scan_results_of_every_shape() -> None:
    assert read_result(None).problem == "it has not been scanned yet"
    assert read_result({"state": "skipped", "images": []}) == read_result({"state": "gone"})
    assert read_result({"state": "gone"}).problem is None
    assert read_result({"state": "queued"}).problem == "its scan queued"
    assert read_result({"images": "nonsense"}).problem == "its scan did not finish"
    failed = {"state": "failed", "images": [{"state": "failed", "error": "syft died"}]}
    assert read_result(failed).problem == "its scan failed: syft died"
    no_db = {"state": "done", "images": [{"state": "generated"}]}
    assert read_result(no_db).problem == "its findings are unknown: the registry has no advisory database"
    unmatched = {
        "state": "done",
        "images": [{"state": "provided", "findings": None, "matchError": "no SBOM"}],
    }
    assert read_result(unmatched).problem == "its findings are unknown: no SBOM"
    done = {
        "state": "done",
        "images": ["junk", {"state": "skipped"}, {"state": "generated", "findings": [FINDING, "junk"]}],
    }
    assert read_result(done).findings == (Found("A-1", ("CVE-1",), "p", "1", "high", None),)


def test_what_counts_as_an_image() -> None:
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + "1" * 64}
    config = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "2" * 64}
    image = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}
    assert image_kind(OCI_MANIFEST, signing.compact(image)) == "image"
    helm = {**image, "config": {**config, "mediaType": "application/vnd.cncf.helm.config.v1+json"}}
    assert image_kind(OCI_MANIFEST, signing.compact(helm)) is None
    assert image_kind(OCI_MANIFEST, signing.compact({**image, "artifactType": "x/y"})) is None
    assert image_kind("application/vnd.docker.distribution.manifest.list.v2+json", b"{}") == "index"
    assert image_kind(OCI_MANIFEST, b"not json") is None


def test_the_cache_expires_forgets_a_repository_and_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    cache = PolicyCache(10, lambda: now[0])
    cache.put("a", ("k",), 1)
    cache.put("b", ("k",), 2)
    assert cache.get("a", ("k",)) == (True, 1)
    cache.emit(ManifestPulled("a", "sha256:" + "0" * 64, None, OCI_MANIFEST, 1))  # a pull changes nothing
    assert cache.get("a", ("k",)) == (True, 1)
    cache.emit(TagDeleted("a", "v1"))
    assert cache.get("a", ("k",)) == (False, None) and cache.get("b", ("k",)) == (True, 2)
    now[0] = 10
    assert cache.get("b", ("k",)) == (False, None)  # expired
    monkeypatch.setattr("dockyard.scan.policy.MAX_CACHED", 2)
    cache.put("c", ("1",), 1)
    cache.put("c", ("2",), 2)  # full: everything goes, then this one is kept
    assert cache.get("b", ("k",)) == (False, None) and cache.get("c", ("2",)) == (True, 2)
    off = PolicyCache(0)
    off.put("a", ("k",), 1)
    assert off.get("a", ("k",)) == (False, None)


@pytest.mark.anyio
async def test_malformed_cosign_signatures_do_not_count(make: Callable[..., Any]) -> None:
    key = signing.new_key()
    policy = {"name": "ours", "repositories": ["**"], "signed": True, "keys": [signing.public_pem(key)]}
    reg = await make(policy)
    digest, _ = await reg.push("app", "v1", "image")
    good = signing.payload("registry.test/app", digest)
    not_cosign = signing.compact({"critical": {"type": "something else"}})
    big = good + b" " * 70_000
    layers, blobs = [], []
    cases: list[tuple[bytes, str | None]] = [
        (good, None),  # no signature annotation
        (good, "%%% not base64 %%%"),
        (b"not json", base64.b64encode(b"x").decode()),
        (not_cosign, base64.b64encode(b"x").decode()),
        (big, base64.b64encode(b"x").decode()),  # too big to be a payload
    ]
    for body, signature in cases:
        layer: dict[str, Any] = {
            "mediaType": signing.SIMPLESIGNING,
            "size": len(body),
            "digest": signing.sha256(body),
        }
        if signature is not None:
            layer["annotations"] = {"dev.cosignproject.cosign/signature": signature}
        layers.append(layer)
        blobs.append(body)
    layers.append({"mediaType": "text/plain", "size": 1, "digest": signing.sha256(b"x")})  # not a payload
    empty = {"mediaType": signing.OCI_EMPTY, "size": 2, "digest": signing.sha256(b"{}")}
    manifest = signing.compact(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": empty, "layers": layers}
    )
    await reg.put("app", signing.cosign_tag(digest), manifest, [b"{}", b"x", *blobs])
    error = denied(await reg.pull("app", "v1"))
    assert error["detail"]["signature"] == (
        f"cosign signature tag {signing.sha256(manifest)} holds no cosign signature"
    )
