"""Storage drivers, found by the name of the configuration's ``storage`` section.

:data:`DRIVERS` maps each name to ``"module:Class"`` and imported lazily, so a driver's optional
dependencies load only when it is configured, and a missing one fails with how to install it
(fsspec's ``known_implementations``). Every driver class has ``from_params(params)`` taking its
configuration section as a dict, and is used through :func:`~.checked.checked`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from dockyard.storage.drivers.checked import CheckedDriver


class DriverEntry(NamedTuple):
    target: str  # "module:Class"
    install: str  # what to install when importing ``module`` fails ("" for built-in drivers)


DRIVERS: dict[str, DriverEntry] = {
    "filesystem": DriverEntry("dockyard.storage.drivers.filesystem:FilesystemDriver", ""),
    "inmemory": DriverEntry("dockyard.storage.drivers.memory:MemoryDriver", ""),
    "s3": DriverEntry("dockyard.storage.drivers.s3:S3Driver", "pip install 'dockyard[s3]'"),
}


def create_driver(name: str, params: dict[str, Any], *, redirect: bool = False) -> CheckedDriver:
    """Build the driver configured under ``storage.<name>``, wrapped; unknown names fail loudly.

    ``redirect``: whether blob downloads may be redirected to a URL the driver signs."""
    from dockyard.storage.drivers.checked import checked

    entry = DRIVERS.get(name)
    if entry is None:
        raise ValueError(f"unknown storage driver {name!r} (available: {', '.join(sorted(DRIVERS))})")
    module_name, _, class_name = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"; install it with: {entry.install}" if entry.install else ""
        raise ValueError(f"storage driver {name!r} cannot be loaded ({exc}){hint}") from exc
    return checked(getattr(module, class_name).from_params(params), redirect=redirect)
