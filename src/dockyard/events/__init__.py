"""After-commit events of the registry model: what changed or was read, told to subscribers.

The registry model (``storage.registry.Registry``) emits one event after each change it has
committed to storage, and after each manifest a client fetched, to the sink ``create_services``
wires in, and so do the authenticator (logins), the collector (a finished collection), retention
(what a run deleted), the quotas (a warning threshold crossed), the scanner (a scan finished) and
``dockyard token`` (robot accounts made and revoked).
Subscribers (pull times, metrics, webhooks) react without the handlers or the stores knowing
them; ``events.request`` says which request an event happened in.
"""

from dockyard.events.sink import EventSink, Fanout, NullSink
from dockyard.events.types import (
    BlobPushed,
    CollectionFinished,
    Event,
    LoginFailed,
    LoginSucceeded,
    ManifestDeleted,
    ManifestPulled,
    ManifestPushed,
    QuotaWarning,
    RepositoryDeleted,
    RetentionApplied,
    RobotCreated,
    RobotRevoked,
    ScanFinished,
    TagDeleted,
    TagResolved,
)

__all__ = [
    "BlobPushed",
    "CollectionFinished",
    "Event",
    "EventSink",
    "Fanout",
    "LoginFailed",
    "LoginSucceeded",
    "ManifestDeleted",
    "ManifestPulled",
    "ManifestPushed",
    "NullSink",
    "QuotaWarning",
    "RepositoryDeleted",
    "RetentionApplied",
    "RobotCreated",
    "RobotRevoked",
    "ScanFinished",
    "TagDeleted",
    "TagResolved",
]
