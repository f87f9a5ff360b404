"""Fixtures of the live robustness tests: TLS material for a server."""

from __future__ import annotations

import pytest

from tests.live.livetools import TLSFiles, make_tls_files


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))
