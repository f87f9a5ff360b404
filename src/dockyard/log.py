"""Logging: named loggers, a text or JSON formatter, static messages with data in ``extra``.

Loggers: ``dockyard.access`` (one line per request), ``dockyard.api``, ``dockyard.storage``,
``dockyard.server``. Credentials and tokens are never passed to a logger.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dockyard.config import Log

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_LEVELS = {"error": logging.ERROR, "warn": logging.WARNING, "info": logging.INFO, "debug": logging.DEBUG}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JSONFormatter(logging.Formatter):
    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__()
        self.fields = fields

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **self.fields,
            **_extras(record),
        }
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = _extras(record)
        if extras:
            base += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return base


def configure(log: Log) -> None:
    configure_from(log.level, log.formatter, log.fields, access_disabled=log.accesslog.disabled)


def configure_from(level: str, formatter: str, fields: dict[str, str], *, access_disabled: bool) -> None:
    """The same, from plain values: the lean serving parent has no pydantic config model."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter(fields) if formatter == "json" else TextFormatter())
    root = logging.getLogger("dockyard")
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
    root.propagate = False
    logging.getLogger("dockyard.access").disabled = access_disabled
