"""Token signing keys: generated on first start, stored 0600, rotated, published as JWKS and as a
certificate bundle (what distribution's ``auth.token.rootcertbundle`` reads).

Layout of the key directory (0700)::

    key-<UTC time>-<rand>.key       PEM private key (0600)
    key-<UTC time>-<rand>.crt       self-signed certificate of that key (its x5c and bundle entry)
    key-<UTC time>-<rand>.retired   set by rotation: when the key stopped signing (Unix time)
    bundle.pem                      the certificates of every key still trusted

The newest key that is not retired signs. A retired key keeps validating for ``retain`` seconds
(the longest lifetime of a token it signed) and is then deleted.

The token server and the controller use keys through :class:`SigningKeys`: this directory
(:class:`FileKeys`, one machine) or, with ``database.dsn``, ``auth.pgkeys.PostgresKeys``, the
same keys and rotation in the database, so every replica signs with one key and trusts the
tokens any replica issued.
"""

from __future__ import annotations

import base64
import datetime
import fcntl
import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from dockyard.auth.fileutil import write_private

Algorithm = Literal["ES256", "RS256"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_bytes(n: int, size: int | None = None) -> bytes:
    return n.to_bytes(size or (n.bit_length() + 7) // 8, "big")


def public_jwk(key: Any) -> dict[str, str]:
    """The public JWK members (RFC 7517) of an EC or RSA public key."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        numbers = key.public_numbers()
        size = (key.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[key.curve.name]
        return {
            "kty": "EC",
            "crv": crv,
            "x": _b64url(_int_bytes(numbers.x, size)),
            "y": _b64url(_int_bytes(numbers.y, size)),
        }
    if isinstance(key, rsa.RSAPublicKey):
        rsa_numbers = key.public_numbers()
        return {
            "kty": "RSA",
            "n": _b64url(_int_bytes(rsa_numbers.n)),
            "e": _b64url(_int_bytes(rsa_numbers.e)),
        }
    raise TypeError(f"unsupported key type {type(key).__name__}")


def jwk_thumbprint(key: Any) -> str:
    """RFC 7638 thumbprint: SHA-256 of the required members in lexical order, base64url."""
    jwk = public_jwk(key)
    required = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def libtrust_kid(key: Any) -> str:
    """docker/libtrust key id: SHA-256 of the DER public key, 240 bits, base32, 4-char groups."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def algorithm_for(key: Any) -> Algorithm:
    return "ES256" if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) else "RS256"


@dataclass(frozen=True)
class SigningKey:
    name: str
    private_key: PrivateKey
    certificate: x509.Certificate
    retired_at: float | None = None

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    @property
    def algorithm(self) -> Algorithm:
        return algorithm_for(self.private_key)

    @property
    def thumbprint(self) -> str:
        return jwk_thumbprint(self.public_key)

    @property
    def libtrust_kid(self) -> str:
        return libtrust_kid(self.public_key)

    @property
    def x5c(self) -> list[str]:
        return [base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()]

    def jwk(self) -> dict[str, str]:
        return {**public_jwk(self.public_key), "kid": self.thumbprint, "use": "sig", "alg": self.algorithm}


def generate(algorithm: Algorithm) -> tuple[PrivateKey, x509.Certificate]:
    key: PrivateKey = (
        ec.generate_private_key(ec.SECP256R1())
        if algorithm == "ES256"
        else rsa.generate_private_key(public_exponent=65537, key_size=3072)
    )
    label = jwk_thumbprint(key.public_key())[:16]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"dockyard token signer {label}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return key, cert


class KeyStore:
    def __init__(self, directory: str | Path, *, retain: float) -> None:
        self.directory = Path(directory)
        self.retain = retain

    @property
    def bundle_path(self) -> Path:
        return self.directory / "bundle.pem"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("key-*.key"))

    def _read(self, name: str) -> SigningKey:
        retired = self.directory / f"{name}.retired"
        return read_key(
            name,
            (self.directory / f"{name}.key").read_bytes(),
            (self.directory / f"{name}.crt").read_bytes(),
            float(retired.read_text()) if retired.exists() else None,
        )

    def _create(self, algorithm: Algorithm) -> None:
        key, cert = generate(algorithm)
        name = key_name(time.time())
        write_private(self.directory / f"{name}.key", private_pem(key))
        write_private(self.directory / f"{name}.crt", cert.public_bytes(serialization.Encoding.PEM))

    def _write_bundle(self) -> None:
        certs = b"".join(
            k.certificate.public_bytes(serialization.Encoding.PEM) for k in self._load_unlocked()
        )
        write_private(self.bundle_path, certs)
        os.chmod(self.bundle_path, 0o644)  # certificates are public

    def _load_unlocked(self, now: float | None = None) -> list[SigningKey]:
        now = time.time() if now is None else now
        keys = [self._read(n) for n in self._names()]
        return [k for k in keys if k.retired_at is None or now - k.retired_at < self.retain]

    def ensure(self, algorithm: Algorithm) -> None:
        """Generate the first key if there is no active one (safe from several processes at once)."""
        with self._locked():
            if not any(k.retired_at is None for k in self._load_unlocked()):
                self._create(algorithm)
            self._write_bundle()

    def rotate(self, algorithm: Algorithm) -> None:
        with self._locked():
            now = time.time()
            for key in self._load_unlocked(now):
                if key.retired_at is None:
                    write_private(self.directory / f"{key.name}.retired", repr(now).encode())
            for name in self._names():  # forget keys past their retention
                key = self._read(name)
                if key.retired_at is not None and now - key.retired_at >= self.retain:
                    for ext in ("key", "crt", "retired"):
                        (self.directory / f"{name}.{ext}").unlink(missing_ok=True)
            self._create(algorithm)
            self._write_bundle()

    def load(self) -> tuple[SigningKey, list[SigningKey]]:
        """(the signer, every trusted key including the signer)."""
        keys = self._load_unlocked()
        active = [k for k in keys if k.retired_at is None]
        if not active:
            raise FileNotFoundError(f"no signing key in {self.directory} (start the server once)")
        return active[-1], keys

    def stamp(self) -> int:
        try:
            return self.directory.stat().st_mtime_ns
        except FileNotFoundError:
            return 0


def key_name(now: float) -> str:
    """A new key's name: sorts by creation time, unique by its random tail."""
    return f"key-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))}-{secrets.token_hex(3)}"


def private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def read_key(name: str, pem: bytes, cert_pem: bytes, retired_at: float | None) -> SigningKey:
    key = serialization.load_pem_private_key(pem, None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{name}: only EC and RSA keys are supported")
    return SigningKey(name, key, x509.load_pem_x509_certificate(cert_pem), retired_at)


class SigningKeys(Protocol):
    """The token server's keys as the server and the controller use them."""

    async def load(self) -> tuple[SigningKey, list[SigningKey]]:
        """(the signer, every trusted key including the signer)."""

    async def stamp(self) -> object:
        """A value that changes whenever the keys do (the controller re-reads them then)."""

    async def rotate(self) -> SigningKey:
        """Retire the signer (it keeps validating for the retention), start a new one; return it."""

    async def bundle(self) -> bytes:
        """The certificates of every trusted key, PEM (distribution's ``rootcertbundle``)."""


class FileKeys:
    """:class:`KeyStore`'s directory as :class:`SigningKeys` (the default, one machine)."""

    def __init__(self, store: KeyStore, algorithm: Algorithm) -> None:
        self.store = store
        self.algorithm = algorithm

    async def load(self) -> tuple[SigningKey, list[SigningKey]]:
        return self.store.load()

    async def stamp(self) -> object:
        return self.store.stamp()

    async def rotate(self) -> SigningKey:
        self.store.rotate(self.algorithm)
        return self.store.load()[0]

    async def bundle(self) -> bytes:
        return self.store.bundle_path.read_bytes()
