"""The budget of the property and fuzz tests: small and repeatable in ``make test``, larger and
random under ``make fuzz`` (``DOCKYARD_FUZZ=fuzz``; ``DOCKYARD_FUZZ_SCALE`` multiplies further)."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings

FUZZ = os.environ.get("DOCKYARD_FUZZ", "") == "fuzz"
SCALE = int(os.environ.get("DOCKYARD_FUZZ_SCALE", "25")) if FUZZ else 1


def budget(examples: int) -> Any:
    """Hypothesis settings for ``examples`` examples in ``make test`` (times SCALE in ``make fuzz``).

    ``make test`` runs derandomized (the same examples every run, no example database), so a
    failure there is reproducible; ``make fuzz`` explores and keeps what it finds in
    ``.hypothesis/``."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        derandomize=not FUZZ,
        database=settings.default.database if FUZZ else None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.data_too_large,
        ],
        print_blob=True,
    )
