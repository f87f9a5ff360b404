"""Helpers of the live robustness tests: the processes of a server's group (/proc), TLS material."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


def group_members(pgid: int) -> dict[int, str]:
    """pid → state letter (R, S, Z, ...) of every process whose process group is ``pgid``."""
    out: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ..." - comm may contain spaces, so split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:
            out[int(entry.name)] = fields[0]
    return out


def live_members(pgid: int) -> dict[int, str]:
    """Members that are not zombies (a zombie holds no memory and runs no code)."""
    return {pid: state for pid, state in group_members(pgid).items() if state not in ("Z", "X")}


def rss_kib(pid: int) -> int:
    """VmRSS of a process in KiB, 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def group_rss_kib(pgid: int) -> dict[int, int]:
    return {pid: rss_kib(pid) for pid in live_members(pgid)}


# -- TLS material ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TLSFiles:
    ca: Path
    certificate: Path
    key: Path
    other_ca: Path  # a CA that did not sign the server certificate


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, f"openssl {' '.join(args)}:\n{proc.stderr}"


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN=dockyard test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
        cwd=directory,
    )  # fmt: skip
    return key, cert


def make_tls_files(d: Path) -> TLSFiles:
    """A CA and a server certificate for IP 127.0.0.1 signed by it (and an unrelated CA), via the openssl CLI."""
    ca_key, ca_cert = _make_ca(d, "ca")
    _, other_cert = _make_ca(d, "other-ca")
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
        cwd=d,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "server.ext",
        cwd=d,
    )  # fmt: skip
    return TLSFiles(ca_cert, d / "server.crt", d / "server.key", other_cert)
