"""Turning path parameters into validated values, with the error each bad one gets."""

from __future__ import annotations

from dockyard.errors import ErrorCode, RegistryError
from dockyard.oci.digest import Digest, DigestError
from dockyard.oci.reference import NameError_, TagError, parse_reference, validate_name


def name_param(value: str, what: str = "name") -> str:
    """THE check of a repository name from a URL or query (path, Hub path, ``from=``), made
    before anything uses it: storage paths, access items, challenge headers."""
    try:
        return validate_name(value)
    except NameError_ as exc:
        message = str(exc) if what == "name" else f"{what}: {exc}"
        raise RegistryError(ErrorCode.NAME_INVALID, message, {"name": value[:300]}) from None


def digest_param(value: str) -> Digest:
    try:
        return Digest.parse(value)
    except DigestError as exc:
        raise RegistryError(ErrorCode.DIGEST_INVALID, str(exc), {"digest": value[:300]}) from None


def reference_param(value: str, *, for_write: bool) -> str | Digest:
    """A tag or digest. A malformed tag can name nothing, so reads get 404 (as the conformance
    suite expects) and writes get 400 TAG_INVALID."""
    try:
        return parse_reference(value)
    except DigestError as exc:
        raise RegistryError(ErrorCode.DIGEST_INVALID, str(exc), {"digest": value[:300]}) from None
    except TagError as exc:
        if for_write:
            raise RegistryError(ErrorCode.TAG_INVALID, str(exc), {"tag": value[:300]}) from None
        raise RegistryError(
            ErrorCode.MANIFEST_UNKNOWN, f"{exc}; no manifest can have it", value[:300]
        ) from None
