"""Pull policies in process (the whole app over httpx): images refused by their findings or their
signatures with ``DENIED`` naming the policy, the allowlist and its expiry, unscanned images,
who is never refused, and cosign signatures (tag and referrer forms) verified against keys."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dockyard.config import ConfigError, parse_config
from tests.scan import signing
from tests.scan.policyapp import OCI_INDEX, OCI_MANIFEST, PASSWORDS, VULNERABLE, denied

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_finding_at_or_above_the_severity_refuses_the_pull(make: Callable[..., Any]) -> None:
    reg = await make({"name": "no-criticals", "repositories": ["prod/**"], "severity": "critical"})
    digest, _ = await reg.push("prod/app", "v1", "vulnerable", *VULNERABLE)
    clean, _ = await reg.push("prod/clean", "v1", "clean", "pkg:npm/left-pad@1.3.1")

    for reference in ("v1", digest):
        error = denied(await reg.pull("prod/app", reference))
        assert error["message"] == (
            f'pull of prod/app@{digest} refused by policy "no-criticals": GHSA-pol-lpad (critical) '
            "in left-pad 1.3.0, fixed in 1.3.1, at or above critical"
        )
        assert error["detail"] == {
            "policy": "no-criticals",
            "advisory": "GHSA-pol-lpad",
            "aliases": ["CVE-2099-0001"],
            "package": "left-pad",
            "installed": "1.3.0",
            "severity": "critical",
            "fixed": "1.3.1",
            "findings": 1,
        }
    assert (await reg.pull("prod/clean", "v1")).status_code == 200
    assert (await reg.pull("prod/clean", clean)).status_code == 200
    # Outside the policy's repositories, the same image pulls.
    await reg.push("dev/app", "v1", "vulnerable", *VULNERABLE)
    assert (await reg.pull("dev/app", "v1")).status_code == 200
    # A refused pull is no pull: the pull log has none for it.
    await reg.services.pulls.refresh()
    assert reg.services.pulls.last(f"prod/app@{digest}") is None


async def test_with_postgresql_the_results_are_read_from_the_database(
    make: Callable[..., Any], dsn: str
) -> None:
    """Replicas share one queue and its results (``scan_results``): the policy reads them there."""
    reg = await make({"name": "no-highs", "repositories": ["**"], "severity": "high"}, dsn=dsn)
    assert type(reg.services.policies.results).__name__ == "PgScanQueue"  # type: ignore[union-attr]
    digest, _ = await reg.push("app", "v1", "vulnerable", *VULNERABLE)
    assert denied(await reg.pull("app", digest))["detail"]["advisory"] == "GHSA-pol-lpad"
    await reg.push("app", "v2", "clean", "pkg:npm/left-pad@1.3.1")
    assert (await reg.pull("app", "v2")).status_code == 200


async def test_the_allowlist_lets_an_advisory_through_until_it_expires(make: Callable[..., Any]) -> None:
    reg = await make(
        {
            "name": "no-highs",
            "repositories": "prod/*",
            "severity": "high",
            "allowlist": [
                {"id": "CVE-2099-0001", "expires": "2026-06-30", "reason": "not reachable"},  # an alias
                {"id": "GHSA-pol-odd", "expires": "2026-05-31"},  # expired already
            ],
        }
    )
    digest, _ = await reg.push("prod/app", "v1", "vulnerable", *VULNERABLE)
    error = denied(await reg.pull("prod/app", "v1"))
    # The critical one is allowed: the high one (its allowance expired) is the worst left.
    assert error["detail"]["advisory"] == "GHSA-pol-odd" and error["detail"]["findings"] == 1
    assert "GHSA-pol-odd (high) in is-odd 3.0.0, no fix yet, at or above high" in error["message"]

    reg.time[1] = datetime(2026, 5, 31, 23, tzinfo=UTC).timestamp()  # the last day of GHSA-pol-odd's
    assert (await reg.pull("prod/app", digest)).status_code == 200
    reg.time[1] = datetime(2026, 7, 1, tzinfo=UTC).timestamp()  # both expired: the critical again
    error = denied(await reg.pull("prod/app", digest))
    assert (error["detail"]["advisory"], error["detail"]["findings"]) == ("GHSA-pol-lpad", 2)
    assert "and 1 more" in error["message"]


async def test_unknown_severity_and_fixable_only(make: Callable[..., Any]) -> None:
    reg = await make(
        {"name": "fixable", "repositories": ["a/**"], "severity": "high", "onlyfixable": True},
        {"name": "unknowns", "repositories": ["b/**"], "severity": "critical", "unknown": "block"},
    )
    await reg.push("a/app", "v1", "odd", "pkg:npm/is-odd@3.0.0")  # high, but no fix
    assert (await reg.pull("a/app", "v1")).status_code == 200
    await reg.push("a/app", "v2", "pad", "pkg:npm/left-pad@1.3.0", "pkg:npm/is-odd@3.0.0")
    assert denied(await reg.pull("a/app", "v2"))["detail"]["advisory"] == "GHSA-pol-lpad"

    await reg.push("b/app", "v1", "even", "pkg:npm/is-even@1.0.0")
    error = denied(await reg.pull("b/app", "v1"))
    assert (error["detail"]["advisory"], error["detail"]["severity"]) == ("GHSA-pol-even", "unknown")
    await reg.push("b/app", "v2", "odd", "pkg:npm/is-odd@3.0.0")  # high: below critical
    assert (await reg.pull("b/app", "v2")).status_code == 200


async def test_an_unscanned_image_is_refused_by_default(make: Callable[..., Any]) -> None:
    reg = await make(
        {"name": "strict", "repositories": ["s/**"], "severity": "high"},
        {"name": "lenient", "repositories": ["l/**"], "severity": "high", "unscanned": "allow"},
    )
    digest, _ = await reg.push("s/app", "v1", "new")
    error = denied(await reg.pull("s/app", "v1"))
    assert error["message"] == (
        f'pull of s/app@{digest} refused by policy "strict": it has not been scanned yet (unscanned: deny)'
    )
    assert error["detail"] == {"policy": "strict", "scan": "it has not been scanned yet"}
    await reg.push("l/app", "v1", "new")
    assert (await reg.pull("l/app", "v1")).status_code == 200

    await reg.scan()  # no SBOM, no Syft on this image: the scan fails, which is no result either
    assert "its scan failed" in denied(await reg.pull("s/app", "v1"))["message"]


async def test_referrers_and_indexes_pass_the_children_are_judged(make: Callable[..., Any]) -> None:
    reg = await make({"name": "no-highs", "repositories": ["**"], "severity": "high"})
    bad, bad_size = await reg.push("multi/app", "", "arm64 layer", *VULNERABLE)
    good, good_size = await reg.push("multi/app", "", "amd64 layer", "pkg:npm/left-pad@1.3.1")
    index = signing.compact(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": good, "size": good_size,
                 "platform": {"architecture": "amd64", "os": "linux"}},
                {"mediaType": OCI_MANIFEST, "digest": bad, "size": bad_size,
                 "platform": {"architecture": "arm64", "os": "linux"}},
            ],
        }
    )  # fmt: skip
    await reg.put("multi/app", "v1", index)
    await reg.scan()
    assert (await reg.pull("multi/app", "v1")).status_code == 200  # the index
    assert (await reg.pull("multi/app", good)).status_code == 200
    assert denied(await reg.pull("multi/app", bad))["detail"]["advisory"] == "GHSA-pol-lpad"
    # The SBOM referrer of the refused image still pulls (``oras discover``, ``cosign verify``).
    r = await reg.client.get(f"/v2/multi/app/referrers/{bad}")
    [sbom_ref] = r.json()["manifests"]
    assert (await reg.pull("multi/app", sbom_ref["digest"])).status_code == 200


async def test_admins_exempt_accounts_and_pushers_heads_are_never_refused(make: Callable[..., Any]) -> None:
    policy = {"name": "no-highs", "repositories": ["**"], "severity": "high", "exempt": "robo"}
    reg = await make(policy, auth=True)
    reg.client.auth = ("carl", PASSWORDS["carl"])
    digest, _ = await reg.push("app", "v1", "vulnerable", *VULNERABLE)

    assert denied(await reg.pull("app", "v1", user="rita"))["detail"]["policy"] == "no-highs"
    assert (await reg.pull("app", "v1", "HEAD", user="rita")).status_code == 403  # a pull-only HEAD
    assert (await reg.pull("app", "v1", user="ada")).status_code == 200  # an admin
    assert (await reg.pull("app", digest, user="robo")).status_code == 200  # exempt
    # carl may push: his HEAD (what a client checks before a push) answers; his GET is a pull.
    assert (await reg.pull("app", "v1", "HEAD", user="carl")).status_code == 200
    assert denied(await reg.pull("app", "v1", user="carl"))["detail"]["advisory"] == "GHSA-pol-lpad"
    # ... unless he signs it: cosign reads the manifest it signs.
    r = await reg.client.get("/v2/app/manifests/v1", headers={"User-Agent": "cosign/v2.4.1 (linux; amd64)"})
    assert r.status_code == 200
    r = await reg.client.get(
        "/v2/app/manifests/v1", headers={"User-Agent": "cosign/v2.4.1"}, auth=("rita", PASSWORDS["rita"])
    )
    assert r.status_code == 403  # rita may not push: being cosign does not help her


def test_policy_configuration_errors(tmp_path: Path) -> None:
    def error(scan: dict[str, Any]) -> str:
        with pytest.raises(ConfigError) as info:
            parse_config({"scan": scan})
        return str(info.value)

    base = {"name": "p", "repositories": ["**"]}
    pem = signing.public_pem(signing.new_key())
    assert "refuses nothing" in error({"policies": [base]})
    assert "needs scan results: set scan.enabled: true" in error({"policies": [{**base, "severity": "high"}]})
    assert "two policies are named 'p'" in error({"policies": [{**base, "signed": True}] * 2})
    assert "has keys but not signed" in error({"policies": [{**base, "severity": "low", "keys": [pem]}]})
    assert "scan.policies.0.severity" in error({"enabled": True, "policies": [{**base, "severity": "bad"}]})
    assert "scan.policies.0.unscanned" in error({"policies": [{**base, "signed": True, "unscanned": "x"}]})
    bad_date = {**base, "severity": "low", "allowlist": [{"id": "CVE-1", "expires": "soon"}]}
    assert "scan.policies.0.allowlist.0.expires" in error({"enabled": True, "policies": [bad_date]})
    assert "cannot read public key file" in error({"policies": [{**base, "signed": True, "keys": ["/nope"]}]})
    rsa = "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n"
    assert "not a PEM public key" in error({"policies": [{**base, "signed": True, "keys": [rsa]}]})
    (tmp_path / "cosign.pub").write_text(pem)
    ok = {"policies": [{**base, "signed": True, "keys": [str(tmp_path / "cosign.pub")]}]}
    assert parse_config({"scan": ok}).scan.policies[0].keys[0].startswith("-----BEGIN PUBLIC KEY-----")
