"""An image's signatures as a pull policy sees them: which exist, and whether a cosign one verifies.

Four kinds count as "signed" (``scan.policy``): cosign 2's default, a tag ``sha256-<hex>.sig``
in the image's repository naming a manifest whose layers are the signed payloads; the same
manifest pushed as an OCI referrer (``application/vnd.dev.cosign.artifact.sig.v1+json``, cosign's
``--registry-referrers-mode=oci-1-1``); a Sigstore bundle referrer (cosign 3's default); and a
Notation signature referrer. Only the two cosign forms are verified here: each payload layer
(``application/vnd.dev.cosign.simplesigning.v1+json``) carries its ECDSA signature, base64 DER,
in the annotation ``dev.cosignproject.cosign/signature``, over the payload's bytes; the payload
(JSON, "simple signing") names the signed manifest in ``critical.image.docker-manifest-digest``,
which must be the pulled digest: a valid signature copied next to another image proves nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from dockyard.errors import BlobUnknown, ManifestUnknown
from dockyard.oci.digest import Digest
from dockyard.storage.registry import Registry

COSIGN_REFERRER = "application/vnd.dev.cosign.artifact.sig.v1+json"
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
NOTATION = "application/vnd.cncf.notary.signature"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PAYLOAD_TYPE = "cosign container image signature"
MAX_PAYLOAD_BYTES = 64 * 1024  # a simple-signing payload is a few hundred bytes
MAX_LAYERS = 64  # payloads checked per signature manifest (cosign appends one per signing)
KINDS = {
    COSIGN_REFERRER: "cosign signature referrer",
    SIGSTORE_BUNDLE: "Sigstore bundle referrer",
    NOTATION: "Notation signature referrer",
}


@dataclass(frozen=True, slots=True)
class Signature:
    kind: str  # "cosign signature tag" or one of KINDS' values
    manifest: Digest  # the signature's manifest

    @property
    def cosign(self) -> bool:
        return self.kind in ("cosign signature tag", KINDS[COSIGN_REFERRER])


def cosign_tag(digest: Digest) -> str:
    """The tag cosign 2 stores ``digest``'s signatures under: ``sha256-<hex>.sig``."""
    return f"{digest.algorithm}-{digest.hex}.sig"


async def signatures_of(registry: Registry, name: str, digest: Digest) -> list[Signature]:
    """The signatures of ``digest`` in ``name``: its cosign tag, then its signature referrers."""
    found = []
    tagged = await registry.tags.resolve(name, cosign_tag(digest))
    if tagged is not None:
        found.append(Signature("cosign signature tag", tagged))
    for ref in await registry.referrers(name, digest):
        kind = KINDS.get(ref.artifact_type or "")
        if kind is not None:
            found.append(Signature(kind, ref.digest))
    return found


def load_keys(pems: list[str]) -> list[ec.EllipticCurvePublicKey]:
    """The policy's keys (checked to be P-256 by the configuration)."""
    keys = []
    for pem in pems:
        key = load_pem_public_key(pem.encode())
        if isinstance(key, ec.EllipticCurvePublicKey):
            keys.append(key)
    return keys


async def _payload(registry: Registry, name: str, layer: dict[str, Any]) -> bytes | None:
    try:
        source = await registry.open_blob(name, Digest.parse(str(layer.get("digest"))))
    except (BlobUnknown, ValueError):
        return None
    if source.size > MAX_PAYLOAD_BYTES:
        return None
    return b"".join([chunk async for chunk in source.read()])


def _names(payload: bytes) -> str | None:
    """The digest a simple-signing payload names; None when it is no cosign payload."""
    try:
        critical = json.loads(payload)["critical"]
        if critical["type"] != PAYLOAD_TYPE:
            return None
        return str(critical["image"]["docker-manifest-digest"])
    except (ValueError, KeyError, TypeError):
        return None


def _verifies(keys: list[ec.EllipticCurvePublicKey], signature: bytes, payload: bytes) -> bool:
    for key in keys:
        try:
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
            return True
        except InvalidSignature:
            continue
    return False


async def verify_cosign(
    registry: Registry, name: str, digest: Digest, signature: Signature, keys: list[ec.EllipticCurvePublicKey]
) -> str | None:
    """None when a payload of ``signature`` names ``digest`` and verifies with one of ``keys``;
    otherwise why not (for the refusal's message)."""
    try:
        _, body = await registry.manifests.get(name, signature.manifest)
        layers = json.loads(body).get("layers")
    except (ManifestUnknown, ValueError, AttributeError):
        return f"{signature.kind} {signature.manifest} is unreadable"
    reason = f"{signature.kind} {signature.manifest} holds no cosign signature"
    for layer in layers[:MAX_LAYERS] if isinstance(layers, list) else []:
        if not isinstance(layer, dict) or layer.get("mediaType") != SIMPLESIGNING:
            continue
        annotations = layer.get("annotations")
        encoded = annotations.get(SIGNATURE_ANNOTATION) if isinstance(annotations, dict) else None
        payload = await _payload(registry, name, layer)
        if not isinstance(encoded, str) or payload is None:
            continue
        named = _names(payload)
        if named is None:
            continue
        if named != str(digest):
            reason = f"{signature.kind} {signature.manifest} signs another digest ({named})"
            continue
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if _verifies(keys, raw, payload):
            return None
        reason = f"{signature.kind} {signature.manifest} does not verify with the policy's keys"
    return reason
