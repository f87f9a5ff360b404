"""The whole app in process with pull policies (``scan.policies``), for the policy tests: an
advisory database of three npm advisories, images pushed over HTTP and scanned from a client's
SBOM (no Syft run), and the clocks the policies read, moved by the tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from dockyard.app import build_app, create_services
from dockyard.auth.htpasswd import HtpasswdFile
from dockyard.config import parse_config
from dockyard.oci.digest import Digest
from dockyard.scan.sbom import CYCLONEDX_TYPE, store_sbom
from dockyard.services import Services
from dockyard.testing.images import build_image
from dockyard.vulndb.osv import parse
from tests.scan import signing
from tests.vulndb.osvdata import CVSS3_CRITICAL, CVSS3_HIGH, advisory, cvss, fixed

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp()
PASSWORDS = {"ada": "ada-pw", "carl": "carl-pw", "rita": "rita-pw", "robo": "robo-pw"}
ACCESS = {
    "admins": ["ada"],
    "rules": [
        {"repositories": ["**"], "users": ["carl"], "actions": ["pull", "push"]},
        {"repositories": ["**"], "users": ["rita", "robo"], "actions": ["pull"]},
    ],
}


def sbom(*purls: str) -> bytes:
    return json.dumps(
        {
            "bomFormat": "CycloneDX",
            "specVersion": "1.5",
            "components": [{"type": "library", "name": p, "purl": p} for p in purls],
        }
    ).encode()


# left-pad 1.3.0: critical, fixed in 1.3.1; is-odd 3.0.0: high, no fix; is-even 1.0.0: unknown.
VULNERABLE = ("pkg:npm/left-pad@1.3.0", "pkg:npm/is-odd@3.0.0", "pkg:npm/is-even@1.0.0")
ADVISORIES = [
    advisory(
        "GHSA-pol-lpad", "npm", "left-pad", events=fixed("1.3.1"), severity=cvss(CVSS3_CRITICAL),
        aliases=["CVE-2099-0001"],
    ),
    advisory("GHSA-pol-odd", "npm", "is-odd", events=[{"introduced": "0"}], severity=cvss(CVSS3_HIGH)),
    advisory("GHSA-pol-even", "npm", "is-even", events=fixed("1.0.1")),
]  # fmt: skip


@dataclass
class Registry:
    services: Services
    client: httpx.AsyncClient
    time: list[float]  # [monotonic, wall]: the clocks the policies read

    async def push(self, repo: str, tag: str, seed: str, *purls: str) -> tuple[str, int]:
        """An image (its scan's SBOM: ``purls``), scanned; its digest and size."""
        image = build_image(repo, tag, [seed.encode()], {"architecture": "amd64", "os": "linux"})
        for digest, data in image.blobs:
            r = await self.client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
            assert r.status_code == 201
        r = await self.client.put(
            f"/v2/{repo}/manifests/{tag or image.manifest_digest}",
            content=image.manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert r.status_code == 201, r.text
        if purls:
            subject = (OCI_MANIFEST, Digest.parse(image.manifest_digest), len(image.manifest))
            await store_sbom(self.services.registry, repo, subject, CYCLONEDX_TYPE, sbom(*purls), "client")
            await self.scan()
        return image.manifest_digest, len(image.manifest)

    async def scan(self) -> None:
        assert self.services.scans is not None
        await self.services.scans.drain()  # its ScanFinished drops what the policies had read

    async def put(self, repo: str, reference: str, body: bytes, blobs: list[bytes] = ()) -> None:  # type: ignore[assignment]
        for data in blobs:
            r = await self.client.post(
                f"/v2/{repo}/blobs/uploads/", params={"digest": signing.sha256(data)}, content=data
            )
            assert r.status_code == 201
        media_type = json.loads(body)["mediaType"]
        r = await self.client.put(
            f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": media_type}
        )
        assert r.status_code == 201, r.text

    async def pull(self, repo: str, reference: str, method: str = "GET", user: str = "") -> httpx.Response:
        auth = (user, PASSWORDS[user]) if user else None
        return await self.client.request(method, f"/v2/{repo}/manifests/{reference}", auth=auth)


def denied(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 403, r.text
    [error] = r.json()["errors"]
    assert error["code"] == "DENIED"
    return dict(error)


async def policy_apps(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """A maker of apps with the policies given (the ``make`` fixture of ``tests/scan``)."""
    made: list[Registry] = []

    async def factory(
        *policies: dict[str, Any], auth: bool = False, scan: bool = True, dsn: str | None = None
    ) -> Registry:
        """``dsn``: the queue, the results and the advisories in that PostgreSQL database."""
        tree: dict[str, Any] = {
            "storage": {"filesystem": {"rootdirectory": str(tmp_path / "data"), "fsync": False}},
            "vulndb": {"path": str(tmp_path / "vulndb.sqlite")},
            "scan": {"enabled": scan, "policies": list(policies)},
        }
        if dsn is not None:
            tree["database"] = {"dsn": dsn}
            del tree["vulndb"]
        if auth:
            users = HtpasswdFile(tmp_path / "htpasswd")
            for user, password in PASSWORDS.items():
                users.set_password(user, password, cost=4, create=True)
            tree["auth"] = {
                "htpasswd": {"path": str(tmp_path / "htpasswd")},
                "access": ACCESS,
                "robots": {"path": str(tmp_path / "robots.json")},
            }
        time = [1000.0, NOW]
        services = create_services(parse_config(tree), clock=lambda: time[0])
        assert services.policies is not None and services.vulndb is not None
        services.policies.wallclock = lambda: time[1]
        await services.vulndb.replace([parse(r) for r in ADVISORIES])
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=build_app(services)), base_url="http://registry.test"
        )
        made.append(Registry(services, client, time))
        return made[-1]

    yield factory
    for registry in made:
        await registry.client.aclose()
        await registry.services.coordinator.close()
