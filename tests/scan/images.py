"""Test images with real package metadata, and the package URLs Syft must find in them.

Each layer is built from this machine's own files: ``dpkg`` status entries and ``os-release``
(Debian), ``.dist-info`` directories installed from PyPI into the test environment (Python), a
Go binary with module build info (Debian's ``docker-proxy``, from the docker.io package the
tests install), and an npm ``node_modules`` tree; an Alpine layer (apk's installed database), a
Maven jar, an installed gem's specification and a Rust binary with cargo-auditable's section
(``objcopy``, from binutils, adds it to a copy of a small system ELF). The expected purls are computed here from the
same metadata, independently of Syft, so a wrong or missing package fails the test.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import re
import subprocess
import tarfile
import zipfile
import zlib
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


ALPINE_RELEASE = "3.19.1"
# (package, version, origin: the source package Alpine's advisories name)
APK_PACKAGES = (
    ("musl", "1.2.4_git20230717-r4", "musl"),
    ("busybox", "1.36.1-r15", "busybox"),
    ("libcrypto3", "3.1.4-r5", "openssl"),
)
ALPINE_OS_RELEASE = f"""NAME="Alpine Linux"
ID=alpine
VERSION_ID={ALPINE_RELEASE}
PRETTY_NAME="Alpine Linux v3.19"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
"""


def _apk_stanza(name: str, version: str, origin: str) -> str:
    """One package of apk's installed database, in its field-per-line format (``P`` name, ``V``
    version, ``o`` origin, ``F``/``R`` its files)."""
    return "\n".join(
        [
            "C:Q1" + "A" * 27 + "=",
            f"P:{name}",
            f"V:{version}",
            "A:x86_64",
            "S:100000",
            "I:200000",
            f"T:{name} (a test entry)",
            "U:https://alpinelinux.org/",
            "L:MIT",
            f"o:{origin}",
            "m:Natanael Copa <ncopa@alpinelinux.org>",
            "t:1700000000",
            "c:0123456789abcdef0123456789abcdef01234567",
            "F:usr/lib",
            f"R:lib{name}.so",
            "Z:Q1" + "B" * 27 + "=",
        ]
    )


def alpine_layer() -> tuple[bytes, set[str]]:
    """An Alpine ``os-release`` and ``lib/apk/db/installed`` of :data:`APK_PACKAGES`. Syft takes
    one distribution per image from os-release, so this layer makes an image of its own."""
    purls = set()
    for name, version, origin in APK_PACKAGES:
        qualifiers = {"arch": "x86_64", "distro": f"alpine-{ALPINE_RELEASE}"}
        if origin != name:
            qualifiers["upstream"] = origin
        query = "&".join(f"{k}={v}" for k, v in sorted(qualifiers.items()))
        purls.add(f"pkg:apk/alpine/{name}@{version}?{query}")
    db = "\n\n".join(_apk_stanza(*p) for p in APK_PACKAGES) + "\n\n"
    files = {"etc/os-release": ALPINE_OS_RELEASE.encode(), "lib/apk/db/installed": db.encode()}
    return tar_layer(files), purls


MAVEN_ARTIFACT = ("org.apache.logging.log4j", "log4j-core", "2.14.1")
GEM = ("rack", "2.2.3")
CARGO_PACKAGES = {"smallvec": "1.6.0", "base64": "0.21.7"}
CARGO_BINARY = Path("/usr/bin/true")  # any small ELF; the metadata goes into a section of a copy


def _jar(group: str, artifact: str, version: str) -> bytes:
    """A jar as Maven builds one: a manifest, and the pom.xml and pom.properties Maven puts
    under ``META-INF/maven/<group>/<artifact>/``."""
    pom = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        f"  <groupId>{group}</groupId>\n  <artifactId>{artifact}</artifactId>\n"
        f"  <version>{version}</version>\n  <packaging>jar</packaging>\n</project>\n"
    )
    properties = f"groupId={group}\nartifactId={artifact}\nversion={version}\n"
    manifest = (
        "Manifest-Version: 1.0\r\n"
        f"Implementation-Title: {artifact}\r\nImplementation-Version: {version}\r\n"
        f"Implementation-Vendor-Id: {group}\r\n\r\n"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as jar:
        for name, text in (
            ("META-INF/MANIFEST.MF", manifest),
            (f"META-INF/maven/{group}/{artifact}/pom.xml", pom),
            (f"META-INF/maven/{group}/{artifact}/pom.properties", properties),
        ):
            jar.writestr(zipfile.ZipInfo(name, (2023, 11, 14, 0, 0, 0)), text)
    return out.getvalue()


def _gemspec(name: str, version: str) -> bytes:
    """An installed gem's specification, as ``gem install`` writes it under ``specifications/``."""
    return (
        "# -*- encoding: utf-8 -*-\n"
        f"# stub: {name} {version} ruby lib\n\n"
        "Gem::Specification.new do |s|\n"
        f'  s.name = "{name}".freeze\n'
        f'  s.version = "{version}"\n'
        '  s.require_paths = ["lib".freeze]\n'
        '  s.authors = ["Leah Neukirchen".freeze]\n'
        f'  s.files = ["lib/{name}.rb".freeze]\n'
        '  s.homepage = "https://github.com/rack/rack".freeze\n'
        '  s.licenses = ["MIT".freeze]\n'
        "end\n"
    ).encode()


def _auditable_binary(packages: dict[str, str], work: Path) -> bytes:
    """A copy of a small ELF with cargo-auditable's ``.dep-v0`` section: zlib-compressed JSON
    listing the crates built in (the root crate, then its dependencies)."""
    deps = [{"name": n, "version": v, "source": "crates.io", "kind": "runtime"} for n, v in packages.items()]
    root = {
        "name": "auditapp",
        "version": "0.1.0",
        "source": "local",
        "root": True,
        "dependencies": list(range(len(deps))),
    }
    section, binary = work / "dep-v0", work / "auditapp"
    section.write_bytes(zlib.compress(json.dumps({"packages": [*deps, root]}).encode()))
    subprocess.run(
        ["objcopy", "--add-section", f".dep-v0={section}", str(CARGO_BINARY), str(binary)],
        check=True,
        capture_output=True,
    )
    return binary.read_bytes()


def app_layer(work: Path) -> tuple[bytes, set[str]]:
    """A Maven jar, an installed gem's specification and a Rust binary built with
    cargo-auditable; ``work`` is a scratch directory."""
    group, artifact, version = MAVEN_ARTIFACT
    gem, gem_version = GEM
    files = {
        f"app/lib/{artifact}-{version}.jar": _jar(group, artifact, version),
        f"usr/lib/ruby/gems/3.1.0/specifications/{gem}-{gem_version}.gemspec": _gemspec(gem, gem_version),
        "usr/local/bin/auditapp": _auditable_binary(CARGO_PACKAGES, work),
    }
    purls = {
        f"pkg:maven/{group}/{artifact}@{version}",
        f"pkg:gem/{gem}@{gem_version}",
        *(f"pkg:cargo/{n}@{v}" for n, v in CARGO_PACKAGES.items()),
        "pkg:cargo/auditapp@0.1.0",  # the root crate, listed too
    }
    return tar_layer(files, {"usr/local/bin/auditapp": 0o755}), purls
