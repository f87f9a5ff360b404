"""The accelerated download path (``http.accel``) through the shipped nginx configuration.

Two ``dockyard serve`` over one storage root: one with ``http.accel`` behind nginx, one standalone.
Every blob answer through nginx must match the standalone one (status, the headers clients read,
bytes), a direct request to the internal location is refused, and skopeo pulls through nginx.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.clients.conftest import ContainersTools, make_image
from tests.clients.images import Image, read_oci_layout, write_oci_layout
from tests.servers.dockyard import LiveRegistry
from tests.servers.nginx import NginxFront

LOCATION = "/_dockyard_blobs/"
USER, PASSWORD = "alice", "accel-secret"
AUTH = (USER, PASSWORD)
# The headers a client reads from a blob answer; nginx's own (Server, Date, Connection) aside.
COMPARED = (
    "docker-content-digest",
    "etag",
    "content-type",
    "content-length",
    "content-range",
    "accept-ranges",
    "cache-control",
    "x-content-type-options",
    "docker-distribution-api-version",
    "www-authenticate",
)


class AuthedRegistry(LiveRegistry):
    ready_statuses = (200, 401)


@dataclass
class Pair:
    nginx: NginxFront
    accel: LiveRegistry
    standalone: LiveRegistry
    blob: bytes
    digest: str


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    work = tmp_path_factory.mktemp("accel")
    root = work / "data"
    htpasswd = work / "htpasswd"
    subprocess.run(
        ["htpasswd", "-cbB", "-C", "5", str(htpasswd), USER, PASSWORD], check=True, capture_output=True
    )
    auth = {"auth": {"htpasswd": {"realm": "dockyard-accel", "path": str(htpasswd)}}}
    standalone = AuthedRegistry(work / "standalone", root=root, workers=1, config=auth).start()
    accel_config = {**auth, "http": {"accel": {"kind": "nginx", "location": LOCATION}}}
    accel = AuthedRegistry(work / "accel", root=root, workers=1, config=accel_config)
    front = None
    try:
        accel.start()
        front = NginxFront(work / "nginx", accel.host, root).start()
        blob = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and 4 bytes
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        with httpx.Client(base_url=standalone.url, auth=AUTH, timeout=60) as client:
            r = client.post("/v2/accel/blob/blobs/uploads/", params={"digest": digest}, content=blob)
            assert r.status_code == 201, r.text
        yield Pair(front, accel, standalone, blob, digest)
    finally:
        if front is not None:
            front.stop()
        accel.stop()
        standalone.stop()
    for server in (accel, standalone):
        assert "Traceback" not in server.log(), server.log()


def _both(pair: Pair, method: str, path: str, **kw: object) -> tuple[httpx.Response, httpx.Response]:
    answers = []
    for url in (pair.nginx.url, pair.standalone.url):
        with httpx.Client(base_url=url, timeout=60) as client:
            answers.append(client.request(method, path, **kw))  # type: ignore[arg-type]
    return answers[0], answers[1]


def _same(through: httpx.Response, direct: httpx.Response) -> None:
    assert through.status_code == direct.status_code
    for name in COMPARED:
        assert through.headers.get(name) == direct.headers.get(name), name
    assert through.content == direct.content
    assert "x-accel-redirect" not in through.headers
    assert "last-modified" not in through.headers


def _blob(pair: Pair) -> str:
    return f"/v2/accel/blob/blobs/{pair.digest}"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Range": "bytes=0-99"},
        {"Range": "bytes=1048000-"},
        {"Range": "bytes=-10"},
        {"Range": "bytes=5-1"},  # invalid: ignored by both, whole blob
        {"Range": "bytes=0-1,5-9"},  # multi-range: ignored by both
        {"Range": "bytes=99999999-"},  # unsatisfiable: dockyard's 416
        {"If-None-Match": "placeholder"},
        {"Range": "bytes=0-9", "If-Range": "placeholder"},
    ],
    ids=["whole", "range", "open-range", "suffix", "invalid", "multi", "416", "304", "if-range"],
)
def test_get_matches_standalone(pair: Pair, headers: dict[str, str]) -> None:
    headers = {k: (f'"{pair.digest}"' if v == "placeholder" else v) for k, v in headers.items()}
    through, direct = _both(pair, "GET", _blob(pair), headers=headers, auth=AUTH)
    _same(through, direct)
    if not headers:
        assert through.status_code == 200 and through.content == pair.blob
    if headers.get("Range") == "bytes=0-99":
        assert through.status_code == 206 and through.content == pair.blob[:100]


def test_the_answer_is_nginx_sending_the_file(pair: Pair) -> None:
    """dockyard answers with the redirect, and nginx serves the bytes (not a proxied stream)."""
    with httpx.Client(base_url=pair.accel.url, auth=AUTH, timeout=60) as client:
        r = client.get(_blob(pair))
    assert r.status_code == 200 and r.content == b""
    target = r.headers["x-accel-redirect"]
    assert target.startswith(LOCATION) and target.endswith("/data")
    assert r.headers["docker-content-digest"] == pair.digest
    # HEAD stays in dockyard: a size from stat, nothing to send.
    with httpx.Client(base_url=pair.accel.url, auth=AUTH, timeout=60) as client:
        head = client.head(_blob(pair))
    assert head.status_code == 200 and "x-accel-redirect" not in head.headers


@pytest.mark.parametrize(
    ("method", "path", "auth"),
    [
        ("HEAD", "blob", True),
        ("GET", "unknown", True),
        ("HEAD", "unknown", True),
        ("GET", "blob", False),
        ("HEAD", "blob", False),
    ],
    ids=["head", "get-404", "head-404", "get-401", "head-401"],
)
def test_other_answers_match_standalone(pair: Pair, method: str, path: str, auth: bool) -> None:
    url = _blob(pair) if path == "blob" else "/v2/accel/blob/blobs/sha256:" + "0" * 64
    through, direct = _both(pair, method, url, auth=AUTH if auth else None)
    _same(through, direct)
    assert through.status_code == {"blob": 200, "unknown": 404}[path] if auth else through.status_code == 401


def test_internal_location_is_refused(pair: Pair) -> None:
    hexdigest = pair.digest.removeprefix("sha256:")
    path = f"{LOCATION}docker/registry/v2/blobs/sha256/{hexdigest[:2]}/{hexdigest}/data"
    with httpx.Client(base_url=pair.nginx.url, auth=AUTH, timeout=60) as client:
        for probe in (path, LOCATION, f"{LOCATION}docker/"):
            assert client.get(probe).status_code == 404, probe
    # The file is there: the refusal is nginx's, not a wrong path.
    assert (pair.accel.root / path.removeprefix(LOCATION)).read_bytes() == pair.blob


def test_skopeo_pulls_through_nginx(pair: Pair, tools: ContainersTools, tmp_path: Path) -> None:
    image: Image = make_image("accel skopeo")
    layout = write_oci_layout(tmp_path / "in", {"v1": image})
    creds = f"{USER}:{PASSWORD}"
    tools(
        "skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false", f"--dest-creds={creds}",
        f"oci:{layout}:v1", f"docker://{pair.standalone.host}/accel/image:v1",
    )  # fmt: skip
    tools(
        "skopeo", "copy", "--preserve-digests", "--src-tls-verify=false", f"--src-creds={creds}",
        f"docker://{pair.nginx.host}/accel/image:v1", f"oci:{tmp_path / 'out'}:v1",
    )  # fmt: skip
    tags, blobs = read_oci_layout(tmp_path / "out")  # digests verified as read
    assert tags["v1"] == image.manifest.digest
    assert set(blobs) == set(read_oci_layout(layout)[1])
    log = pair.nginx.workdir / "access.log"
    assert "/v2/accel/image/blobs/" in log.read_text()
