"""After-commit events of the registry model: what changed or was read, told to subscribers.

The registry model (``storage.registry.Registry``) emits one event after each change it has
committed to storage, and after each manifest a client fetched, to the sink ``create_services``
wires in. Subscribers (pull times today; webhooks, metrics and cache invalidation later) react
without the handlers or the stores knowing them.
"""

from dockyard.events.sink import EventSink, Fanout, NullSink
from dockyard.events.types import (
    BlobPushed,
    Event,
    ManifestDeleted,
    ManifestPulled,
    ManifestPushed,
    TagDeleted,
    TagResolved,
)

__all__ = [
    "BlobPushed",
    "Event",
    "EventSink",
    "Fanout",
    "ManifestDeleted",
    "ManifestPulled",
    "ManifestPushed",
    "NullSink",
    "TagDeleted",
    "TagResolved",
]
