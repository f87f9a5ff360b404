"""Pull policies (``scan.policies``): refuse a manifest GET/HEAD of an image with a finding at or
above a severity, or without a (verified) signature, with OCI ``DENIED`` naming the policy.

Where it sits: the manifest handler asks :meth:`PullPolicies.admission` for a check when a policy
covers the repository and the caller is not exempt, and the registry model runs that check on
the manifest it resolved (digest, media type, bytes) before it tells its subscribers of a pull,
so a refused pull is neither served nor counted. What is checked:

* Images only (single-platform image manifests): an index passes the severity rule and its
  children are checked as they are pulled (each platform has its own scan result: a vulnerable
  arm64 image does not refuse the amd64 one). Artifacts and referrers (signatures, SBOMs) are
  never refused: ``cosign verify`` must be able to read the signatures.
* Severity: the image's stored scan result (``scan.queue``), one lookup. Its findings at or
  above ``severity`` (``unknown`` ones when ``unknown: block``; only those with a fixed version
  under ``onlyfixable``) that no unexpired allowlist entry names refuse the pull; the message
  names the worst. No usable result (not scanned yet, the scan failed, no advisory database)
  refuses under ``unscanned: deny`` (the default).
* Signatures (``signed``): see ``scan.signatures``. An image inside a signed index counts as
  signed (``cosign sign`` on a multi-platform tag signs the index only; docker then pulls the
  child by digest): found through the repository's indexes, only for an unsigned image.
* Blobs are not refused: they are shared content-addressed by many images, and without the
  manifest a client does not know which blobs make the image (Harbor does the same).

Never refused: authenticated admins (``registry:admin:*``), a policy's ``exempt`` accounts, and
a caller who may push to the repository when it sends a HEAD (clients check what is stored
before they push) or is a signing tool (cosign and notation read the manifest they sign). The
scanner reads the store directly, not through the API.

What a check reads (a scan result, an image's signatures) is kept per worker for
``scan.policycache`` seconds of the injected monotonic clock, and dropped at once when this
worker stores or deletes a manifest or tag of the repository (a new signature, a referrer) or
finishes a scan of it (``ScanFinished``: a push's scan, a rescan after an advisory update). The
allowlist's expiry is judged on every pull by the injected wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from dockyard.auth.access import Access, AccessController, Identity
from dockyard.config.scan import PullPolicy
from dockyard.errors import PullRefused
from dockyard.events import Event, ManifestDeleted, ManifestPushed, ScanFinished, TagDeleted
from dockyard.globs import glob_match
from dockyard.oci import mediatypes as mt
from dockyard.oci.digest import Digest
from dockyard.oci.document import read_manifest
from dockyard.scan.queue import ScanQueue
from dockyard.scan.scanner import IMAGE_CONFIGS
from dockyard.scan.signatures import Signature, load_keys, signatures_of, verify_cosign
from dockyard.storage.model import Admit
from dockyard.storage.registry import Registry
from dockyard.vulndb.severity import RANK

ADMIN = Access("registry", "admin", "*")
SIGNERS = ("cosign/", "notation/", "notation-go/")  # User-Agent prefixes of signing tools
MAX_CACHED = 10_000
# Filesystem layers (tar, gzip, zstd, foreign, non-distributable): what makes a manifest an image.
LAYER_TYPES = ("application/vnd.oci.image.layer.", "application/vnd.docker.image.rootfs.")


@dataclass(frozen=True, slots=True)
class Found:
    """One finding as a policy needs it (from the stored scan result's JSON)."""

    advisory: str
    aliases: tuple[str, ...]
    package: str
    installed: str
    level: str
    fixed: str | None

    @classmethod
    def read(cls, raw: dict[str, Any]) -> Found:
        aliases = raw.get("aliases")
        return cls(
            advisory=str(raw.get("advisory", "")),
            aliases=tuple(str(a) for a in aliases) if isinstance(aliases, list) else (),
            package=str(raw.get("package", "")),
            installed=str(raw.get("installed", "")),
            level=str(raw.get("severity", "unknown")),
            fixed=str(raw["fixed"]) if raw.get("fixed") else None,
        )


@dataclass(frozen=True, slots=True)
class Scanned:
    """What an image's scan result says: its findings, or why there are none to judge by."""

    problem: str | None
    findings: tuple[Found, ...] = ()


def read_result(result: dict[str, Any] | None) -> Scanned:
    if result is None:
        return Scanned("it has not been scanned yet")
    if result.get("state") in ("skipped", "gone"):
        return Scanned(None)
    images = result.get("images")
    if not isinstance(images, list) or not images:
        return Scanned(f"its scan {result.get('state', 'did not finish')}")
    found: list[Found] = []
    for image in images:
        if not isinstance(image, dict) or image.get("state") == "skipped":
            continue
        if image.get("state") == "failed":
            return Scanned(f"its scan failed: {image.get('error', 'unknown error')}")
        findings = image.get("findings")
        if not isinstance(findings, list):
            why = image.get("matchError") or "the registry has no advisory database"
            return Scanned(f"its findings are unknown: {why}")
        found += [Found.read(f) for f in findings if isinstance(f, dict)]
    return Scanned(None, tuple(found))


def image_kind(media_type: str, body: bytes) -> str | None:
    """``image``, ``index``, or None for an artifact or a referrer (never refused). An image has
    an image config and filesystem layers: cosign 2's signature manifests (behind the
    ``.sig`` tags) carry an image config too, but their layers are signed payloads."""
    doc = read_manifest(body)
    if doc.subject is not None or doc.artifact_type:
        return None
    if media_type in mt.INDEXES:
        return "index"
    config = doc.config.media_type if doc.config is not None else ""
    if media_type not in mt.IMAGE_MANIFESTS or config not in IMAGE_CONFIGS:
        return None
    return "image" if all(layer.media_type.startswith(LAYER_TYPES) for layer in doc.layers) else None


class PolicyCache:
    """What checks read, per repository and key, for ``ttl`` seconds of ``clock``; an event sink
    that forgets a repository's entries when this worker changes its manifests or tags, or
    finishes a scan of it."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self.entries: dict[str, dict[tuple[str, ...], tuple[float, Any]]] = {}
        self.size = 0

    def get(self, repository: str, key: tuple[str, ...]) -> tuple[bool, Any]:
        entry = self.entries.get(repository, {}).get(key)
        if entry is None or entry[0] <= self.clock():
            return False, None
        return True, entry[1]

    def put(self, repository: str, key: tuple[str, ...], value: Any) -> None:
        if self.ttl <= 0:
            return
        if self.size >= MAX_CACHED:
            self.entries.clear()
            self.size = 0
        self.entries.setdefault(repository, {})[key] = (self.clock() + self.ttl, value)
        self.size += 1

    def emit(self, event: Event) -> None:
        if isinstance(event, ManifestPushed | ManifestDeleted | TagDeleted | ScanFinished):
            dropped = self.entries.pop(event.repository, None)
            self.size -= len(dropped or ())


class PullPolicies:
    def __init__(
        self,
        policies: list[PullPolicy],
        registry: Registry,
        results: ScanQueue,
        cache: PolicyCache,
        *,
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        self.policies = policies
        self.registry = registry
        self.results = results
        self.cache = cache
        self.wallclock = wallclock  # judges the allowlist's expiry dates
        self.keys = {p.name: load_keys(p.keys) for p in policies}
        self._covering: dict[str, list[PullPolicy]] = {}

    def covering(self, name: str) -> list[PullPolicy]:
        found = self._covering.get(name)
        if found is None:
            found = [p for p in self.policies if any(glob_match(g, name) for g in p.repositories)]
            if len(self._covering) >= MAX_CACHED:
                self._covering.clear()
            self._covering[name] = found
        return found

    def admission(
        self, name: str, identity: Identity, access: AccessController, *, head: bool, user_agent: str
    ) -> Admit | None:
        """The check a manifest GET/HEAD of ``name`` by ``identity`` must pass; None when no
        policy covers ``name`` or the caller is never refused."""
        policies = self.covering(name)
        if not policies:
            return None
        if identity.subject:
            if access.may(identity, ADMIN):
                return None
            policies = [p for p in policies if identity.subject not in p.exempt]
            if not policies:
                return None
        if (head or user_agent.lower().startswith(SIGNERS)) and access.may(
            identity, Access("repository", name, "push")
        ):
            return None
        return partial(self.check, name, policies)

    async def check(
        self, name: str, policies: list[PullPolicy], digest: Digest, media_type: str, body: bytes
    ) -> None:
        """Raise ``PullRefused`` (``DENIED``) when a policy refuses ``digest`` of ``name``."""
        kind = image_kind(media_type, body)
        if kind is None:
            return
        for policy in policies:
            if policy.severity is not None and kind == "image":
                await self._severity(policy, name, digest)
            if policy.signed:
                reason = await self._signature(policy, name, digest, kind)
                if reason is not None:
                    raise PullRefused(
                        f'pull of {name}@{digest} refused by policy "{policy.name}": {reason}',
                        {"policy": policy.name, "signature": reason},
                    )

    # -- severity ------------------------------------------------------------------------------

    async def scanned(self, name: str, digest: Digest) -> Scanned:
        hit, value = self.cache.get(name, ("scan", str(digest)))
        if hit:
            return value  # type: ignore[no-any-return]
        scanned = read_result(await self.results.result(name, str(digest)))
        self.cache.put(name, ("scan", str(digest)), scanned)
        return scanned

    def blocking(self, policy: PullPolicy, findings: tuple[Found, ...]) -> list[Found]:
        """The findings that refuse an image under ``policy`` now, worst first."""
        assert policy.severity is not None
        today = datetime.fromtimestamp(self.wallclock(), UTC).date()
        allowed = {entry.id for entry in policy.allowlist if entry.expires >= today}
        threshold = RANK[policy.severity]
        out = []
        for f in findings:
            if f.level == "unknown":
                if policy.unknown != "block":
                    continue
            elif RANK.get(f.level, 0) < threshold:
                continue
            if policy.onlyfixable and f.fixed is None:
                continue
            if f.advisory in allowed or allowed.intersection(f.aliases):
                continue
            out.append(f)
        return sorted(out, key=lambda f: -RANK.get(f.level, 0))

    async def _severity(self, policy: PullPolicy, name: str, digest: Digest) -> None:
        scanned = await self.scanned(name, digest)
        prefix = f'pull of {name}@{digest} refused by policy "{policy.name}"'
        if scanned.problem is not None:
            if policy.unscanned == "allow":
                return
            raise PullRefused(
                f"{prefix}: {scanned.problem} (unscanned: deny)",
                {"policy": policy.name, "scan": scanned.problem},
            )
        blocking = self.blocking(policy, scanned.findings)
        if not blocking:
            return
        worst = blocking[0]
        fixed = f", fixed in {worst.fixed}" if worst.fixed else ", no fix yet"
        more = f" and {len(blocking) - 1} more" if len(blocking) > 1 else ""
        raise PullRefused(
            f"{prefix}: {worst.advisory} ({worst.level}) in {worst.package} {worst.installed}"
            f"{fixed}{more}, at or above {policy.severity}",
            {
                "policy": policy.name,
                "advisory": worst.advisory,
                "aliases": list(worst.aliases),
                "package": worst.package,
                "installed": worst.installed,
                "severity": worst.level,
                "fixed": worst.fixed,
                "findings": len(blocking),
            },
        )

    # -- signatures ----------------------------------------------------------------------------

    async def _signature(self, policy: PullPolicy, name: str, digest: Digest, kind: str) -> str | None:
        """None when ``digest`` is signed as ``policy`` asks, else why not."""
        key = ("signature", policy.name, str(digest))
        hit, value = self.cache.get(name, key)
        if hit:
            return value  # type: ignore[no-any-return]
        reason = await self._signed(policy, name, digest)
        if reason is not None and kind == "image":
            for parent in await self.registry.referencing_indexes(name, digest):
                if await self._signed(policy, name, parent) is None:
                    reason = None
                    break
        self.cache.put(name, key, reason)
        return reason

    async def _signed(self, policy: PullPolicy, name: str, digest: Digest) -> str | None:
        found = await signatures_of(self.registry, name, digest)
        keys = self.keys[policy.name]
        if not keys:
            return None if found else "it is not signed (no cosign, Sigstore bundle or Notation signature)"
        cosign: list[Signature] = [s for s in found if s.cosign]
        if not cosign:
            return "it has no cosign signature to verify with the policy's keys"
        reasons = []
        for signature in cosign:
            reason = await verify_cosign(self.registry, name, digest, signature, keys)
            if reason is None:
                return None
            reasons.append(reason)
        return "; ".join(reasons)
