"""The one reader of stored JSON documents: manifests, indexes and image configs.

A registry holds content from many hands, and what one client pushed is read by every listing,
page, inspection and collection that touches its repository. So reading must be total: this
module never raises on content. Every limit is checked before ``json`` sees the bytes (size, then
nesting depth by a cheap bracket scan, since ``json.loads`` recurses once per level and a document
10,000 levels deep exhausts the interpreter's stack), integers too long to be sizes are read as
unknown (Python refuses to convert ints past 4,300 digits), every field is type-checked, and a
value of the wrong type is read as :data:`UNKNOWN` (or shown as text), never raised.

:func:`load_strict` is the other side of the same limits, for a manifest being pushed: it refuses
(with a reason a person can act on) what the tolerant reader would only survive: too deep, too
long a number, a key given twice (parsers disagree on which one counts), bytes that are not UTF-8.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest, DigestError

MAX_DOCUMENT = 4 * 1024 * 1024  # manifests (the PUT limit) and image configs read for listings
MAX_DEPTH = 64  # nesting a pushed manifest may have; real ones have 4 or 5 levels
# Stored content may predate MAX_DEPTH; anything up to this is still read (the stack allows it).
READ_DEPTH = 256
MAX_INT_DIGITS = 64  # longer integer literals are refused on push and read as unknown
UNKNOWN = "unknown"  # what a field of the wrong type reads as
_TEXT_LIMIT = 300

# A JSON string, or an unterminated one up to the end of the input: a match never fails once it
# has started, so the scan stays linear (a pattern requiring the closing quote is retried from
# every later quote of '"\\"\\"\\…' and goes quadratic: 32 KB of it took 12 s).
_STRING = re.compile(rb'"[^"\\]*(?:\\.?[^"\\]*)*(?:"|\Z)', re.DOTALL)
_BRACKETS = frozenset(b"[]{}")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)
_SLICE = 64 * 1024
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_DIGEST_TEXT = re.compile(rb"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")


class DocumentError(ValueError):
    """The bytes are not a JSON object within the limits; the message says why, for a person."""


def nesting_depth(body: bytes, stop: int | None = None) -> int:
    """How deep arrays and objects nest, without parsing: brackets outside strings are counted.

    Exact for the valid prefix of a document, which is all ``json`` recurses into before it
    stops at the first error. With ``stop``, the scan ends as soon as the depth passes it (a
    4 MiB run of ``[`` is then refused after one slice instead of a full scan)."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if brackets.count(b"[") + brackets.count(b"{") <= 1:
        return 1 if brackets[:1] in (b"[", b"{") else 0
    level = deepest = 0
    for start in range(0, len(brackets), _SLICE):
        steps = list(accumulate(map(_STEP.__getitem__, brackets[start : start + _SLICE]), initial=level))
        level, deepest = steps[-1], max(deepest, *steps)
        if stop is not None and deepest > stop:
            break
    return deepest


def _check_limits(body: bytes, max_depth: int, what: str) -> None:
    if len(body) > MAX_DOCUMENT:
        raise DocumentError(f"{what} is larger than {MAX_DOCUMENT // (1024 * 1024)} MiB")
    # Fewer opening brackets than the limit cannot nest past it: real documents stop here.
    opening = body.count(b"[") + body.count(b"{")
    if opening > max_depth and nesting_depth(body, max_depth) > max_depth:
        raise DocumentError(f"{what} nests arrays and objects more than {max_depth} levels deep")


def _tolerant_int(text: str) -> int | str:
    return int(text) if len(text.lstrip("-")) <= MAX_INT_DIGITS else UNKNOWN


def load(body: bytes | None, *, max_depth: int = READ_DEPTH) -> dict[str, Any] | None:
    """A stored document as a JSON object, or None when it is missing or not readable."""
    if body is None:
        return None
    try:
        _check_limits(body, max_depth, "document")
        doc = json.loads(body, parse_int=_tolerant_int)
    except (ValueError, RecursionError):  # RecursionError: only if the stack is already deep
        return None
    return doc if isinstance(doc, dict) else None


def _strict_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise DocumentError(f"a number has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _no_constants(name: str) -> Any:
    raise DocumentError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DocumentError(f"the key {key[:100]!r} appears twice in one object")
        out[key] = value
    return out


def load_strict(body: bytes, what: str = "manifest") -> Any:
    """Parse a document being pushed; raise :class:`DocumentError` with a reason a person can fix."""
    _check_limits(body, MAX_DEPTH, what)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"{what} is not UTF-8 text (byte {exc.start} is not)") from None
    try:
        return json.loads(
            text, parse_int=_strict_int, parse_constant=_no_constants, object_pairs_hook=_unique_keys
        )
    except DocumentError as exc:
        raise DocumentError(f"{what} is not accepted: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise DocumentError(f"{what} is not valid JSON: {exc}") from None


# -- typed views --------------------------------------------------------------------------------


def as_text(value: Any) -> str:
    """Any JSON value as short text, for showing an odd value instead of failing on it."""
    if isinstance(value, str):
        return value[:_TEXT_LIMIT]
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (ValueError, TypeError, RecursionError):
        return UNKNOWN
    return text[:_TEXT_LIMIT]


def _str(value: Any, default: str = "") -> str:
    """A string field: its value, ``default`` when absent, UNKNOWN when of another type."""
    if value is None:
        return default
    return value if isinstance(value, str) else UNKNOWN


def _opt_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else UNKNOWN


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _texts(value: Any) -> tuple[str, ...]:
    """A list of strings; other items shown as text; a lone string is a list of one."""
    if isinstance(value, list):
        return tuple(as_text(v) for v in value)
    if isinstance(value, str):
        return (value,)
    return ()


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {k: v if isinstance(v, str) else as_text(v) for k, v in value.items()}


@dataclass(frozen=True, slots=True)
class Platform:
    """A platform, from an index entry or an image config ("" when absent, UNKNOWN when odd)."""

    os: str = ""
    architecture: str = ""
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()
    features: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @property
    def known(self) -> bool:
        """Both os and architecture given (attestations say ``unknown``)."""
        return bool(self.os) and bool(self.architecture)

    @classmethod
    def read(cls, raw: Any) -> Platform:
        if not isinstance(raw, dict):
            return cls()
        return cls(
            os=_str(raw.get("os")),
            architecture=_str(raw.get("architecture")),
            variant=_opt_str(raw.get("variant")),
            os_version=_opt_str(raw.get("os.version")),
            os_features=_texts(raw.get("os.features")),
            features=_texts(raw.get("features")),
        )


@dataclass(frozen=True, slots=True)
class Ref:
    """A descriptor as read: ``digest`` is None when missing or not a digest."""

    media_type: str
    digest: Digest | None
    size: int | None
    urls: tuple[str, ...] = ()
    platform: Platform | None = None
    artifact_type: str | None = None

    @property
    def foreign(self) -> bool:
        """A Docker foreign layer with URLs: its bytes live elsewhere by design."""
        return self.media_type == mt.DOCKER_FOREIGN_LAYER and bool(self.urls)

    @classmethod
    def read(cls, raw: Any) -> Ref | None:
        if not isinstance(raw, dict):
            return None
        digest: Digest | None = None
        if isinstance(raw.get("digest"), str):
            try:
                digest = Digest.parse(raw["digest"])
            except DigestError:
                digest = None
        urls = raw.get("urls")
        platform = raw.get("platform")
        return cls(
            media_type=_str(raw.get("mediaType")),
            digest=digest,
            size=_int(raw.get("size")),
            urls=tuple(u for u in urls if isinstance(u, str)) if isinstance(urls, list) else (),
            platform=Platform.read(platform) if platform is not None else None,
            artifact_type=_opt_str(raw.get("artifactType")),
        )


def _refs(raw: Any) -> tuple[Ref, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(ref for ref in (Ref.read(item) for item in raw) if ref is not None)


@dataclass(frozen=True, slots=True)
class ManifestDoc:
    """A manifest or index as read. ``readable`` is False when the bytes are no JSON object within
    the limits; ``salvaged`` then holds every digest written in them (for a collection, which must
    keep too much rather than too little)."""

    readable: bool
    media_type: str | None = None
    artifact_type: str | None = None
    config: Ref | None = None
    layers: tuple[Ref, ...] = ()
    manifests: tuple[Ref, ...] = ()
    subject: Ref | None = None
    subject_raw: dict[str, Any] | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    salvaged: tuple[Digest, ...] = ()

    @property
    def blobs(self) -> tuple[Ref, ...]:
        """The config (when it is a descriptor) and the layers."""
        return ((self.config,) if self.config is not None else ()) + self.layers


def read_manifest(body: bytes | None) -> ManifestDoc:
    doc = load(body)
    if doc is None:
        found = {Digest.parse(m.decode()) for m in _DIGEST_TEXT.findall(body or b"")}
        return ManifestDoc(False, salvaged=tuple(sorted(found)))
    subject = doc.get("subject")
    return ManifestDoc(
        readable=True,
        media_type=_opt_str(doc.get("mediaType")),
        artifact_type=doc["artifactType"] if isinstance(doc.get("artifactType"), str) else None,
        config=Ref.read(doc.get("config")),
        layers=_refs(doc.get("layers")),
        manifests=_refs(doc.get("manifests")),
        subject=Ref.read(subject),
        subject_raw=subject if isinstance(subject, dict) else None,
        annotations=_string_map(doc.get("annotations")),
    )


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One ``history`` item; None for a key the config does not have."""

    created: str | None = None
    created_by: str | None = None
    empty_layer: bool | None = None
    comment: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The keys the config has, in the order image-spec lists them."""
        out = {
            "created": self.created,
            "created_by": self.created_by,
            "empty_layer": self.empty_layer,
            "comment": self.comment,
        }
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """An image config as read. ``found`` is False for a missing, unreadable or empty one."""

    found: bool = False
    platform: Platform = field(default_factory=Platform)
    created: str | None = None
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    history: tuple[HistoryEntry, ...] = ()


def _command(value: Any) -> tuple[str, ...] | None:
    return None if value is None else _texts(value) or (as_text(value),)


def _history(raw: Any) -> tuple[HistoryEntry, ...]:
    if not isinstance(raw, list):
        return ()
    out = []
    for item in raw:
        if isinstance(item, dict):
            keys = ("created", "created_by", "comment")
            text = {k: as_text(item[k]) for k in keys if item.get(k) is not None}
            empty = item.get("empty_layer")
            out.append(HistoryEntry(empty_layer=None if empty is None else empty is True, **text))
    return tuple(out)


def read_config(body: bytes | None) -> ImageConfig:
    doc = load(body)
    if not doc:
        return ImageConfig()
    settings = doc.get("config")
    settings = settings if isinstance(settings, dict) else {}
    env = settings.get("Env")
    return ImageConfig(
        found=True,
        platform=Platform.read(doc),
        created=_opt_str(doc.get("created")),
        entrypoint=_command(settings.get("Entrypoint")),
        cmd=_command(settings.get("Cmd")),
        env=_texts(env) if isinstance(env, list) else ((as_text(env),) if env else ()),
        labels=_string_map(settings.get("Labels")),
        history=_history(doc.get("history")),
    )
