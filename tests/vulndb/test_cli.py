"""``dockyard vulndb update|status|match`` in process, ``GET /admin/v1/vulndb`` over the ASGI app,
and the online update from a loopback HTTP server standing in for osv.dev's bucket."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dockyard.api.app import RegistryApp
from dockyard.app import create_services
from dockyard.cli.main import main
from dockyard.config import parse_config
from dockyard.vulndb.importer import import_path
from dockyard.vulndb.store import SqliteVulnStore
from tests.vulndb import osvdata

Capture = pytest.CaptureFixture[str]


def _config(tmp_path: Path, **vulndb: Any) -> Path:
    tree = {"storage": {"filesystem": {"rootdirectory": str(tmp_path / "root")}}, "vulndb": vulndb}
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(tree))
    return path


@pytest.fixture
def bucket(tmp_path: Path) -> Iterator[str]:
    """A loopback HTTP server with ``<Ecosystem>/all.zip`` for PyPI and Debian (not npm)."""
    root = tmp_path / "bucket"
    records = osvdata.advisories()
    for ecosystem in ("PyPI", "Debian"):
        (root / ecosystem).mkdir(parents=True)
        mine = [r for r in records if r["affected"][0]["package"]["ecosystem"].startswith(ecosystem)]
        osvdata.write_zip(root / ecosystem / "all.zip", mine)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_update_status_match_and_reimport(tmp_path: Path, capsys: Capture) -> None:
    config = str(_config(tmp_path))
    archive = osvdata.write_zip(tmp_path / "all.zip", osvdata.advisories())
    assert main(["vulndb", "update", "--from", str(archive), "--config", config]) == 0
    out = capsys.readouterr().out
    assert "31 records" in out and "31 added, 0 updated, 0 unchanged, 1 withdrawn, 0 invalid" in out
    assert (tmp_path / "root" / "dockyard-vulndb.sqlite").exists()  # beside the filesystem driver's data

    assert main(["vulndb", "update", "--from", str(archive), "--config", config, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["added"], again["unchanged"]) == (0, 31)

    assert main(["vulndb", "status", "--config", config, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["backend"], status["advisories"], status["withdrawn"]) == ("sqlite", 31, 1)
    assert status["ecosystems"]["Debian"] == 6 and len(status["imports"]) == 2
    assert main(["vulndb", "status", "--config", config]) == 0
    assert "31 advisories (1 withdrawn) in sqlite" in capsys.readouterr().out

    sbom = tmp_path / "sbom.cdx.json"
    sbom.write_text(json.dumps(osvdata.sbom()))
    assert main(["vulndb", "match", str(sbom), "--config", config, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {(f["advisory"], f["package"]) for f in result["findings"]} == osvdata.EXPECTED
    assert result["counts"]["critical"] == 3
    assert main(["vulndb", "match", str(sbom), "--config", config]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["critical", "GHSA-dj00-0000-0002"] or table[0].startswith("critical")
    assert table[-1] == "critical 3, high 1, medium 3, low 1, unknown 7"


def test_online_update_from_the_base_url(tmp_path: Path, bucket: str, capsys: Capture) -> None:
    config = str(_config(tmp_path, baseurl=bucket, ecosystems=["PyPI", "npm", "Debian"]))
    assert main(["vulndb", "update", "--config", config]) == 1  # npm's export is missing
    captured = capsys.readouterr()
    assert f"{bucket}/npm/all.zip: HTTP 404" in captured.err
    assert f"{bucket}/PyPI/all.zip: 5 records" in captured.out  # one of them GHSA-np00-0000-0003
    assert f"{bucket}/Debian/all.zip: 6 records" in captured.out
    assert main(["vulndb", "update", "--from", f"{bucket}/PyPI/all.zip", "--config", config]) == 0
    assert "0 added, 0 updated, 5 unchanged" in capsys.readouterr().out
    assert main(["vulndb", "update", "--from", "http://127.0.0.1:9/all.zip", "--config", config]) == 1
    assert "http://127.0.0.1:9/all.zip" in capsys.readouterr().err


def test_unusable_sources_and_places(tmp_path: Path, capsys: Capture) -> None:
    config = str(_config(tmp_path, path=str(tmp_path / "elsewhere" / "db.sqlite")))
    assert main(["vulndb", "update", "--from", str(tmp_path / "missing.zip"), "--config", config]) == 1
    assert "no such file or directory" in capsys.readouterr().err
    (tmp_path / "plain.zip").write_text("not a zip")
    assert main(["vulndb", "update", "--from", str(tmp_path / "plain.zip"), "--config", config]) == 1
    assert "not an OSV export" in capsys.readouterr().err
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    (unpacked / "GO-2023-0003.json").write_text(json.dumps(osvdata.advisories()[21]))
    assert main(["vulndb", "update", "--from", str(unpacked), "--config", config]) == 0
    assert "1 added" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text("{")
    assert main(["vulndb", "match", str(tmp_path / "bad.json"), "--config", config]) == 1
    assert "not a readable JSON SBOM" in capsys.readouterr().err

    (tmp_path / "a-folder").mkdir()
    folder = str(_config(tmp_path, path=str(tmp_path / "a-folder")))
    assert main(["vulndb", "status", "--config", folder]) == 1  # SQLite cannot open a folder
    assert "database error" in capsys.readouterr().err

    memory = tmp_path / "memory.yml"
    memory.write_text(yaml.safe_dump({"storage": {"inmemory": {}}}))
    assert main(["vulndb", "status", "--config", str(memory)]) == 2
    assert "set vulndb.path" in capsys.readouterr().err


def test_postgres_when_a_dsn_is_configured(
    tmp_path: Path, dsn: str, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_DATABASE_DSN", dsn)
    config = str(_config(tmp_path))
    archive = osvdata.write_zip(tmp_path / "all.zip", osvdata.advisories())
    assert main(["vulndb", "update", "--from", str(archive), "--config", config]) == 0
    capsys.readouterr()
    assert main(["vulndb", "status", "--config", config, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["backend"], status["advisories"]) == ("postgres", 31)
    assert not (tmp_path / "root" / "dockyard-vulndb.sqlite").exists()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_admin_api_shows_counts_and_imports(tmp_path: Path) -> None:
    root = tmp_path / "root"
    services = create_services(parse_config({"storage": {"filesystem": {"rootdirectory": str(root)}}}))
    transport = httpx.ASGITransport(app=RegistryApp(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as client:
        empty = (await client.get("/admin/v1/vulndb")).json()
        assert (empty["advisories"], empty["imports"], empty["revision"]) == (0, [], 0)
        assert not (root / "dockyard-vulndb.sqlite").exists()  # asking does not create the file
        archive = osvdata.write_zip(tmp_path / "all.zip", osvdata.advisories())
        importer = SqliteVulnStore(root / "dockyard-vulndb.sqlite")  # another process's, as the CLI's
        await import_path(importer, archive)
        await importer.close()
        body = (await client.get("/admin/v1/vulndb")).json()
        assert (body["backend"], body["advisories"], body["withdrawn"]) == ("sqlite", 31, 1)
        assert body["ecosystems"] == {
            "Alpine": 4, "Debian": 6, "Go": 3, "Maven": 4, "PyPI": 5, "RubyGems": 2,
            "Ubuntu": 2, "crates.io": 3, "npm": 2,
        }  # fmt: skip
        (last,) = body["imports"]
        assert (last["records"], last["added"], last["source"]) == (31, 31, str(archive))
        assert last["seconds"] >= 0 and last["startedAt"] > 0
    assert services.vulndb is not None
    await services.vulndb.close()

    memory = create_services(parse_config({"storage": {"inmemory": {}}}))
    transport = httpx.ASGITransport(app=RegistryApp(memory))
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as client:
        refused = await client.get("/admin/v1/vulndb")
        assert refused.status_code == 404
        assert "vulndb.path" in refused.json()["errors"][0]["message"]
