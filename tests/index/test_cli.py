"""``dockyard index check`` and ``dockyard index rebuild`` against a store another tool wrote."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
import yaml

from dockyard.cli.main import main

DIGEST = "sha256:" + "ab" * 32


def _tag(root: Path, name: str, tag: str) -> None:
    repo = root / "docker/registry/v2/repositories" / name / "_manifests"
    (repo / "revisions/sha256" / DIGEST[7:]).mkdir(parents=True, exist_ok=True)
    (repo / "revisions/sha256" / DIGEST[7:] / "link").write_text(DIGEST)
    (repo / "tags" / tag / "current").mkdir(parents=True)
    (repo / "tags" / tag / "current/link").write_text(DIGEST)


def test_check_and_rebuild(tmp_path: Path, dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    config = tmp_path / "config.yml"
    storage = {"filesystem": {"rootdirectory": str(root), "fsync": False}}
    config.write_text(yaml.safe_dump({"storage": storage, "database": {"dsn": dsn}}))
    args = ["--config", str(config)]
    assert main(["index", "check", *args]) == 0
    assert "index in step with the store" in capsys.readouterr().out

    for i in range(25):
        _tag(root, f"team/r{i:02d}", "latest")
    assert main(["index", "check", *args]) == 1
    out = capsys.readouterr().out
    assert "repository missing from the index: team/r00" in out
    assert "tag missing from the index: ... 5 more" in out

    assert main(["index", "rebuild", *args]) == 0
    assert "repositories added 25" in capsys.readouterr().out
    assert main(["index", "rebuild", "--json", *args]) == 0  # idempotent
    assert json.loads(capsys.readouterr().out)["tags_added"] == 0

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE index_tags, index_repositories")
    assert main(["index", "rebuild", "--json", *args]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["repositories"], report["repositories_added"], report["tags_added"]) == (25, 25, 25)
    assert main(["index", "check", "--json", *args]) == 0
    assert json.loads(capsys.readouterr().out)["add_tags"] == []


def test_the_commands_need_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"storage": {"filesystem": {"rootdirectory": str(tmp_path)}}}))
    assert main(["index", "rebuild", "--config", str(config)]) == 2
    assert "without a database there is no index" in capsys.readouterr().err


def test_a_database_error_is_reported(tmp_path: Path, dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A table of the index's name that is not the index: the command says so and exits 1."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE index_tags (x integer)")
    config = tmp_path / "config.yml"
    storage = {"filesystem": {"rootdirectory": str(tmp_path / "root")}}
    config.write_text(yaml.safe_dump({"storage": storage, "database": {"dsn": dsn}}))
    assert main(["index", "check", "--config", str(config)]) == 1
    assert "database error" in capsys.readouterr().err
