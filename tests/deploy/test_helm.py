"""The Helm chart, rendered with Helm v4's library (PyPI helm-python-sdk; no Helm CLI here).

For every values preset (the defaults: one replica on a PVC; presets/ha.yaml; presets/mirror.yaml)
the chart is linted and rendered, and every rendered object is checked offline against the
Kubernetes API's OpenAPI schemas (kubernetes-validate, strict: unknown fields are errors). Not
checked that way: the ServiceMonitor (a Prometheus Operator CRD; its shape is asserted here),
anything an API server decides (admission, defaults, quota, that referenced Secrets exist), and
whether a cluster would schedule it. Then the single-replica Deployment's container runs under
docker with the same image, args, env, mounts and security context, and its probes answer; and
the chart goes to dockyard and back as an OCI artifact (``helm push``/``helm pull``).
"""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.clients.conftest import Docker
from tests.deploy.conftest import FACTS, REPO, BuiltImage, Timer, container_ip, wait_for
from tests.servers.dockyard import LiveRegistry

pytestmark = pytest.mark.deploy

CHART = REPO / "deploy" / "helm" / "dockyard"
KUBE_VERSION = "1.30.0"
PRESETS = {"default": None, "ha": CHART / "presets" / "ha.yaml", "mirror": CHART / "presets" / "mirror.yaml"}
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The chart's objects for ``values`` (release "reg" in namespace "registry")."""
    import helm_python as helm

    chart = helm.Chart.load(CHART)
    rendered = chart.render(values or {}, name="reg", namespace="registry", is_install=True)
    objects = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


def preset(name: str) -> dict[str, Any]:
    path = PRESETS[name]
    return yaml.safe_load(path.read_text()) if path is not None else {}


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj["kind"]: obj for obj in objects}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_render_and_validate_offline(name: str) -> None:
    import helm_python as helm
    import kubernetes_validate

    with Timer("helm: lint, render, validate (3 presets)"):
        lint = helm.lint(CHART, preset(name), strict=True)
        assert not lint["errors"] and not [m for m in lint["messages"] if m["severity"] >= 2], lint
        objects = render(preset(name))
        checked = 0
        for obj in objects:
            if (obj["apiVersion"], obj["kind"]) in CRDS:
                continue
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
            checked += 1
    FACTS[f"helm {name}: objects validated / CRDs unchecked"] = f"{checked} / {len(objects) - checked}"
    kinds = by_kind(objects)
    deployment = kinds["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 65532
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["resources"]["limits"]["memory"]
    config = yaml.safe_load(kinds["ConfigMap"]["data"]["config.yml"]) if name != "mirror" else None
    env = {e["name"]: e for e in container.get("env", [])}
    if name == "default":
        assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
        assert "PersistentVolumeClaim" in kinds and "PodDisruptionBudget" not in kinds
        assert config is not None and config["storage"] == {
            "filesystem": {"rootdirectory": "/var/lib/registry"}
        }
    if name == "ha":
        assert deployment["spec"]["replicas"] == 3
        assert kinds["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
        assert "PersistentVolumeClaim" not in kinds
        # Secrets are referenced, never inlined.
        for var in (
            "REGISTRY_STORAGE_S3_ACCESSKEY",
            "REGISTRY_STORAGE_S3_SECRETKEY",
            "REGISTRY_DATABASE_DSN",
        ):
            assert "value" not in env[var] and env[var]["valueFrom"]["secretKeyRef"]["name"]
        assert config is not None and config["storage"]["s3"]["bucket"] == "dockyard"
        assert config["storage"]["redirect"] == {"disable": False}
        ingress = kinds["Ingress"]["spec"]
        assert ingress["tls"][0]["secretName"] == "dockyard-tls"
        monitor = kinds["ServiceMonitor"]["spec"]
        assert monitor["endpoints"][0]["port"] == "metrics"
        ports = {p["name"] for p in kinds["Service"]["spec"]["ports"]}
        assert ports == {"http", "metrics"}
    if name == "mirror":
        hosts = [
            o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("mirror-hosts")
        ]
        toml = hosts[0]["data"]["docker.io_hosts.toml"]
        assert 'server = "https://registry-1.docker.io"' in toml
        assert '[host."https://mirror.example.com"]' in toml and 'capabilities = ["pull", "resolve"]' in toml
        main = next(
            o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "reg-dockyard"
        )
        upstreams = yaml.safe_load(main["data"]["config.yml"])["proxy"]["upstreams"]
        assert [u["prefix"] for u in upstreams] == ["docker.io", "ghcr.io", "quay.io"]


def test_replicas_without_shared_state_are_refused() -> None:
    import helm_python as helm

    with pytest.raises(helm.HelmError, match=r"database\.existingSecret"):
        render({"replicaCount": 2, "s3": {"enabled": True, "bucket": "b"}})


@pytest.mark.builds
def test_rendered_deployment_runs_under_docker(
    deploy_docker: Docker, dockyard_image: BuiltImage, network: str, tmp_path: Path
) -> None:
    """The single-replica Deployment's pod, translated flag for flag into ``docker run``."""
    repository, tag = dockyard_image.name.split(":")
    objects = by_kind(render({"image": {"repository": repository, "tag": tag}}))
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    for key, text in objects["ConfigMap"]["data"].items():
        (config_dir / key).write_text(text)
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, pod["securityContext"]["fsGroup"], pod["securityContext"]["fsGroup"])
    volumes = {v["name"]: v for v in pod["volumes"]}
    argv = ["run", "-d", "--name", "dockyard-helm", "--network", network]
    security = container["securityContext"]
    argv += ["--user", f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"]
    if security["readOnlyRootFilesystem"]:
        argv.append("--read-only")
    if security["allowPrivilegeEscalation"] is False:
        argv += ["--security-opt", "no-new-privileges"]
    argv += [f"--cap-drop={cap}" for cap in security["capabilities"]["drop"]]
    argv += ["--memory", container["resources"]["limits"]["memory"].replace("Gi", "g")]
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            argv += ["-v", f"{config_dir}:{mount['mountPath']}:ro"]
        elif "emptyDir" in volume:
            argv += ["--tmpfs", mount["mountPath"]]
        elif "persistentVolumeClaim" in volume:
            argv += ["-v", f"{data}:{mount['mountPath']}"]
        else:
            pytest.fail(f"no docker equivalent for volume {volume}")
    for var in container.get("env", []):
        argv += ["-e", f"{var['name']}={var['value']}"]
    argv += ["--entrypoint", "dockyard", container["image"], "serve", *container["args"]]
    with Timer("helm: the Deployment's container under docker"):
        try:
            deploy_docker(*argv)
            address = container_ip(deploy_docker, "dockyard-helm")
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}

            def probe(kind: str) -> int:
                get = container[kind]["httpGet"]
                port = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
                url = f"{get['scheme'].lower()}://{address}:{port}{get['path']}"
                return httpx.get(url, timeout=container[kind]["timeoutSeconds"]).status_code

            wait_for(lambda: probe("readinessProbe") == 200, "the readiness probe")
            assert probe("livenessProbe") == 200
            health = httpx.get(f"http://{address}:{ports['http']}/health").json()
            assert health == {"status": "ok", "storage": "ok", "coordinator": "ok"}
            metrics = httpx.get(f"http://{address}:{ports['metrics']}/metrics")
            assert metrics.status_code == 200 and "dockyard_http_requests_total" in metrics.text
        finally:
            deploy_docker("rm", "-f", "-v", "dockyard-helm", check=False)


def test_chart_push_and_pull_through_dockyard(tmp_path: Path) -> None:
    """``helm package``, ``helm push`` to a live dockyard, ``helm pull`` back: the same archive;
    dockyard's UI shows it as a chart."""
    import helm_python as helm

    with Timer("helm: package, push, pull, UI"), LiveRegistry(tmp_path / "registry", workers=1) as live:
        archive = Path(helm.package(CHART, destination=tmp_path))
        client = helm.RegistryClient(plain_http=True, credentials_file=tmp_path / "helm-registry.json")
        pushed = client.push(archive, f"oci://{live.host}/charts")
        resolved = client.resolve(f"oci://{live.host}/charts/dockyard:0.1.0")
        assert resolved["digest"].startswith("sha256:")
        assert client.tags(f"oci://{live.host}/charts/dockyard") == ["0.1.0"]
        out = tmp_path / "pulled"
        out.mkdir()
        client.pull(f"oci://{live.host}/charts/dockyard", version="0.1.0", destination=out, plain_http=True)
        pulled = out / archive.name
        assert pulled.read_bytes() == archive.read_bytes()
        with tarfile.open(pulled) as tar:
            assert "dockyard/Chart.yaml" in tar.getnames()
        manifest = httpx.get(
            f"{live.url}/v2/charts/dockyard/manifests/0.1.0",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        ).json()
        assert manifest["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json"
        page = httpx.get(f"{live.url}/ui/image", params={"name": "charts/dockyard", "ref": "0.1.0"})
        assert page.status_code == 200 and "Helm chart" in page.text
        assert f"helm pull oci://{live.host}/charts/dockyard --version 0.1.0" in page.text
    FACTS["helm push answer"] = json.dumps(pushed)[:200]
