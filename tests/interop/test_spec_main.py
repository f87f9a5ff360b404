"""Content written with the distribution-spec main features stays readable by distribution 2.8.2.

dockyard stores tags made by ``PUT /manifests/<digest>?tag=…``, a sha512 image tagged under its
sha512 digest, and a sparse index; distribution 2.8.2, serving the same root, resolves every tag
to the digest it was pushed under, serves the sha512 manifest and blobs, and the sparse index
(its absent child answers 404 on both). The same requests sent to distribution itself record
what it does with them: it ignores ``?tag=`` and ``digest-algorithm``, refuses a manifest pushed
by a sha512 digest (distribution issue #4420) and refuses the sparse index.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx

from tests.interop.distribution import DistributionRegistry
from tests.regclient import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, det_bytes, digest_of
from tests.servers.dockyard import LiveRegistry

ACCEPT = {"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"}
CONFIG = json.dumps(
    {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
).encode()
LAYER = det_bytes("spec main interop", 4096)


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def manifest(algorithm: str) -> bytes:
    of = sha512 if algorithm == "sha512" else digest_of
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": of(CONFIG), "size": len(CONFIG)},
        "layers": [{"mediaType": OCI_LAYER, "digest": of(LAYER), "size": len(LAYER)}],
    }
    return json.dumps(doc).encode()


IMAGE, IMAGE512 = manifest("sha256"), manifest("sha512")
ABSENT = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "absent": True}).encode()
SPARSE = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest_of(IMAGE),
                "size": len(IMAGE),
                "platform": {"os": "linux", "architecture": "amd64"},
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest_of(ABSENT),
                "size": len(ABSENT),
                "platform": {"os": "linux", "architecture": "arm64"},
            },
        ],
    }
).encode()


def push_blobs(c: httpx.Client, repo: str) -> None:
    for data in (CONFIG, LAYER):
        for digest in (digest_of(data), sha512(data)):
            start = c.post(f"/v2/{repo}/blobs/uploads/")  # POST then PUT: both registries take it
            location = start.headers["Location"]
            r = c.put(f"{location}{'&' if '?' in location else '?'}digest={digest}", content=data)
            assert r.status_code == 201, r.text


def put(
    c: httpx.Client, repo: str, ref: str, body: bytes, media_type: str, tags: list[str]
) -> httpx.Response:
    params = [("tag", t) for t in tags]
    return c.put(
        f"/v2/{repo}/manifests/{ref}", params=params, content=body, headers={"Content-Type": media_type}
    )


def pulled(c: httpx.Client, repo: str, ref: str) -> tuple[int, str | None, bytes]:
    r = c.get(f"/v2/{repo}/manifests/{ref}", headers=ACCEPT)
    return r.status_code, r.headers.get("Docker-Content-Digest"), r.content if r.status_code == 200 else b""


def test_spec_main_content_is_served_by_distribution(tmp_path: Path) -> None:
    root = tmp_path / "shared-root"
    sparse_config: dict[str, Any] = {"validation": {"manifests": {"indexes": {"platforms": "none"}}}}
    with (
        LiveRegistry(tmp_path / "dockyard", root=root, config=sparse_config) as dockyard,
        httpx.Client(base_url=dockyard.url, timeout=30) as c,
    ):
        push_blobs(c, "spec/app")
        r = put(c, "spec/app", digest_of(IMAGE), IMAGE, OCI_MANIFEST, ["1.2.3", "1.2", "latest"])
        assert r.status_code == 201 and r.headers.get_list("OCI-Tag") == ["1.2.3", "1.2", "latest"]
        r = put(c, "spec/app", sha512(IMAGE512), IMAGE512, OCI_MANIFEST, ["s5"])
        assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == sha512(IMAGE512)
        assert put(c, "spec/app", "sparse", SPARSE, OCI_INDEX, []).status_code == 201
        ours = {ref: pulled(c, "spec/app", ref) for ref in ("1.2.3", "1.2", "latest", "s5", "sparse")}

    with (
        DistributionRegistry(tmp_path / "distribution", root=root) as distribution,
        httpx.Client(base_url=distribution.url, timeout=30) as c,
    ):
        theirs = {ref: pulled(c, "spec/app", ref) for ref in ours}
        assert theirs == ours
        assert {ref: digest for ref, (_, digest, _) in theirs.items()} == {
            "1.2.3": digest_of(IMAGE),
            "1.2": digest_of(IMAGE),
            "latest": digest_of(IMAGE),
            "s5": sha512(IMAGE512),
            "sparse": digest_of(SPARSE),
        }
        assert pulled(c, "spec/app", sha512(IMAGE512))[:2] == (200, sha512(IMAGE512))
        assert pulled(c, "spec/app", digest_of(ABSENT))[0] == 404
        r = c.get(f"/v2/spec/app/blobs/{sha512(LAYER)}")
        assert (r.status_code, r.content, r.headers["Docker-Content-Digest"]) == (200, LAYER, sha512(LAYER))

        # The same requests, sent to distribution 2.8.2 itself.
        push_blobs(c, "direct/app")
        r = put(c, "direct/app", digest_of(IMAGE), IMAGE, OCI_MANIFEST, ["1.2.3", "latest"])
        assert r.status_code == 201 and "OCI-Tag" not in r.headers  # ?tag= ignored:
        assert pulled(c, "direct/app", "1.2.3")[0] == 404  # no tag made
        r = c.post("/v2/direct/app/blobs/uploads/", params={"digest-algorithm": "md5"})
        assert r.status_code == 202  # digest-algorithm ignored
        c.delete(r.headers["Location"])
        r = put(c, "direct/app", sha512(IMAGE512), IMAGE512, OCI_MANIFEST, [])
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "DIGEST_INVALID"
        r = put(c, "direct/app", "sparse", SPARSE, OCI_INDEX, [])
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
