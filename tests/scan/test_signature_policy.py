"""Signature policies in process: an unsigned image is refused; a cosign signature (behind its
``sha256-<hex>.sig`` tag, or as a referrer), a Sigstore bundle or a Notation signature lets it
through; with keys, only a cosign signature that verifies and names this digest does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.scan import signing
from tests.scan.policyapp import OCI_INDEX, OCI_MANIFEST, denied

pytestmark = pytest.mark.anyio
NOTATION = "application/vnd.cncf.notary.signature"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def referrer(artifact_type: str, layer_type: str, subject: tuple[str, int]) -> signing.SignatureManifest:
    """A Notation signature or a Sigstore bundle as its tool pushes it (its contents are not read)."""
    data = b'{"signature": "opaque to the registry"}'
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": signing.OCI_EMPTY, "size": 2, "digest": signing.sha256(b"{}")},
        "layers": [{"mediaType": layer_type, "size": len(data), "digest": signing.sha256(data)}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject[0], "size": subject[1]},
    }
    return signing.SignatureManifest(signing.compact(doc), [b"{}", data])


async def test_any_signature_kind_satisfies_a_policy_without_keys(make: Callable[..., Any]) -> None:
    reg = await make({"name": "signed", "repositories": ["prod/**"], "signed": True})
    key = signing.new_key()
    images = {kind: await reg.push("prod/app", kind, kind) for kind in ("tag", "cosign", "bundle", "notary")}
    for kind, (digest, _) in images.items():
        error = denied(await reg.pull("prod/app", kind))
        assert error["message"] == (
            f'pull of prod/app@{digest} refused by policy "signed": it is not signed '
            "(no cosign, Sigstore bundle or Notation signature)"
        )
        assert error["detail"]["policy"] == "signed"

    digest, size = images["tag"]
    sig = signing.signature_manifest(key, signing.payload("registry.test/prod/app", digest))
    await reg.put("prod/app", signing.cosign_tag(digest), sig.manifest, sig.blobs)
    digest, size = images["cosign"]
    sig = signing.signature_manifest(key, signing.payload("registry.test/prod/app", digest), (digest, size))
    await reg.put("prod/app", sig.digest, sig.manifest, sig.blobs)
    digest, size = images["bundle"]
    sig = referrer(BUNDLE, BUNDLE, (digest, size))
    await reg.put("prod/app", sig.digest, sig.manifest, sig.blobs)
    digest, size = images["notary"]
    sig = referrer(NOTATION, "application/jose+json", (digest, size))
    await reg.put("prod/app", sig.digest, sig.manifest, sig.blobs)
    # No clock moved: storing a signature through this worker drops what it had read.
    for kind, (digest, _) in images.items():
        assert (await reg.pull("prod/app", kind)).status_code == 200, kind
        assert (await reg.pull("prod/app", digest)).status_code == 200, kind
    # The signatures themselves are never refused (cosign verify reads them).
    assert (await reg.pull("prod/app", signing.cosign_tag(images["tag"][0]))).status_code == 200


async def test_with_keys_only_a_verified_cosign_signature_of_this_digest_counts(
    make: Callable[..., Any],
) -> None:
    key, other = signing.new_key(), signing.new_key()
    policy = {"name": "ours", "repositories": ["**"], "signed": True, "keys": [signing.public_pem(key)]}
    reg = await make(policy)
    digest, size = await reg.push("app", "v1", "image one")
    second, second_size = await reg.push("app", "v2", "image two")
    assert "it has no cosign signature to verify" in denied(await reg.pull("app", "v1"))["message"]

    # A Notation signature does not count when the policy verifies cosign signatures.
    sig = referrer(NOTATION, "application/jose+json", (digest, size))
    await reg.put("app", sig.digest, sig.manifest, sig.blobs)
    assert "no cosign signature" in denied(await reg.pull("app", "v1"))["message"]

    # Signed with another key.
    wrong = signing.signature_manifest(other, signing.payload("registry.test/app", digest))
    await reg.put("app", signing.cosign_tag(digest), wrong.manifest, wrong.blobs)
    error = denied(await reg.pull("app", digest))
    assert error["detail"]["signature"] == (
        f"cosign signature tag {wrong.digest} does not verify with the policy's keys"
    )
    # Our key, but the payload names image two: a signature copied next to another image.
    copied = signing.signature_manifest(key, signing.payload("registry.test/app", second))
    await reg.put("app", signing.cosign_tag(digest), copied.manifest, copied.blobs)
    error = denied(await reg.pull("app", "v1"))
    assert error["detail"]["signature"] == (
        f"cosign signature tag {copied.digest} signs another digest ({second})"
    )
    assert f'refused by policy "ours": cosign signature tag {copied.digest}' in error["message"]

    good = signing.signature_manifest(key, signing.payload("registry.test/app", digest))
    await reg.put("app", signing.cosign_tag(digest), good.manifest, good.blobs)
    assert (await reg.pull("app", "v1")).status_code == 200

    # The referrer form: a wrong key's, then ours.
    assert denied(await reg.pull("app", "v2"))["detail"]["policy"] == "ours"
    wrong = signing.signature_manifest(
        other, signing.payload("registry.test/app", second), (second, second_size)
    )
    await reg.put("app", wrong.digest, wrong.manifest, wrong.blobs)
    assert "does not verify" in denied(await reg.pull("app", "v2"))["message"]
    good = signing.signature_manifest(
        key, signing.payload("registry.test/app", second), (second, second_size)
    )
    await reg.put("app", good.digest, good.manifest, good.blobs)
    assert (await reg.pull("app", "v2")).status_code == 200


async def test_an_image_of_a_signed_index_counts_as_signed(make: Callable[..., Any]) -> None:
    key = signing.new_key()
    policy = {"name": "ours", "repositories": ["**"], "signed": True, "keys": [signing.public_pem(key)]}
    reg = await make(policy)
    amd64, amd64_size = await reg.push("multi", "", "amd64")
    arm64, arm64_size = await reg.push("multi", "", "arm64")
    index = signing.compact(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": amd64, "size": amd64_size,
                 "platform": {"architecture": "amd64", "os": "linux"}},
                {"mediaType": OCI_MANIFEST, "digest": arm64, "size": arm64_size,
                 "platform": {"architecture": "arm64", "os": "linux"}},
            ],
        }
    )  # fmt: skip
    await reg.put("multi", "v1", index)
    assert "no cosign signature" in denied(await reg.pull("multi", "v1"))["message"]
    assert "no cosign signature" in denied(await reg.pull("multi", arm64))["message"]

    # cosign sign on the tag signs the index; docker then pulls a child by digest.
    sig = signing.signature_manifest(key, signing.payload("registry.test/multi", signing.sha256(index)))
    await reg.put("multi", signing.cosign_tag(signing.sha256(index)), sig.manifest, sig.blobs)
    assert (await reg.pull("multi", "v1")).status_code == 200
    assert (await reg.pull("multi", arm64)).status_code == 200
    assert (await reg.pull("multi", amd64)).status_code == 200
    # An image of no signed index is still refused.
    alone, _ = await reg.push("multi", "alone", "alone")
    assert "no cosign signature" in denied(await reg.pull("multi", alone))["message"]
