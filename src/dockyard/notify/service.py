"""What a worker holds of the notifications: the spool, the sender, and their status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dockyard.config import Notifications
from dockyard.notify.deliver import Deliverer, load_state, pending_count
from dockyard.notify.spool import Spool


@dataclass(slots=True)
class Notifier:
    spool: Spool
    deliverer: Deliverer
    settings: Notifications

    async def status(self) -> list[dict[str, Any]]:
        """Per endpoint, from the store (so any worker answers for the sender): events waiting,
        consecutive failures, last error and last success, delivered and dropped counts."""
        files = await self.spool.files()
        out = []
        for endpoint in self.settings.endpoints:
            state = await load_state(self.spool.driver, endpoint.name)
            out.append(
                {
                    "name": endpoint.name,
                    "url": endpoint.url,
                    "disabled": endpoint.disabled,
                    "pending": 0 if endpoint.disabled else pending_count(state, files),
                    "failing": state.failures >= endpoint.threshold,
                    "failures": state.failures,
                    "lastError": state.last_error,
                    "lastErrorAt": state.last_error_at,
                    "lastSuccessAt": state.last_success_at,
                    "delivered": state.delivered,
                    "dropped": state.dropped,
                }
            )
        return out
