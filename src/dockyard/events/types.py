"""The events: frozen values naming a repository and what happened in it.

Each is emitted only after the change is durable in storage (or the manifest was served), so a
subscriber never sees something a reader could not find. Digests are strings, as clients see
them, so that a subscriber outside the process (a webhook) needs nothing of dockyard's to read one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BlobPushed:
    """A blob was stored and linked into ``repository`` (an upload, or a mount when ``mounted``)."""

    repository: str
    digest: str
    size: int
    mounted: bool = False


@dataclass(frozen=True, slots=True)
class ManifestPushed:
    """A manifest was stored in ``repository``, and ``tag`` (if any) now names it."""

    repository: str
    digest: str
    media_type: str
    tag: str | None
    size: int = 0  # of the manifest's content
    # The manifest's subject (a referrer: a signature, an SBOM), so subscribers such as the
    # scanner can tell a referrer from an image without reading it.
    subject: str | None = None
    # The digest ``tag`` named before this push moved it (``Registry.track_moves``; None: the tag
    # is new, named this digest already, or moves are not tracked).
    previous: str | None = None


@dataclass(frozen=True, slots=True)
class ManifestDeleted:
    """A manifest revision left ``repository`` (its tags go with it, each a ``TagDeleted``)."""

    repository: str
    digest: str


@dataclass(frozen=True, slots=True)
class TagDeleted:
    repository: str
    tag: str


@dataclass(frozen=True, slots=True)
class ManifestPulled:
    """A client fetched a manifest's content (a ``GET``); ``tag`` is set when it asked by tag."""

    repository: str
    digest: str
    tag: str | None
    media_type: str = ""
    size: int = 0


@dataclass(frozen=True, slots=True)
class TagResolved:
    """A client asked which manifest ``tag`` names without fetching it (a ``HEAD`` by tag).

    Not a pull: tools that watch for new images do this often. But docker and containerd pull
    a tag exactly this way, a ``HEAD`` by tag and then a ``GET`` by the digest it answered, so
    pull times need it to credit the tag.
    """

    repository: str
    tag: str
    digest: str


@dataclass(frozen=True, slots=True)
class CollectionFinished:
    """A garbage collection ran to its end (``dry_run``: it only reported what it would free)."""

    blobs_deleted: int
    manifests_deleted: int
    bytes_freed: int
    seconds: float
    dry_run: bool


@dataclass(frozen=True, slots=True)
class ScanFinished:
    """An image's scan ended (``reason``: push, demand, or rescan after the advisory database
    changed): its ``state`` and its findings' ``counts`` by severity, summed over its platforms
    (empty when nothing was matched)."""

    repository: str
    digest: str
    reason: str
    state: str
    counts: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class LoginFailed:
    """Credentials were refused (``throttled``: refused unchecked, the caller tried too often).
    Carries the account name the caller gave, never what it gave as a password or token."""

    account: str
    client: str
    throttled: bool = False


@dataclass(frozen=True, slots=True)
class LoginSucceeded:
    account: str
    client: str


@dataclass(frozen=True, slots=True)
class RepositoryDeleted:
    """A repository was removed whole (the admin API, the CLI): its tags, manifests and links."""

    repository: str


@dataclass(frozen=True, slots=True)
class RetentionApplied:
    """A retention run deleted tags (or untagged manifests) of ``repository``: one event per
    repository and run, after its deletions (each tag's own ``TagDeleted`` went before)."""

    repository: str
    tags: tuple[tuple[str, str, str], ...]  # (tag, digest it named, the rule that deleted it)
    untagged: tuple[str, ...] = ()  # digests of the untagged manifests deleted


@dataclass(frozen=True, slots=True)
class QuotaWarning:
    """A push into ``repository`` took the usage of its quota (rule ``quota``, a glob) from below
    the rule's warning threshold to at or above it: once per crossing, not per push above it."""

    repository: str
    quota: str
    limit: int  # bytes
    warning: int  # bytes: the threshold crossed
    used: int  # bytes, after the push


@dataclass(frozen=True, slots=True)
class RobotCreated:
    """A robot account and its token were made (``dockyard token create``): never the token."""

    name: str
    repositories: tuple[str, ...]
    actions: tuple[str, ...]
    expires: float | None
    by: str = ""  # the operating-system account that ran the command (it has no registry identity)


@dataclass(frozen=True, slots=True)
class RobotRevoked:
    name: str
    by: str = ""


Event = (
    BlobPushed
    | ManifestPushed
    | ManifestDeleted
    | TagDeleted
    | ManifestPulled
    | TagResolved
    | CollectionFinished
    | ScanFinished
    | LoginFailed
    | LoginSucceeded
    | RepositoryDeleted
    | RetentionApplied
    | QuotaWarning
    | RobotCreated
    | RobotRevoked
)
