"""Test images with real package metadata, and the package URLs Syft must find in them.

Each layer is built from this machine's own files: ``dpkg`` status entries and ``os-release``
(Debian), ``.dist-info`` directories installed from PyPI into the test environment (Python), a
Go binary with module build info (Debian's ``docker-proxy``, from the docker.io package the
tests install), and an npm ``node_modules`` tree. The expected purls are computed here from the
same metadata, independently of Syft, so a wrong or missing package fails the test.
"""

from __future__ import annotations

import importlib.metadata
import io
import re
import subprocess
import tarfile
from pathlib import Path
from urllib.parse import quote

from dockyard.testing.images import Image, build_image

DEB_PACKAGES = ("base-files", "libc6")
PY_PACKAGES = ("idna", "sniffio")
GO_BINARY = Path("/usr/sbin/docker-proxy")
NPM_PACKAGES = {"left-pad": "1.3.0", "is-odd": "3.0.1"}


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


def _dpkg_status(package: str) -> str:
    return subprocess.run(["dpkg-query", "-s", package], check=True, capture_output=True, text=True).stdout


def _field(stanza: str, name: str) -> str | None:
    m = re.search(rf"^{name}: (.+)$", stanza, re.M)
    return m.group(1).strip() if m else None


def os_release() -> dict[str, str]:
    text = Path("/etc/os-release").read_text()
    return {k: v.strip('"') for k, v in re.findall(r"^([A-Z_]+)=(.*)$", text, re.M)}


def debian_layer() -> tuple[bytes, set[str]]:
    """``etc/os-release`` and ``var/lib/dpkg/status`` with this machine's entries of
    :data:`DEB_PACKAGES`; the purls Syft gives them."""
    stanzas = [_dpkg_status(p).strip() + "\n" for p in DEB_PACKAGES]
    release = os_release()
    distro = f"{release['ID']}-{release['VERSION_ID']}"
    purls = set()
    for stanza in stanzas:
        name, version, arch = (
            _field(stanza, "Package"),
            _field(stanza, "Version"),
            _field(stanza, "Architecture"),
        )
        qualifiers = {"arch": str(arch), "distro": distro}
        source = _field(stanza, "Source")
        if source:
            src_name, _, src_version = source.partition(" ")
            qualifiers["upstream"] = f"{src_name}@{src_version.strip('()')}" if src_version else src_name
        # purl qualifiers are sorted by key, values percent-encoded
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in sorted(qualifiers.items()))
        purls.add(f"pkg:deb/{release['ID']}/{name}@{quote(str(version), safe='')}?{query}")
    files = {
        "etc/os-release": Path("/etc/os-release").read_bytes(),
        "var/lib/dpkg/status": "\n".join(stanzas).encode(),
    }
    return tar_layer(files), purls


def python_layer() -> tuple[bytes, set[str]]:
    """The installed ``.dist-info`` of :data:`PY_PACKAGES` under a ``site-packages``."""
    files: dict[str, bytes] = {}
    purls = set()
    for package in PY_PACKAGES:
        dist = importlib.metadata.distribution(package)
        for f in dist.files or ():
            if ".dist-info/" in str(f):
                files[f"usr/lib/python3/site-packages/{f}"] = Path(str(dist.locate_file(f))).read_bytes()
        purls.add(f"pkg:pypi/{dist.metadata['Name'].lower()}@{dist.version}")
    return tar_layer(files), purls


def npm_layer() -> tuple[bytes, set[str]]:
    """A ``node_modules`` tree of :data:`NPM_PACKAGES` (their published ``package.json`` fields)."""
    files = {
        f"app/node_modules/{name}/package.json": (
            f'{{"name": "{name}", "version": "{version}", "license": "MIT", "main": "index.js"}}'.encode()
        )
        for name, version in NPM_PACKAGES.items()
    }
    files["app/node_modules/left-pad/index.js"] = b"module.exports = leftPad;\n"
    return tar_layer(files), {f"pkg:npm/{n}@{v}" for n, v in NPM_PACKAGES.items()}


def go_layer() -> tuple[bytes, set[str]]:
    """Debian's ``docker-proxy``: its build info names the main package and the Go release (it is
    built in GOPATH mode, so its module version is ``(devel)`` and it lists no dependencies)."""
    data = GO_BINARY.read_bytes()
    info = data[data.find(b"\xff Go buildinf:") :]
    path = re.search(rb"path\t([^\n]+)\n", info)
    go = re.search(rb"go(1\.\d+(?:\.\d+)?)", info)
    assert path is not None and go is not None, "docker-proxy carries no Go build info"
    module, _, sub = path.group(1).decode().partition("/cmd/")
    purls = {f"pkg:golang/{module}@(devel)#cmd/{sub}", f"pkg:golang/stdlib@{go.group(1).decode()}"}
    return tar_layer({"usr/bin/docker-proxy": data}, {"usr/bin/docker-proxy": 0o755}), purls


def sample_image(repo: str, tag: str, arch: str = "amd64") -> tuple[Image, set[str], list[str]]:
    """An image of the four layers; the purls in it; the layers' digests, in order."""
    layers, purls = [], set()
    for build in (debian_layer, python_layer, npm_layer, go_layer):
        layer, found = build()
        layers.append(layer)
        purls |= found
    config = {"architecture": arch, "os": "linux", "config": {}}
    image = build_image(repo, tag, layers, config)
    return image, purls, [d for d, _ in image.blobs[:-1]]
