"""cosign's signature formats, made by the tests with ``cryptography``: a key pair as
``cosign generate-key-pair`` makes (ECDSA P-256), the simple-signing payload naming a digest,
and the manifest holding it, as cosign 2 pushes it behind ``sha256-<hex>.sig`` and as it pushes
it as an OCI 1.1 referrer (``--registry-referrers-mode=oci-1-1``)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.testing.images import OCI_CONFIG, OCI_MANIFEST, sha256
from dockyard.testing.images import compact_json as compact

OCI_EMPTY = "application/vnd.oci.empty.v1+json"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_REFERRER = "application/vnd.dev.cosign.artifact.sig.v1+json"


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def payload(reference: str, digest: str) -> bytes:
    """cosign's simple-signing payload for image ``reference`` (``host/repo``) at ``digest``."""
    return compact(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    )


@dataclass(frozen=True)
class SignatureManifest:
    manifest: bytes
    blobs: list[bytes]  # the config (or empty descriptor's blob) and the payload

    @property
    def digest(self) -> str:
        return sha256(self.manifest)


def signature_manifest(
    key: ec.EllipticCurvePrivateKey, body: bytes, subject: tuple[str, int] | None = None
) -> SignatureManifest:
    """The manifest cosign pushes for signed payload ``body``: with ``subject`` (digest, size)
    the OCI 1.1 referrer form (artifactType, empty config), else the ``.sig`` tag form (an image
    config whose one diff id is the payload)."""
    signature = base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()
    layer = {
        "mediaType": SIMPLESIGNING,
        "size": len(body),
        "digest": sha256(body),
        "annotations": {"dev.cosignproject.cosign/signature": signature},
    }
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    if subject is None:
        config = compact(
            {
                "architecture": "",
                "created": "0001-01-01T00:00:00Z",
                "history": [{"created": "0001-01-01T00:00:00Z"}],
                "os": "",
                "rootfs": {"type": "layers", "diff_ids": [sha256(body)]},
                "config": {},
            }
        )
        doc["config"] = {"mediaType": OCI_CONFIG, "size": len(config), "digest": sha256(config)}
    else:
        config = b"{}"
        doc["artifactType"] = COSIGN_REFERRER
        doc["config"] = {"mediaType": OCI_EMPTY, "size": 2, "digest": sha256(config)}
    doc["layers"] = [layer]
    if subject is not None:
        doc["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject[0], "size": subject[1]}
    return SignatureManifest(compact(doc), [config, body])


def cosign_tag(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}-{hexdigest}.sig"
