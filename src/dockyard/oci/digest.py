"""Content digests: parsing, validation and incremental hashing.

Grammar (image-spec descriptor.md): ``algorithm ":" encoded`` where algorithm is
``[a-z0-9]+([+._-][a-z0-9]+)*`` and encoded is ``[a-zA-Z0-9=_-]+``. The registry can verify
``sha256`` and ``sha512``; any other grammatical algorithm is a valid digest it cannot compute.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

_ALGORITHM_RE = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*")
_ENCODED_RE = re.compile(r"[a-zA-Z0-9=_-]+")
_HEX_LENGTH = {"sha256": 64, "sha512": 128}
SUPPORTED_ALGORITHMS = tuple(_HEX_LENGTH)
_HEX_RE = re.compile(r"[a-f0-9]+")
MAX_DIGEST_LENGTH = 256


class DigestError(ValueError):
    """The string is not a digest the registry accepts."""


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @classmethod
    def parse(cls, value: str) -> Digest:
        """Parse and validate a digest; raise :class:`DigestError` with a reason."""
        if len(value) > MAX_DIGEST_LENGTH:
            raise DigestError("digest is too long")
        algorithm, sep, encoded = value.partition(":")
        if not sep:
            raise DigestError(f"digest {value!r} has no algorithm prefix (expected e.g. sha256:<hex>)")
        if not _ALGORITHM_RE.fullmatch(algorithm) or not _ENCODED_RE.fullmatch(encoded):
            raise DigestError(f"digest {value!r} is not of the form algorithm:encoded")
        expected = _HEX_LENGTH.get(algorithm)
        if expected is None:
            raise DigestError(
                f"digest algorithm {algorithm!r} is not supported "
                f"(supported: {', '.join(SUPPORTED_ALGORITHMS)})"
            )
        if len(encoded) != expected or not _HEX_RE.fullmatch(encoded):
            raise DigestError(f"{algorithm} digest must be {expected} lowercase hexadecimal characters")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())


class Hasher(Protocol):
    """A running digest fed with exactly the bytes written (``hashlib``'s objects are ones, and
    so are ``oci.resumable``'s, whose state can be saved with an upload session)."""

    @property
    def name(self) -> str:
        """The algorithm (``sha256``...)."""

    def update(self, data: bytes | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


def new_hasher(algorithm: str = "sha256") -> Hasher:
    """A running digest of a supported algorithm; raise DigestError for another."""
    if algorithm not in _HEX_LENGTH:
        raise DigestError(f"digest algorithm {algorithm!r} is not supported")
    return hashlib.new(algorithm)
