"""Images with real package metadata for the scanning bench, and how they are pushed.

A bench-local copy of the test images' builders (``tests/scan/images.py``), so the bench runs
without the tests tree: ``dpkg`` status entries and ``os-release`` from this machine (Debian),
installed ``.dist-info`` directories (Python), a ``node_modules`` tree (npm) and a Go binary with
build info (Debian's ``docker-proxy``). Each image also gets a small layer naming it, so no two
images share a digest (each is a scan of its own), and optionally filler layers of random bytes
in 16 MiB files to reach a size: Syft walks every file of every layer, so the filler is what makes
a large image cost more to catalog, as an application's data files would.
"""

from __future__ import annotations

import importlib.metadata
import io
import os
import re
import subprocess
import tarfile
from pathlib import Path

import httpx

from dockyard.testing.images import OCI_MANIFEST, Image, build_image

DEB_PACKAGES = ("base-files", "libc6")
PY_PACKAGES = ("idna", "sniffio")
GO_BINARY = Path("/usr/sbin/docker-proxy")
NPM_PACKAGES = {"left-pad": "1.3.0", "is-odd": "3.0.1"}
MiB = 1024 * 1024
FILLER_FILE = 16 * MiB
FILLER_LAYER = 64 * MiB


def tar_layer(files: dict[str, bytes], modes: dict[str, int] | None = None) -> bytes:
    """An uncompressed tar of ``files`` (path → content), directories implied, fixed times."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for path in sorted(files):
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
                    tar.addfile(info)
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(files[path]), (modes or {}).get(path, 0o644), 1_700_000_000
            tar.addfile(info, io.BytesIO(files[path]))
    return out.getvalue()


def debian_layer() -> bytes:
    stanzas = [
        subprocess.run(["dpkg-query", "-s", p], check=True, capture_output=True, text=True).stdout.strip()
        + "\n"
        for p in DEB_PACKAGES
    ]
    files = {
        "etc/os-release": Path("/etc/os-release").read_bytes(),
        "var/lib/dpkg/status": "\n".join(stanzas).encode(),
    }
    return tar_layer(files)


def python_layer() -> bytes:
    files: dict[str, bytes] = {}
    for package in PY_PACKAGES:
        dist = importlib.metadata.distribution(package)
        for f in dist.files or ():
            if ".dist-info/" in str(f):
                files[f"usr/lib/python3/site-packages/{f}"] = Path(str(dist.locate_file(f))).read_bytes()
    return tar_layer(files)


def npm_layer() -> bytes:
    files = {
        f"app/node_modules/{name}/package.json": (
            f'{{"name": "{name}", "version": "{version}", "license": "MIT", "main": "index.js"}}'.encode()
        )
        for name, version in NPM_PACKAGES.items()
    }
    return tar_layer(files)


def go_layer() -> bytes:
    return tar_layer({"usr/bin/docker-proxy": GO_BINARY.read_bytes()}, {"usr/bin/docker-proxy": 0o755})


def os_release() -> dict[str, str]:
    text = Path("/etc/os-release").read_text()
    return {k: v.strip('"') for k, v in re.findall(r"^([A-Z_]+)=(.*)$", text, re.M)}


class Builder:
    """Builds images of the shared package layers (made once) plus per-image layers."""

    def __init__(self) -> None:
        self.base = [debian_layer(), python_layer(), npm_layer(), go_layer()]

    def image(self, repo: str, tag: str, size: int = 0) -> Image:
        """An image named by ``repo`` whose layers add up to about ``size`` bytes (at least the
        package layers': about 2 MiB)."""
        layers = [*self.base, tar_layer({"etc/bench-image": f"{repo}:{tag}\n".encode()})]
        filler = size - sum(len(x) for x in layers)
        index = 0
        while filler > 0:
            files: dict[str, bytes] = {}
            in_layer = min(filler, FILLER_LAYER)
            while in_layer > 0:
                n = min(in_layer, FILLER_FILE)
                files[f"srv/data/{index:04d}.bin"] = os.urandom(n)
                index += 1
                in_layer -= n
                filler -= n
            layers.append(tar_layer(files))
        return build_image(repo, tag, layers, {"architecture": "amd64", "os": "linux", "config": {}})


def push(client: httpx.Client, image: Image) -> None:
    """Monolithic uploads (POST, PUT) of each blob the registry lacks, then the manifest."""
    for digest, data in image.blobs:
        if client.head(f"/v2/{image.repo}/blobs/{digest}").status_code == 200:
            continue
        r = client.post(f"/v2/{image.repo}/blobs/uploads/")
        if r.status_code != 202:
            raise RuntimeError(f"upload of {digest} to {image.repo}: {r.status_code} {r.text[:200]}")
        location = r.headers["Location"]
        sep = "&" if "?" in location else "?"
        r = client.put(
            f"{location}{sep}digest={digest}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if r.status_code != 201:
            raise RuntimeError(f"blob {digest} of {image.repo}: {r.status_code} {r.text[:200]}")
    r = client.put(
        f"/v2/{image.repo}/manifests/{image.tag}",
        content=image.manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    if r.status_code != 201:
        raise RuntimeError(f"manifest of {image.repo}:{image.tag}: {r.status_code} {r.text[:200]}")
