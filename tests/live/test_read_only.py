"""storage.maintenance.readonly.enabled: every write is refused with 405 UNSUPPORTED, reads work."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.regclient import (
    OCI_MANIFEST,
    det_bytes,
    digest_of,
    error_codes,
    get_manifest,
    image_manifest,
    push_blob,
    push_manifest,
    start_upload,
    tree_files,
)
from tests.servers.dockyard import LiveRegistry

REPO = "frozen/repo"


def test_read_only_mode(tmp_path: Path) -> None:
    root = tmp_path / "root"
    layer, config = det_bytes("ro-layer", 200_000), b'{"architecture":"amd64","os":"linux"}'
    manifest = image_manifest(OCI_MANIFEST, config, [layer])
    with LiveRegistry(tmp_path / "writable", root=root) as writable, httpx.Client(base_url=writable.url) as c:
        push_blob(c, REPO, layer)
        push_blob(c, REPO, config)
        digest = push_manifest(c, REPO, "v1", manifest, OCI_MANIFEST)
        session = start_upload(c, REPO)  # an upload left open before the switch
        session_path = session.removeprefix(writable.url)
    before = tree_files(root, skip_uploads=False)

    config_ro = {"storage": {"maintenance": {"readonly": {"enabled": True}}}}
    with (
        LiveRegistry(tmp_path / "readonly", root=root, config=config_ro) as ro,
        httpx.Client(base_url=ro.url) as c,
    ):
        # Reads.
        r = get_manifest(c, REPO, "v1")
        assert (r.status_code, r.content, r.headers["docker-content-digest"]) == (200, manifest, digest)
        assert get_manifest(c, REPO, digest).content == manifest
        assert c.head(f"/v2/{REPO}/manifests/v1", headers={"Accept": OCI_MANIFEST}).status_code == 200
        r = c.get(f"/v2/{REPO}/blobs/{digest_of(layer)}")
        assert (r.status_code, r.content) == (200, layer)
        assert c.get(f"/v2/{REPO}/tags/list").json() == {"name": REPO, "tags": ["v1"]}
        assert c.get("/v2/_catalog").json() == {"repositories": [REPO]}
        assert c.get(session_path).status_code == 204  # upload status is a read

        # Writes.
        new = det_bytes("ro-new", 1000)
        writes = [
            c.post(f"/v2/{REPO}/blobs/uploads/"),
            c.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": digest_of(new)}, content=new),
            c.post("/v2/other/blobs/uploads/", params={"mount": digest_of(layer), "from": REPO}),
            c.patch(session_path, content=new),
            c.put(f"{session_path}?digest={digest_of(new)}", content=new),
            c.delete(session_path),
            c.put(f"/v2/{REPO}/manifests/v2", content=manifest, headers={"Content-Type": OCI_MANIFEST}),
            c.delete(f"/v2/{REPO}/manifests/v1"),
            c.delete(f"/v2/{REPO}/manifests/{digest}"),
            c.delete(f"/v2/{REPO}/blobs/{digest_of(layer)}"),
        ]
        for r in writes:
            where = f"{r.request.method} {r.request.url.path}"
            assert r.status_code == 405, (where, r.status_code, r.text)
            assert error_codes(r) == ["UNSUPPORTED"], where
            assert "read-only" in r.json()["errors"][0]["message"], where

        # Nothing changed on disk, and everything still reads.
        assert get_manifest(c, REPO, "v1").content == manifest
        assert c.get(f"/v2/{REPO}/tags/list").json()["tags"] == ["v1"]
    assert tree_files(root, skip_uploads=False) == before
    assert not (root / "docker/registry/v2/repositories/other").exists()
