"""Parsing and validation of pushed manifests.

The registry stores the exact bytes it was given; this module only reads them to learn the media
type, what they reference (config, layers, child manifests) and their ``subject``. Unknown fields
and unknown media types of configs and layers are accepted, as image-spec requires. The bytes are
parsed by :func:`dockyard.oci.document.load_strict`: depth, number and duplicate-key limits, UTF-8.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest, DigestError
from dockyard.oci.document import DocumentError, load_strict

_GENERIC_TYPES = {"", "application/json", "application/octet-stream"}


class ManifestError(ValueError):
    """The manifest cannot be accepted; the message says why."""


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    urls: tuple[str, ...] = ()
    platform: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = self.annotations
        if self.platform:
            out["platform"] = self.platform
        return out


@dataclass(frozen=True, slots=True)
class Manifest:
    media_type: str
    config: Descriptor | None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = field(default=None)

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEXES

    def required_blobs(self) -> list[Descriptor]:
        """Config and layers that must exist as blobs in the repository before the push."""
        out = [self.config] if self.config is not None else []
        for layer in self.layers:
            # Foreign / non-distributable layers carrying URLs live elsewhere by design.
            foreign = layer.media_type == mt.DOCKER_FOREIGN_LAYER or layer.media_type.startswith(
                mt.OCI_NONDISTRIBUTABLE_PREFIX
            )
            if foreign and layer.urls:
                continue
            out.append(layer)
        return out


def media_type_of(content_type: str | None) -> str:
    """The media type of a Content-Type header, parameters dropped."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _descriptor(raw: Any, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ManifestError(f"{where} must be a JSON object")
    media_type = raw.get("mediaType")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestError(f"{where}.mediaType must be a non-empty string")
    digest_raw = raw.get("digest")
    if not isinstance(digest_raw, str):
        raise ManifestError(f"{where}.digest must be a string")
    try:
        digest = Digest.parse(digest_raw)
    except DigestError as exc:
        raise ManifestError(f"{where}.digest: {exc}") from None
    size = raw.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{where}.size must be a non-negative integer")
    urls = raw.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ManifestError(f"{where}.urls must be a list of strings")
    annotations = raw.get("annotations")
    if annotations is not None and not (
        isinstance(annotations, dict) and all(isinstance(v, str) for v in annotations.values())
    ):
        raise ManifestError(f"{where}.annotations must map strings to strings")
    artifact_type = raw.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise ManifestError(f"{where}.artifactType must be a string")
    platform = raw.get("platform")
    if platform is not None and not isinstance(platform, dict):
        raise ManifestError(f"{where}.platform must be a JSON object")
    return Descriptor(media_type, digest, size, artifact_type, annotations, tuple(urls), platform)


def _descriptor_list(raw: Any, where: str) -> tuple[Descriptor, ...]:
    if not isinstance(raw, list):
        raise ManifestError(f"{where} must be a JSON array")
    return tuple(_descriptor(item, f"{where}[{i}]") for i, item in enumerate(raw))


def _decide_media_type(content_type: str, doc: dict[str, Any]) -> str:
    body_type = doc.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise ManifestError("mediaType must be a string")
    if content_type in mt.SCHEMA1_TYPES - {"application/json"} or doc.get("schemaVersion") == 1:
        raise ManifestError(
            "Docker schema1 manifests are not supported; push a Docker schema2 or OCI manifest instead"
        )
    if content_type in mt.MANIFEST_TYPES:
        if body_type is not None and body_type != content_type:
            raise ManifestError(
                f"manifest mediaType {body_type!r} does not match the Content-Type {content_type!r}"
            )
        return content_type
    if content_type not in _GENERIC_TYPES:
        raise ManifestError(
            f"unsupported manifest media type {content_type!r}; "
            f"expected one of {', '.join(sorted(mt.MANIFEST_TYPES))}"
        )
    if body_type in mt.MANIFEST_TYPES:
        return body_type
    if body_type is not None:
        raise ManifestError(f"unsupported manifest media type {body_type!r}")
    if "manifests" in doc:
        return mt.OCI_INDEX
    if "config" in doc or "layers" in doc:
        return mt.OCI_MANIFEST
    raise ManifestError("cannot tell the manifest type: send a Content-Type or a mediaType field")


def parse_manifest(body: bytes, content_type: str | None) -> Manifest:
    """Parse and validate manifest bytes; raise :class:`ManifestError` with a reason."""
    try:
        doc = load_strict(body, "manifest")
    except DocumentError as exc:
        raise ManifestError(str(exc)) from None
    if not isinstance(doc, dict):
        raise ManifestError("manifest must be a JSON object")
    media_type = _decide_media_type(media_type_of(content_type), doc)
    if doc.get("schemaVersion") != 2:
        raise ManifestError("schemaVersion must be 2")
    subject = _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise ManifestError("artifactType must be a string")
    annotations = doc.get("annotations")
    if annotations is not None and not (
        isinstance(annotations, dict) and all(isinstance(v, str) for v in annotations.values())
    ):
        raise ManifestError("annotations must map strings to strings")
    if media_type in mt.INDEXES:
        if "config" in doc or "layers" in doc:
            raise ManifestError("an image index must not have config or layers")
        children = _descriptor_list(doc.get("manifests"), "manifests")
        return Manifest(media_type, None, (), children, subject, artifact_type, annotations)
    if "manifests" in doc:
        raise ManifestError("an image manifest must not have a manifests list")
    if "config" not in doc:
        raise ManifestError("an image manifest needs a config descriptor")
    config = _descriptor(doc["config"], "config")
    layers_raw = doc.get("layers")
    if layers_raw is None and media_type == mt.OCI_MANIFEST:
        layers_raw = []
    layers = _descriptor_list(layers_raw, "layers")
    return Manifest(media_type, config, layers, (), subject, artifact_type, annotations)
