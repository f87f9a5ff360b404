"""The token server's signing keys in the replicas' database (``database.dsn``).

The same keys as the key directory (:class:`~dockyard.auth.keys.KeyStore`), in the
``signing_keys`` table: every replica signs with the one active key and trusts every key still
retained, so a token any replica issued passes on all of them. Creating the first key and
rotating happen in a transaction holding one advisory lock, so replicas starting together make
one key, and two rotations at once still leave exactly one signer. A retired key keeps
validating for ``retain`` seconds (the longest lifetime of a token it signed) by the database's
clock, and the next rotation deletes it after that. The private keys are in the database, so its
access must be guarded as the key directory's is (they are PEM, unencrypted, as in the files).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization

from dockyard.auth.keys import Algorithm, SigningKey, generate, key_name, private_pem, read_key
from dockyard.coord.postgres import NOW, PostgresCoordinator, Transaction

TOPIC = "token-keys"
LOCK = "token-keys"


class PostgresKeys:
    def __init__(self, coordinator: PostgresCoordinator, algorithm: Algorithm, *, retain: float) -> None:
        self.coordinator = coordinator
        self.algorithm = algorithm
        self.retain = retain
        self._parsed: dict[str, SigningKey] = {}  # parsing PEM is the costly part: once per key

    async def _insert(self, tx: Transaction) -> None:
        key, cert = generate(self.algorithm)
        now = await self.coordinator.now()
        await tx.fetch_all(
            "INSERT INTO signing_keys (name, private_pem, certificate_pem, created_at)"
            f" VALUES (%(name)s, %(key)s, %(cert)s, {NOW})",
            name=key_name(now),
            key=private_pem(key),
            cert=cert.public_bytes(serialization.Encoding.PEM),
        )

    async def _ensure(self) -> None:
        async with self.coordinator.transaction(lock=LOCK) as tx:
            if await tx.fetch_one("SELECT 1 FROM signing_keys WHERE retired_at IS NULL") is None:
                await self._insert(tx)
        await self.coordinator.bump(TOPIC)

    async def _trusted(self) -> list[SigningKey]:
        rows = await self.coordinator.fetch_all(
            "SELECT name, private_pem, certificate_pem, retired_at FROM signing_keys"
            f" WHERE retired_at IS NULL OR retired_at > {NOW} - %(retain)s ORDER BY created_at, name",
            retain=self.retain,
        )
        keys = []
        for name, pem, cert, retired_at in rows:
            known = self._parsed.get(name)
            if known is None or known.retired_at != retired_at:
                known = self._parsed[name] = read_key(name, bytes(pem), bytes(cert), retired_at)
            keys.append(known)
        return keys

    async def load(self) -> tuple[SigningKey, list[SigningKey]]:
        keys = await self._trusted()
        active = [k for k in keys if k.retired_at is None]
        if not active:  # the first start of the first replica
            await self._ensure()
            keys = await self._trusted()
            active = [k for k in keys if k.retired_at is None]
        return active[-1], keys

    async def stamp(self) -> object:
        return await self.coordinator.generation(TOPIC)

    async def rotate(self) -> SigningKey:
        async with self.coordinator.transaction(lock=LOCK) as tx:
            await tx.fetch_all(f"UPDATE signing_keys SET retired_at = {NOW} WHERE retired_at IS NULL")
            await tx.fetch_all(
                f"DELETE FROM signing_keys WHERE retired_at <= {NOW} - %(retain)s", retain=self.retain
            )
            await self._insert(tx)
        await self.coordinator.bump(TOPIC)
        return (await self.load())[0]

    async def bundle(self) -> bytes:
        _, keys = await self.load()
        return b"".join(k.certificate.public_bytes(serialization.Encoding.PEM) for k in keys)
