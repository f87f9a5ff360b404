"""Retention policies: which tags go, and why.

A policy applies to the repositories its glob matches (the first matching policy wins). Within
it, rules combine: a tag is deleted when it is a candidate (matches ``match``, default every tag;
never one matching ``keepmatch``), is not among the ``keep`` most recently pushed candidates, and
was pushed longer ago than ``olderthan``; rules left out do not restrict. ``untagged`` also
deletes manifests no tag reaches. A policy that would delete every tag of a repository is
refused for that repository unless forced. Each tag deleted is told as any deletion is
(``TagDeleted``); then one ``RetentionApplied`` per repository says what the run deleted there
and by which rule (webhooks' ``retention`` action, the audit log's ``retention`` record).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from dockyard.config import RetentionPolicy
from dockyard.events import RetentionApplied
from dockyard.globs import glob_match
from dockyard.storage import paths
from dockyard.storage.gc import GCOptions, prune_untagged
from dockyard.storage.registry import Registry


@dataclass(frozen=True, slots=True)
class Policy:
    repositories: str = "**"
    keep: int | None = None
    keepmatch: str | None = None
    match: str | None = None
    olderthan: float | None = None  # seconds
    untagged: bool = False

    """A policy as ``apply`` uses it; built only from a validated ``config.RetentionPolicy``
    (``policy_from_config``), which checks the regular expressions and ``keep`` once."""

    def describe(self) -> str:
        parts = [f"repositories {self.repositories}"]
        if self.match:
            parts.append(f"tags matching /{self.match}/")
        if self.keepmatch:
            parts.append(f"never /{self.keepmatch}/")
        if self.keep is not None:
            parts.append(f"keep {self.keep} newest")
        if self.olderthan is not None:
            parts.append(f"older than {_days(self.olderthan)}")
        if self.untagged:
            parts.append("untagged manifests")
        return ", ".join(parts)


def policy_from_config(p: RetentionPolicy) -> Policy:
    """The configuration's ``retention.policies[]`` entry as a policy (converted once, here)."""
    return Policy(p.repositories, p.keep, p.keepmatch, p.match, p.olderthan, p.untagged)


def parse_policies(raw: Iterable[object]) -> list[Policy]:
    """Policies given as JSON (the admin API's body, the CLI's ``--policy``), validated exactly as
    the configuration's are; pydantic's ``ValidationError`` (a ``ValueError``) names what is wrong."""
    return [policy_from_config(RetentionPolicy.model_validate(p)) for p in raw]


@dataclass(slots=True)
class Deletion:
    repository: str
    tag: str
    digest: str
    pushed: float
    rule: str


@dataclass(slots=True)
class RetentionReport:
    dry_run: bool
    deleted: list[Deletion] = field(default_factory=list)
    untagged_deleted: list[dict[str, str]] = field(default_factory=list)
    kept: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _days(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.0f}d"
    if seconds >= 3600:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds:.0f}s"


async def _pushed(registry: Registry, name: str, tag: str) -> float | None:
    try:
        return (await registry.driver.stat(paths.tag_current_link(name, tag))).mtime
    except Exception:
        return None


async def plan(registry: Registry, policy: Policy, name: str, now: float) -> tuple[list[Deletion], int]:
    """The tags ``policy`` would delete in ``name`` (with the rule for each) and how many stay."""
    tags = await registry.tags.names(name)
    dated: list[tuple[float, str]] = []
    for tag in tags:
        pushed = await _pushed(registry, name, tag)
        if pushed is not None:
            dated.append((pushed, tag))
    match = re.compile(policy.match) if policy.match else None
    keepmatch = re.compile(policy.keepmatch) if policy.keepmatch else None
    candidates = [
        (pushed, tag)
        for pushed, tag in dated
        if (match is None or match.search(tag)) and not (keepmatch and keepmatch.search(tag))
    ]
    if policy.keep is None and policy.olderthan is None and match is None:
        return [], len(dated)  # no tag rule: the policy only prunes untagged manifests
    candidates.sort(reverse=True)  # newest first
    deletions = []
    for rank, (pushed, tag) in enumerate(candidates):
        reasons = []
        if policy.keep is not None:
            if rank < policy.keep:
                continue
            reasons.append(f"beyond the {policy.keep} most recently pushed")
        if policy.olderthan is not None:
            if now - pushed <= policy.olderthan:
                continue
            reasons.append(f"pushed {_days(now - pushed)} ago (older than {_days(policy.olderthan)})")
        if match is not None:
            reasons.append(f"matches /{policy.match}/")
        digest = await registry.tags.resolve(name, tag)
        deletions.append(Deletion(name, tag, str(digest), pushed, "; ".join(reasons)))
    return deletions, len(dated) - len(deletions)


async def apply(
    registry: Registry,
    policies: list[Policy],
    *,
    dry_run: bool,
    force: bool = False,
    grace_seconds: float = 3600.0,
) -> RetentionReport:
    report = RetentionReport(dry_run)
    now = time.time()
    for name in await registry.catalog.names():
        policy = next((p for p in policies if glob_match(p.repositories, name)), None)
        if policy is None:
            continue
        deletions, kept = await plan(registry, policy, name, now)
        if deletions and kept == 0 and not force:
            report.refused.append(
                {
                    "repository": name,
                    "reason": f"policy ({policy.describe()}) would delete every tag; use force",
                }
            )
            continue
        report.kept += kept
        done: list[Deletion] = []
        for deletion in deletions:
            if not dry_run:
                current = await registry.tags.resolve(name, deletion.tag)
                if str(current) != deletion.digest:
                    continue  # re-pushed meanwhile: leave it
                await registry.delete_manifest(name, deletion.tag)
            done.append(deletion)
        report.deleted += done
        untagged: list[dict[str, str]] = []
        if policy.untagged:
            options = GCOptions(dry_run=dry_run, delete_untagged=True, grace_seconds=grace_seconds)
            untagged = await prune_untagged(registry, name, options)
            report.untagged_deleted += untagged
        if not dry_run and (done or untagged):
            async with registry.ordering.change(name):  # after the deletions' own events
                registry.events.emit(
                    RetentionApplied(
                        name,
                        tuple((d.tag, d.digest, d.rule) for d in done),
                        tuple(u["digest"] for u in untagged),
                    )
                )
    return report
