"""The shared image builder (``dockyard.testing.images``) makes manifests dockyard reads back."""

from __future__ import annotations

import hashlib

from dockyard.oci.manifest import parse_manifest
from dockyard.testing.images import OCI_MANIFEST, build_image


def test_an_image_names_its_layers_then_its_config() -> None:
    image = build_image("app", "v1", [b"one", b"two"], {"os": "linux"})
    manifest = parse_manifest(image.manifest, OCI_MANIFEST)
    assert {str(d.digest) for d in manifest.required_blobs()} == set(image.contents)
    assert image.manifest_digest == "sha256:" + hashlib.sha256(image.manifest).hexdigest()
    assert image.blobs[-1][1] == b'{"os":"linux","rootfs":{"type":"layers","diff_ids":["%s","%s"]}}' % (
        image.blobs[0][0].encode(),
        image.blobs[1][0].encode(),
    )
    assert build_image("app", "v1", [b"one", b"two"], {"os": "linux"}) == image  # deterministic
