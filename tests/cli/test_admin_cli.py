"""The admin CLI against a running registry (HTTP) and directly on a storage root."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from tests.regclient import OCI_MANIFEST, det_bytes, digest_of, image_manifest, push_blob, push_manifest
from tests.servers.dockyard import DOCKYARD, LiveRegistry


def dockyard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKYARD, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> LiveRegistry:
    reg = LiveRegistry(
        tmp_path_factory.mktemp("cli"), config={"storage": {"maintenance": {"gc": {"enabled": False}}}}
    ).start()
    with httpx.Client(base_url=reg.url) as client:
        for repo, tags in (("team/app", ["v1", "v2"]), ("tools", ["1.0"])):
            for tag in tags:
                config = json.dumps(
                    {"os": "linux", "architecture": "arm64", "config": {"Labels": {"tag": tag}}}
                ).encode()
                layer = det_bytes(f"{repo}-{tag}", 3000)
                push_blob(client, repo, config)
                push_blob(client, repo, layer)
                push_manifest(client, repo, tag, image_manifest(OCI_MANIFEST, config, [layer]), OCI_MANIFEST)
        push_blob(client, "tools", b"an orphan nobody references")
    yield reg
    reg.stop()


def test_ls_tags_inspect_du(registry: LiveRegistry) -> None:
    url = ["--registry", registry.url]
    r = dockyard("ls", *url)
    assert r.returncode == 0 and r.stdout.split() == ["team/app", "tools"]
    r = dockyard("tags", "team/app", *url, "--json")
    data = json.loads(r.stdout)
    assert [t["tag"] for t in data["tags"]] == ["v1", "v2"] and data["tags"][0]["platforms"] == [
        "linux/arm64"
    ]
    r = dockyard("tags", "team/app", *url)
    assert "linux/arm64" in r.stdout and data["tags"][0]["digest"][7:19] in r.stdout
    assert data["tags"][0]["digest"] not in r.stdout  # short digests in tables
    assert data["tags"][0]["digest"] in dockyard("tags", "team/app", *url, "--full-digest").stdout.replace(
        "\n", ""
    )
    r = dockyard("inspect", "team/app:v2", *url, "--json")
    info = json.loads(r.stdout)
    assert info["labels"] == {"tag": "v2"} and info["tags"] == ["v2"]
    assert "label tag=v2" in dockyard("inspect", "team/app:v2", *url).stdout
    usage = json.loads(dockyard("du", *url, "--json").stdout)
    assert {u["repository"] for u in usage["repositories"]} == {"team/app", "tools"}
    # The same answers straight from the storage root.
    assert dockyard("ls", "--root", str(registry.root)).stdout.split() == ["team/app", "tools"]
    assert json.loads(dockyard("du", "--root", str(registry.root), "--json").stdout) == usage


def test_errors_and_exit_codes(registry: LiveRegistry) -> None:
    url = ["--registry", registry.url]
    r = dockyard("tags", "nothing/here", *url)
    assert r.returncode == 4 and "not known" in r.stderr
    r = dockyard("inspect", "team/app:nope", *url)
    assert r.returncode == 4
    r = dockyard("ls", "--registry", "http://127.0.0.1:9")
    assert r.returncode == 1 and "cannot reach" in r.stderr
    r = dockyard("prune", "--match", "(", *url)
    assert r.returncode != 0 and "regular expression" in (r.stderr + r.stdout)
    r = dockyard("prune", "--older-than", "soon", *url)
    assert r.returncode != 0 and "duration" in (r.stderr + r.stdout)
    r = dockyard("prune", "tools", "--match", ".", *url)
    assert r.returncode == 5 and "would delete every tag" in r.stdout


def test_gc_prune_and_rm(registry: LiveRegistry) -> None:
    url = ["--registry", registry.url]
    dry = json.loads(dockyard("gc", "--dry-run", *url, "--json").stdout)
    assert dry["dry_run"] is True
    r = dockyard("prune", "team/app", "--keep", "1", "--dry-run", *url, "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 0 and len(report["deleted"]) == 1 and report["dry_run"]
    r = dockyard("prune", "team/app", "--keep", "1", *url)
    assert r.returncode == 0 and "beyond the 1 most recently pushed" in r.stdout
    assert len(json.loads(dockyard("tags", "team/app", *url, "--json").stdout)["tags"]) == 1
    r = dockyard("rm", "tools:1.0", *url)
    assert r.returncode == 0
    assert dockyard("rm", "tools:1.0", *url).returncode == 4
    r = dockyard("rm", "tools", *url)
    assert r.returncode == 0 and dockyard("ls", *url).stdout.split() == ["team/app"]
    manifest_digest = json.loads(dockyard("tags", "team/app", *url, "--json").stdout)["tags"][0]["digest"]
    assert dockyard("rm", f"team/app@{manifest_digest}", *url).returncode == 0
    assert json.loads(dockyard("tags", "team/app", *url, "--json").stdout)["tags"] == []
    # Straight on the storage root, beside the running server (the same locks apply).
    report = json.loads(dockyard("gc", "--root", str(registry.root), "--delete-untagged", "--json").stdout)
    assert report["dry_run"] is False and report["blobs_total"] > 0
    # The untagged v1 revision and the orphan were pushed moments ago: the grace period keeps them.
    assert report["manifests_deleted"] == [] and report["repositories_removed"] == []
    orphan = digest_of(b"an orphan nobody references")
    assert orphan not in {b["digest"] for b in report["blobs_deleted"]}
