"""``dockyard migrate`` between two filesystem roots: what it refuses, what it reports, and that a
blob whose bytes do not match its digest is neither copied nor linked to at the destination.
(The object store round trip, interrupted and resumed, is ``tests/s3/test_migrate.py``.)"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from dockyard.cli.main import main
from dockyard.cli.migrate import _progress, storage_of
from dockyard.config import ConfigError
from dockyard.oci.digest import Digest
from dockyard.storage import paths
from tests.regclient import OCI_MANIFEST, image_manifest

V2 = "docker/registry/v2"


def _file(root: Path, path: str, data: bytes) -> None:
    full = root / path.lstrip("/")
    full.parent.mkdir(parents=True, exist_ok=True)
    full.write_bytes(data)


def _store(root: Path) -> tuple[Digest, Digest, Digest]:
    """A repository with one tagged image, written in distribution's layout."""
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"layer bytes" * 100
    manifest = image_manifest(OCI_MANIFEST, config, [layer])
    digests = [Digest.of(d) for d in (config, layer, manifest)]
    for digest, data in zip(digests, (config, layer, manifest), strict=True):
        _file(root, paths.blob_data(digest), data)
    for digest in digests[:2]:
        _file(root, paths.layer_link("app", digest), paths.link_content(digest))
    m = digests[2]
    _file(root, paths.revision_link("app", m), paths.link_content(m))
    _file(root, paths.tag_current_link("app", "v1"), paths.link_content(m))
    _file(root, paths.tag_index_link("app", "v1", m), paths.link_content(m))
    _file(root, paths.upload_data("app", "0f0f0f0f-0000-0000-0000-000000000000"), b"an upload in progress")
    return digests[0], digests[1], digests[2]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(["migrate", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out else {}


def test_a_copy_then_a_resumed_copy_then_verify_existing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _store(src)
    code, report = _run(capsys, str(src), f"filesystem:{dst}")
    assert code == 0
    assert (report["blobs"], report["blobsCopied"], report["files"], report["tags"]) == (3, 3, 5, 1)
    for path in src.rglob("*"):
        if path.is_file() and "_uploads" not in path.parts:
            assert (dst / path.relative_to(src)).read_bytes() == path.read_bytes()
    assert not list(dst.rglob("_uploads")) and not (dst / V2 / "_dockyard" / "migrate").exists()
    code, report = _run(capsys, str(src), str(dst), "--verify-existing")
    assert code == 0 and (report["blobsPresent"], report["filesPresent"], report["blobsCopied"]) == (3, 5, 0)


def test_a_blob_that_does_not_match_its_digest_is_not_copied_nor_linked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _, layer, _ = _store(src)
    _file(src, paths.blob_data(layer), b"rotten bytes")
    code, report = _run(capsys, str(src), f"filesystem:{dst}")
    assert code == 1
    failed = report["failed"]
    assert isinstance(failed, list) and len(failed) == 2
    assert str(layer) in failed[0] and "hash to" in failed[0]
    assert "_layers" in failed[1]
    assert not (dst / paths.blob_data(layer).lstrip("/")).exists()
    assert not (dst / paths.layer_link("app", layer).lstrip("/")).exists()
    capsys.readouterr()
    assert main(["migrate", str(src), str(dst)]) == 1  # the summary for people names it too
    assert "not copied" in capsys.readouterr().out


def test_verify_existing_replaces_a_damaged_destination_blob(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _, layer, _ = _store(src)
    assert _run(capsys, str(src), f"filesystem:{dst}")[0] == 0
    good = (src / paths.blob_data(layer).lstrip("/")).read_bytes()
    (dst / paths.blob_data(layer).lstrip("/")).write_bytes(b"x" * len(good))
    assert _run(capsys, str(src), str(dst))[1]["blobsCopied"] == 0  # present, same size: trusted
    code, report = _run(capsys, str(src), str(dst), "--verify-existing")
    assert code == 0 and report["blobsCopied"] == 1
    assert (dst / paths.blob_data(layer).lstrip("/")).read_bytes() == good


def test_specs_and_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'c'}\n")
    name, params = storage_of(str(config))
    assert (name, params["rootdirectory"]) == ("filesystem", str(tmp_path / "c"))
    name, params = storage_of("s3://bucket/some/root?region=eu-west-1&secure=false")
    assert (name, params["bucket"], params["rootdirectory"], params["secure"]) == (
        "s3",
        "bucket",
        "/some/root",
        False,
    )
    for bad in ("s3://", "filesystem:", str(tmp_path / "nothing")):
        with pytest.raises(ConfigError):
            storage_of(bad)
    inmemory = tmp_path / "inmemory.yml"
    inmemory.write_text("version: 0.1\nstorage:\n  inmemory: {}\n")
    with pytest.raises(ConfigError, match="inmemory"):
        storage_of(str(inmemory))
    assert main(["migrate", str(tmp_path / "nothing"), f"filesystem:{tmp_path}"]) == 2
    assert "neither a configuration file" in capsys.readouterr().err
    assert main(["migrate", f"filesystem:{tmp_path}", str(tmp_path)]) == 2
    assert "the same storage" in capsys.readouterr().err
    assert main(["migrate", f"filesystem:{tmp_path}", f"filesystem:{tmp_path}/x", "--jobs", "0"]) == 2


def test_the_progress_bars_draw_bytes_and_counts() -> None:
    out = io.StringIO()
    update, stop = _progress(Console(file=out, force_terminal=True, width=100))
    update("blobs", 0, 3 << 20)
    update("blobs", 3 << 20, 3 << 20)
    update("links", 0, 8)
    update("tags", 8, 8)
    stop()
    text = out.getvalue()
    assert "blobs" in text and "3.1 MB" in text and "8/8" in text
