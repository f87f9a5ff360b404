"""Configuration: distribution-shaped YAML, REGISTRY_* overrides, clear errors."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.cli.main import main
from dockyard.config import ConfigError, load_config, split_addr
from dockyard.durations import parse_duration

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yml"))


def test_defaults() -> None:
    config = load_config(None, environ={})
    assert config.http.addr == "127.0.0.1:5000"
    assert config.storage.driver() == (
        "filesystem",
        {"rootdirectory": "./registry-data", "maxthreads": 100, "fsync": True, "inlinemetadata": "auto"},
    )


def test_distribution_style_file_and_env_overrides(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        "version: 0.1\nlog:\n  level: debug\n  fields:\n    service: registry\nstorage:\n  cache:\n    blobdescriptor: inmemory\n"
        "  filesystem:\n    rootdirectory: /var/lib/registry\n  delete:\n    enabled: false\nhttp:\n  addr: :5000\n"
        "  headers:\n    X-Content-Type-Options: [nosniff]\nhealth:\n  storagedriver:\n    enabled: true\n    interval: 10s\n    threshold: 3\n"
    )
    env = {
        "REGISTRY_HTTP_ADDR": "0.0.0.0:443",
        "REGISTRY_HTTP_TLS_CERTIFICATE": "/certs/domain.crt",
        "REGISTRY_HTTP_TLS_KEY": "/certs/domain.key",
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/data",
        "REGISTRY_STORAGE_DELETE_ENABLED": "true",
        "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE": "72h",
        "REGISTRY_AUTH_FILE": "/run/containers/auth.json",  # podman's variable, not ours
    }
    config = load_config(path, environ=env)
    assert config.http.addr == "0.0.0.0:443"
    assert config.http.tls.certificate == "/certs/domain.crt" and config.http.tls.key == "/certs/domain.key"
    assert config.storage.filesystem is not None and config.storage.filesystem.rootdirectory == "/data"
    assert config.storage.delete.enabled is True
    assert config.storage.maintenance.uploadpurging.age == 72 * 3600
    assert config.log.level == "debug" and config.http.headers == {"X-Content-Type-Options": ["nosniff"]}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("http:\n  adr: :5000\n", "http.adr: unknown key (allowed here: addr,"),
        ("storage:\n  gcs:\n    bucket: x\n", "storage.gcs: unknown key"),
        ("log:\n  level: loud\n", "log.level"),
        ("http:\n  addr: nowhere\n", "is not host:port"),
        ("storage:\n  maintenance:\n    uploadpurging:\n      age: forever\n", "is not a duration"),
        ("version: 0.2\n", "version"),
        ("storage:\n  inmemory: {}\n  filesystem:\n    rootdirectory: /x\n", "exactly one driver"),
        ("- a list\n", "top level must be a mapping"),
        ("http: [\n", "not valid YAML"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "c.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert fragment in str(info.value)


def test_bad_env_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"storage\.delete\.enabled"):
        load_config(None, environ={"REGISTRY_STORAGE_DELETE_ENABLED": "perhaps"})
    with pytest.raises(ConfigError, match=r"http\.adr: unknown key"):
        load_config(None, environ={"REGISTRY_HTTP_ADR": ":5000"})


def test_config_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yml"
    good.write_text("version: 0.1\nhttp:\n  addr: :5001\n")
    assert main(["config", "check", str(good)]) == 0
    assert "ok" in capsys.readouterr().out
    bad = tmp_path / "bad.yml"
    bad.write_text("http:\n  port: 5000\n")
    assert main(["config", "check", str(bad)]) == 2
    assert "http.port: unknown key" in capsys.readouterr().err


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid(example: Path) -> None:
    load_config(example, environ={})


def test_there_are_examples() -> None:
    assert EXAMPLES


@pytest.mark.parametrize(
    ("addr", "expected"),
    [(":5000", ("0.0.0.0", 5000)), ("127.0.0.1:80", ("127.0.0.1", 80)), ("[::1]:5000", ("::1", 5000))],
)
def test_split_addr(addr: str, expected: tuple[str, int]) -> None:
    assert split_addr(addr) == expected


@given(
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=59),
    st.integers(min_value=0, max_value=59),
)
def test_durations(h: int, m: int, s: int) -> None:
    assert parse_duration(f"{h}h{m}m{s}s") == h * 3600 + m * 60 + s
    assert parse_duration(f"{m}m") == m * 60
    assert parse_duration(s) == s


@given(st.text(max_size=20))
def test_duration_parser_never_crashes(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert parse_duration(text) >= 0


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_sections_accepted_but_ignored_are_named_at_startup(tmp_path: Path) -> None:
    # A handler of its own on the logger itself: caplog's session-wide handler saw each record
    # twice in one full run (it can end up on more than one logger of the chain), which said
    # nothing about warn_ignored.
    from dockyard.server import warn_ignored

    path = tmp_path / "config.yml"
    path.write_text(
        "version: 0.1\nstorage:\n  inmemory: {}\n  cache: {blobdescriptor: inmemory}\n"
        "  redirect: {disable: true}\nhealth:\n  storagedriver: {enabled: true}\n"
    )
    logger = logging.getLogger("dockyard.server")
    collect, level, disabled = _Collect(), logger.level, logger.disabled
    logger.addHandler(collect)
    logger.setLevel(logging.WARNING)
    logger.disabled = False
    try:
        warn_ignored(load_config(path, {}))
        named = [(r.getMessage(), getattr(r, "section", None)) for r in collect.records]
        assert named == [
            ("configuration section accepted but ignored", "storage.cache"),
            ("configuration section accepted but ignored", "health.storagedriver"),
        ]
        collect.records.clear()
        warn_ignored(load_config(None, {}))  # defaults are not "set"
        assert collect.records == []
    finally:
        logger.removeHandler(collect)
        logger.setLevel(level)
        logger.disabled = disabled
