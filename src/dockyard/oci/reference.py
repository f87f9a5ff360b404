"""Repository names, tags and manifest references (OCI distribution-spec grammar).

Everything here runs before storage is touched, so a name that could leave the storage root
(``..``, ``.``, absolute paths, NUL, encoded dots after URL decoding, overlong names) never reaches
the layout module.
"""

from __future__ import annotations

import re

from dockyard.oci.digest import Digest, DigestError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
MAX_NAME_LENGTH = 255
# Directory names the layout uses inside a repository; a path component may not be one of them.
_RESERVED = {"_layers", "_manifests", "_uploads", "_referrers"}


class NameError_(ValueError):
    """Invalid repository name."""


class TagError(ValueError):
    """Invalid tag."""


def validate_name(name: str) -> str:
    if not name:
        raise NameError_("repository name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise NameError_(f"repository name must be at most {MAX_NAME_LENGTH} characters")
    if not _NAME_RE.fullmatch(name):
        raise NameError_(
            f"invalid repository name {name[:80]!r}: use lowercase letters, digits and separators "
            "(., _, __, -) in /-separated components"
        )
    if any(part in _RESERVED for part in name.split("/")):  # pragma: no cover - grammar excludes '_x'
        raise NameError_(f"repository name {name!r} uses a reserved component")
    return name


def is_valid_name(name: str) -> bool:
    try:
        validate_name(name)
    except NameError_:
        return False
    return True


def validate_tag(tag: str) -> str:
    if not _TAG_RE.fullmatch(tag):
        raise TagError(
            f"invalid tag {tag[:140]!r}: at most 128 characters of letters, digits, '_', '.' and '-', "
            "not starting with '.' or '-'"
        )
    return tag


def is_valid_tag(tag: str) -> bool:
    return _TAG_RE.fullmatch(tag) is not None


def parse_reference(reference: str) -> str | Digest:
    """A manifest reference is a digest (contains ':') or a tag."""
    if ":" in reference:
        return Digest.parse(reference)
    return validate_tag(reference)


__all__ = [
    "Digest",
    "DigestError",
    "NameError_",
    "TagError",
    "is_valid_name",
    "is_valid_tag",
    "parse_reference",
    "validate_name",
    "validate_tag",
]
