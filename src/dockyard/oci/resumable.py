"""Running digests whose state can be saved with an upload session and restored anywhere.

A chunked upload's PATCHes and its PUT may each land on another process or replica. To give the
PUT a digest without reading the whole upload back, the hash of the bytes so far travels with
the session record. ``hashlib`` cannot export a running state; OpenSSL's low-level ``SHA256_CTX``
and ``SHA512_CTX`` can, being plain structs the caller owns. They are reached through ctypes on
libcrypto: ``SHA256_Init/Update/Final`` and ``SHA512_*`` are deprecated in OpenSSL 3 but
exported, and run the same block functions (SHA-NI included) as ``hashlib``.

A saved state is ``MAGIC | algorithm | context size | length | context | check``. It restores only
if every part agrees with this process: the tag and sizes, the byte count the caller expects
(the session's offset), the bit counter and block fill inside the context (so a libcrypto with
another layout is caught), and a checksum over the rest (a corrupt record). A state that does not
restore is ``None``, and the caller reads the stored data back instead: slower, never wrong.

Without libcrypto (or without the deprecated functions) :func:`new` hands out ``hashlib``
objects and :func:`save` returns ``None``: uploads still work, digests are then re-read when a
session moves between processes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import hashlib
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dockyard.oci.digest import DigestError, Hasher

MAGIC = b"DYH1"
_HEAD = struct.Struct(">4sBHQ")  # magic, algorithm id, context size, bytes hashed
_CHECK = 16  # bytes of blake2b over head + context


@dataclass(frozen=True, slots=True)
class _Algorithm:
    """One OpenSSL SHA-2 context layout (``include/openssl/sha.h``, unchanged since 0.9.8)."""

    name: str
    ident: int
    ctx_size: int
    digest_size: int
    block: int
    counter: Callable[[bytes], int]  # bits hashed, from the context's Nl/Nh
    fill: Callable[[bytes], tuple[int, int]]  # (num, md_len)
    prefix: str  # "SHA256" -> SHA256_Init ...


def _sha256_bits(ctx: bytes) -> int:
    low, high = struct.unpack_from("=II", ctx, 32)  # after h[8] of 32-bit words
    return int(high) << 32 | int(low)


def _sha512_bits(ctx: bytes) -> int:
    low, high = struct.unpack_from("=QQ", ctx, 64)  # after h[8] of 64-bit words
    return int(high) << 64 | int(low)


_ALGORITHMS = {
    "sha256": _Algorithm(
        "sha256", 1, 112, 32, 64, _sha256_bits, lambda c: struct.unpack_from("=II", c, 104), "SHA256"
    ),
    "sha512": _Algorithm(
        "sha512", 2, 216, 64, 128, _sha512_bits, lambda c: struct.unpack_from("=II", c, 208), "SHA512"
    ),
}
_BY_IDENT = {a.ident: a for a in _ALGORITHMS.values()}


def _library_paths() -> Iterator[str]:
    """Where to look for the functions, lazily: first ``hashlib``'s own OpenSSL module, whose
    handle finds them in the very libcrypto it is linked to (no search, and the context layout
    ``hashlib`` itself uses); only if that fails, the library search path.
    ``ctypes.util.find_library`` runs ``ldconfig`` in a subprocess: 2-5 ms, on the event loop at
    a worker's first PATCH, and a fork of a process that has threads."""
    with contextlib.suppress(ImportError):
        import _hashlib

        yield _hashlib.__file__
    found = ctypes.util.find_library("crypto")
    if found is not None:
        yield found


@functools.cache
def _libcrypto() -> Any | None:
    """libcrypto with the SHA-2 context functions typed, or None where it has none."""
    for path in _library_paths():
        lib = _typed(path)
        if lib is not None:
            return lib
    return None


def _typed(path: str) -> Any | None:
    try:
        lib = ctypes.CDLL(path)
        for algorithm in _ALGORITHMS.values():
            init = getattr(lib, f"{algorithm.prefix}_Init")
            update = getattr(lib, f"{algorithm.prefix}_Update")
            final = getattr(lib, f"{algorithm.prefix}_Final")
            init.argtypes = [ctypes.c_void_p]
            update.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
            final.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            for fn in (init, update, final):
                fn.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return lib


def available() -> bool:
    """Whether running states can be saved in this process."""
    return _libcrypto() is not None


class ResumableHasher:
    """A running SHA-2 digest in an OpenSSL context this object owns (ctypes releases the GIL
    for each call, so hashing in worker threads runs in parallel as ``hashlib``'s does)."""

    __slots__ = ("_ctx", "_fns", "algorithm", "length", "name")

    def __init__(
        self, algorithm: str, ctx: ctypes.Array[ctypes.c_char] | None = None, length: int = 0
    ) -> None:
        lib = _libcrypto()
        spec = _ALGORITHMS.get(algorithm)
        if lib is None or spec is None:
            raise DigestError(f"no resumable {algorithm} here")
        self.algorithm = spec
        self.name = algorithm  # as hashlib's objects name themselves
        self._fns = (
            getattr(lib, f"{spec.prefix}_Update"),
            getattr(lib, f"{spec.prefix}_Final"),
        )
        if ctx is None:
            ctx = ctypes.create_string_buffer(spec.ctx_size)
            if getattr(lib, f"{spec.prefix}_Init")(ctx) != 1:
                raise DigestError(f"{spec.prefix}_Init failed")
        self._ctx = ctx
        self.length = length

    def update(self, data: bytes | memoryview, /) -> None:
        if not data:
            return
        if isinstance(data, memoryview):
            whole = data.obj
            # A view of a whole bytes object (what the drivers pass) is the object itself;
            # ctypes cannot take a read-only view's address, so anything else is copied.
            data = whole if isinstance(whole, bytes) and data.nbytes == len(whole) else bytes(data)
        self._fns[0](self._ctx, data, len(data))
        self.length += len(data)

    def hexdigest(self) -> str:
        """The digest so far; the running state is left as it was (``Final`` runs on a copy)."""
        copy = ctypes.create_string_buffer(self._ctx.raw, len(self._ctx))
        out = ctypes.create_string_buffer(self.algorithm.digest_size)
        self._fns[1](out, copy)
        return out.raw.hex()

    def save(self) -> bytes:
        spec = self.algorithm
        body = _HEAD.pack(MAGIC, spec.ident, spec.ctx_size, self.length) + self._ctx.raw
        return body + hashlib.blake2b(body, digest_size=_CHECK).digest()


def new(algorithm: str = "sha256") -> Hasher:
    """A running digest whose state :func:`save` can export (a ``hashlib`` one without libcrypto)."""
    if algorithm not in _ALGORITHMS:
        raise DigestError(f"digest algorithm {algorithm!r} is not supported")
    if _libcrypto() is None:
        return hashlib.new(algorithm)
    return ResumableHasher(algorithm)


def save(hasher: Hasher) -> bytes | None:
    """The hasher's state for a session record, or None if it cannot be exported."""
    return hasher.save() if isinstance(hasher, ResumableHasher) else None


def restore(state: bytes | None, length: int) -> ResumableHasher | None:
    """The hasher ``state`` saved after exactly ``length`` bytes, or None if it does not restore
    here (absent, another format, corrupt, another length, or a libcrypto with another layout)."""
    if state is None or _libcrypto() is None or len(state) < _HEAD.size + _CHECK:
        return None
    body, check = state[:-_CHECK], state[-_CHECK:]
    if hashlib.blake2b(body, digest_size=_CHECK).digest() != check:
        return None
    magic, ident, ctx_size, hashed = _HEAD.unpack_from(body)
    spec = _BY_IDENT.get(ident)
    ctx = body[_HEAD.size :]
    if magic != MAGIC or spec is None or ctx_size != spec.ctx_size or len(ctx) != ctx_size:
        return None
    if hashed != length or spec.counter(ctx) != length * 8:
        return None
    if spec.fill(ctx) != (length % spec.block, spec.digest_size):
        return None
    return ResumableHasher(spec.name, ctypes.create_string_buffer(ctx, ctx_size), length)
