"""Resumable SHA-2 states (OpenSSL contexts through ctypes): saved in one place, continued in
another, always the digest ``hashlib`` computes; and refused whenever they do not fit."""

from __future__ import annotations

import ctypes.util
import hashlib
import os
import struct

import pytest

from dockyard.oci import resumable
from dockyard.oci.digest import DigestError


def test_this_machine_can_save_states() -> None:
    assert resumable.available(), "libcrypto with SHA256_Init & co. is part of the platform"


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
@pytest.mark.parametrize("split", [0, 1, 63, 64, 65, 127, 128, 129, 4096, 70_001])
def test_a_saved_state_continues_to_the_same_digest(algorithm: str, split: int) -> None:
    data = os.urandom(split) + os.urandom(777)
    first = resumable.new(algorithm)
    first.update(data[:split])
    state = resumable.save(first)
    assert state is not None
    second = resumable.restore(state, split)
    assert second is not None and second.name == algorithm
    second.update(memoryview(data)[split:].tobytes())
    assert second.hexdigest() == hashlib.new(algorithm, data).hexdigest()
    assert second.hexdigest() == hashlib.new(algorithm, data).hexdigest()  # Final ran on a copy


def test_views_are_hashed_as_their_bytes() -> None:
    data = b"0123456789" * 100
    hasher = resumable.new()
    hasher.update(memoryview(data))  # a view of a whole object: passed as the object
    hasher.update(memoryview(data)[3:10])  # a slice: copied
    hasher.update(b"")
    assert hasher.hexdigest() == hashlib.sha256(data + data[3:10]).hexdigest()


def _resealed(state: bytes, change: dict[str, int]) -> bytes:
    """``state`` with head fields changed and the checksum made right again."""
    body = bytearray(state[: -resumable._CHECK])
    magic, ident, size, length = resumable._HEAD.unpack_from(body)
    fields = {"ident": ident, "size": size, "length": length} | change
    resumable._HEAD.pack_into(body, 0, magic, fields["ident"], fields["size"], fields["length"])
    return bytes(body) + resumable.hashlib.blake2b(bytes(body), digest_size=resumable._CHECK).digest()


def test_states_that_do_not_fit_are_refused() -> None:
    hasher = resumable.new()
    hasher.update(b"x" * 100)
    state = resumable.save(hasher)
    assert state is not None
    assert resumable.restore(state, 100) is not None
    refused = {
        "absent": resumable.restore(None, 100),
        "another offset": resumable.restore(state, 99),
        "truncated": resumable.restore(state[:20], 100),
        "a flipped bit": resumable.restore(state[:-1] + bytes([state[-1] ^ 1]), 100),
        "another format": resumable.restore(b"XXXX" + state[4:], 100),
        "unknown algorithm": resumable.restore(_resealed(state, {"ident": 9}), 100),
        "another context size": resumable.restore(_resealed(state, {"size": 120}), 100),
        "a length the context disagrees with": resumable.restore(_resealed(state, {"length": 164}), 164),
    }
    assert {why: result for why, result in refused.items() if result is not None} == {}


def test_a_context_whose_block_fill_disagrees_is_refused() -> None:
    hasher = resumable.new()
    hasher.update(b"y" * 70)
    state = bytearray(resumable.save(hasher) or b"")
    struct.pack_into("=I", state, resumable._HEAD.size + 104, 9)  # num: 6 bytes pending, not 9
    body = bytes(state[: -resumable._CHECK])
    resealed = body + resumable.hashlib.blake2b(body, digest_size=resumable._CHECK).digest()
    assert resumable.restore(resealed, 70) is None


def test_without_libcrypto_hashes_still_run_and_states_are_not_saved(monkeypatch: pytest.MonkeyPatch) -> None:
    resumable._libcrypto.cache_clear()
    try:
        with monkeypatch.context() as patch:
            patch.setattr(resumable, "_library_paths", lambda: iter(()))
            hasher = resumable.new("sha512")
            hasher.update(b"abc")
            assert hasher.hexdigest() == hashlib.sha512(b"abc").hexdigest()
            assert resumable.save(hasher) is None
            assert resumable.restore(b"anything" * 20, 3) is None
            assert not resumable.available()
            with pytest.raises(DigestError):
                resumable.ResumableHasher("sha256")
    finally:
        resumable._libcrypto.cache_clear()
    assert resumable.available()


def test_unsupported_algorithms_are_refused() -> None:
    with pytest.raises(DigestError):
        resumable.new("md5")


def test_libcrypto_is_found_through_hashlib_without_a_library_search(monkeypatch: pytest.MonkeyPatch) -> None:
    # find_library runs ldconfig in a subprocess (milliseconds on the event loop, a fork of a
    # worker with threads): never needed where hashlib has OpenSSL.
    def searched(name: str) -> str | None:
        raise AssertionError(f"a library search for {name}")

    resumable._libcrypto.cache_clear()
    try:
        with monkeypatch.context() as patch:
            patch.setattr(ctypes.util, "find_library", searched)
            assert resumable.available()
            hasher = resumable.new("sha256")
            hasher.update(b"abc")
            assert hasher.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    finally:
        resumable._libcrypto.cache_clear()


def test_a_library_without_the_functions_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    import _hashlib

    libc = ctypes.util.find_library("c")  # loads, and has no SHA-2 functions
    assert libc is not None
    missing = "/nonexistent/libcrypto.so"  # does not load
    resumable._libcrypto.cache_clear()
    try:
        with monkeypatch.context() as patch:
            patch.setattr(resumable, "_library_paths", lambda: iter([libc, missing]))
            assert not resumable.available()
            resumable._libcrypto.cache_clear()
            patch.setattr(resumable, "_library_paths", lambda: iter([libc, missing, _hashlib.__file__]))
            assert resumable.available()
    finally:
        resumable._libcrypto.cache_clear()
