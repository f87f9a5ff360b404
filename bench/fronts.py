"""What the accelerated and TLS configurations add around the registries: a self-signed
certificate both servers terminate TLS with, and nginx from Debian in front of dockyard with the
shipped ``deploy/nginx/dockyard-accel.conf``."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

SHIPPED_NGINX = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "dockyard-accel.conf"
ACCEL_LOCATION = "/_dockyard_blobs/"


@dataclass(frozen=True)
class TLSFiles:
    certificate: Path
    key: Path


def make_certificate(directory: Path) -> TLSFiles:
    """One self-signed certificate for 127.0.0.1 (P-256, as a deployment would choose): both
    registries serve it, and the clients trust it as their only CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockyard-bench")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TLSFiles(directory / "bench.crt", directory / "bench.key")
    files.certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    files.key.chmod(0o600)
    return files


def find_nginx() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def render_server(upstream_port: int, port: int, root: Path) -> str:
    """The shipped server block with its three deployment-specific values replaced (as a user
    would edit it); fails if the file no longer holds them, so the bench measures that file."""
    text = SHIPPED_NGINX.read_text()
    for old, new in (
        ("server 127.0.0.1:5000;", f"server 127.0.0.1:{upstream_port};"),
        ("listen 8080;", f"listen 127.0.0.1:{port};"),
        ("alias /var/lib/registry/;", f"alias {root.resolve()}/;"),
    ):
        if text.count(old) != 1:
            raise RuntimeError(f"{SHIPPED_NGINX} no longer contains {old!r}")
        text = text.replace(old, new)
    return text


def nginx_config(prefix: Path, upstream_port: int, port: int, root: Path) -> Path:
    """A whole nginx.conf under ``prefix``: in the foreground (stopped by pid like the servers),
    one worker per CPU as Debian's default, no access log (as the registries run here)."""
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "server.conf").write_text(render_server(upstream_port, port, root))
    # As root, nginx's workers would switch to nobody, who may not read the storage root.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {name}_temp_path {prefix / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"{user}daemon off;\nworker_processes auto;\npid {prefix / 'nginx.pid'};\n"
        "error_log stderr warn;\nevents { worker_connections 1024; }\n"
        f"http {{\n    access_log off;\n{temp}\n    include {prefix / 'server.conf'};\n}}\n"
    )
    return conf
