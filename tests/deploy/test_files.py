"""The deployment files: each passes its own linter or schema, and they agree with each other
and with the image (ports, user, key paths, timeouts), since a mismatch only shows up as a
deployment that does not come up."""

from __future__ import annotations

import re
import runpy
import subprocess
from pathlib import Path

import pytest
import requests
import yaml
from cryptography.hazmat.primitives import serialization

from api.error_views import HOST_NOT_SERVED
from tests.deploy.deployfiles import (
    DEPLOY,
    ROOT,
    Dockerfile,
    compose_environment,
    dockerignore_rules,
    interpolate,
    is_ignored,
    nginx_upstream_server,
)
from tests.liveserver import LiveServer
from tests.utils import run, tool

K8S = DEPLOY / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml")) + [K8S / "secret.yaml.example"]
# Kubernetes releases still supported upstream when these files were written.
KUBERNETES_VERSIONS = ["1.34.0", "1.35.0"]


def gunicorn_defaults() -> dict:
    """gunicorn.conf.py's values with nothing set in the environment: what the image runs with."""
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def duration_seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


# hadolint


def test_hadolint_finds_nothing_in_the_dockerfile():
    result = run(
        tool("hadolint"), "--no-color", "--failure-threshold", "style", "Dockerfile", cwd=ROOT
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_hadolint_reports_a_bad_dockerfile(tmp_path: Path):
    """The check above can fail: hadolint reports what it should."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = run(tool("hadolint"), "--no-color", str(bad))
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # the `latest` tag
    assert "DL3008" in result.stdout  # an unpinned apt package


# Kubernetes


def load_manifests() -> dict[str, dict]:
    """Every manifest by kind, each file holding one."""
    found: dict[str, dict] = {}
    for path in MANIFESTS:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert len(documents) == 1, f"{path.name}: expected one resource"
        found[documents[0]["kind"]] = documents[0]
    return found


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda path: path.name)
def test_kubernetes_manifest_is_valid(manifest: Path, version: str):
    # --strict: an unknown (say, misspelt) field is an error, not silently dropped.
    result = run(tool("kubernetes-validate"), "--strict", "-k", version, str(manifest))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout and "against version" in result.stdout


def test_kubernetes_validate_reports_a_misspelt_field(tmp_path: Path):
    """The check above can fail: a field Kubernetes would ignore is reported."""
    text = (K8S / "deployment.yaml").read_text()
    bad = tmp_path / "deployment.yaml"
    bad.write_text(text.replace("readOnlyRootFilesystem", "readOnlyRootFileSystem"))
    result = run(tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSIONS[-1], str(bad))
    assert result.returncode != 0
    assert "readOnlyRootFileSystem" in result.stdout + result.stderr


def test_kubernetes_files_hold_every_resource_the_service_needs():
    kinds = {kind: m["apiVersion"] for kind, m in load_manifests().items()}
    assert kinds == {
        "Deployment": "apps/v1",
        "Service": "v1",
        "Secret": "v1",
        "HorizontalPodAutoscaler": "autoscaling/v2",
        "PodDisruptionBudget": "policy/v1",
    }


def test_kubernetes_resources_fit_together_and_fit_the_image():
    m = load_manifests()
    deployment, service, secret = m["Deployment"], m["Service"], m["Secret"]
    hpa, pdb = m["HorizontalPodAutoscaler"], m["PodDisruptionBudget"]
    image = Dockerfile.parse().final
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    (container,) = pod["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}

    # Every selector picks the pods, and only by labels the pods carry.
    for selector in (
        deployment["spec"]["selector"]["matchLabels"],
        service["spec"]["selector"],
        pdb["spec"]["selector"]["matchLabels"],
    ):
        assert selector and selector.items() <= labels.items()
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    # Enough replicas that the budget still lets a node drain while one pod serves.
    assert hpa["spec"]["minReplicas"] >= 2 and deployment["spec"]["replicas"] >= 2
    assert pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]

    # The Service reaches the port the image listens on, by name.
    (port,) = container["ports"]
    assert port["containerPort"] == int(image.env()["PORT"])
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    # Every probe asks /healthz on that port with a Host the service allows (not the pod IP
    # by chance); nothing but named hosts is allowed.
    allowed = env["DJANGO_ALLOWED_HOSTS"].split(",")
    assert "*" not in allowed
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert (get["path"], get["port"]) == ("/healthz", port["name"])
        assert get["httpHeaders"] == [{"name": "Host", "value": "localhost"}]
        assert "localhost" in allowed
    # Prometheus scrapes /metrics on the container's port, connecting to the pod IP, which the
    # downward API puts among the allowed hosts.
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port["containerPort"])
    assert annotations["prometheus.io/path"] == "/metrics"
    (pod_ip,) = [item for item in container["env"] if item["name"] == "POD_IP"]
    assert pod_ip["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert "$(POD_IP)" in allowed

    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
    # gunicorn would count the node's cores otherwise.
    assert int(env["WEB_CONCURRENCY"]) >= 1

    # Non-root, as the image's user; nothing writable but an emptyDir at /tmp.
    user, _, group = image.last("USER").args.partition(":")
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert (security["runAsUser"], security["runAsGroup"]) == (int(user), int(group))
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {v["mountPath"]: v["name"] for v in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]

    # The key files the service is told to read are in the mounted Secret, readable by its group.
    for variable in ("SUMSERVICE_JWT_PRIVATE_KEY_FILE", "SUMSERVICE_JWT_PREVIOUS_KEYS_FILE"):
        folder, _, name = env[variable].rpartition("/")
        volume = volumes[mounts[folder]]
        assert volume["secret"]["secretName"] == secret["metadata"]["name"]
        assert name in secret["stringData"]
        assert security["fsGroup"] == int(group) and volume["secret"]["defaultMode"] & 0o040
    assert env["SUMSERVICE_ISSUER"].startswith("https://")

    # On termination: the preStop pause, then gunicorn's graceful shutdown, within the grace.
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    graceful = gunicorn_defaults()["graceful_timeout"]
    assert pod["spec"]["terminationGracePeriodSeconds"] > pause + graceful


# Docker Compose


def load_compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_file_is_valid_compose():
    # The Compose Specification's JSON schema, as bundled with check-jsonschema.
    result = run(
        tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.compose-spec",
        str(DEPLOY / "compose.yaml"),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_reports_a_misspelt_key(tmp_path: Path):
    """The check above can fail."""
    bad = tmp_path / "compose.yaml"
    bad.write_text((DEPLOY / "compose.yaml").read_text().replace("stop_grace_period", "stop_grace"))
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(bad))
    assert result.returncode != 0 and "stop_grace" in result.stdout


def test_compose_runs_replicas_behind_nginx_sharing_one_key():
    compose = load_compose()
    services = compose["services"]
    assert set(services) == {"sumservice", "nginx", "redis"}
    app, nginx = services["sumservice"], services["nginx"]
    env = compose_environment(compose, "sumservice")
    image = Dockerfile.parse().final
    port = image.env()["PORT"]

    build = DEPLOY / app["build"]["context"] / app["build"]["dockerfile"]
    assert build.resolve() == ROOT / "Dockerfile"
    assert int(interpolate(app["deploy"]["replicas"])) >= 2
    # Replicas publish no host port (they could not share one): only nginx does.
    assert "ports" not in app and port in app["expose"]
    assert int(env["WEB_CONCURRENCY"]) >= 1
    assert env["SUMSERVICE_ISSUER"].startswith("http")

    # One key for all: the files the service reads are the secrets mounted in every replica,
    # from the folder git ignores.
    for variable in ("SUMSERVICE_JWT_PRIVATE_KEY_FILE", "SUMSERVICE_JWT_PREVIOUS_KEYS_FILE"):
        folder, _, name = env[variable].rpartition("/")
        assert folder == "/run/secrets" and name in app["secrets"]
        source = DEPLOY / compose["secrets"][name]["file"]
        assert source.parent == DEPLOY / "secrets"
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/secrets/signing-key.pem"], cwd=ROOT
    )
    assert ignored.returncode == 0, "deploy/secrets/ must be ignored by git"

    stop = duration_seconds(app["stop_grace_period"])
    assert stop > gunicorn_defaults()["graceful_timeout"]

    # nginx: its configuration is deploy/nginx.conf, its upstream is the service's port, and
    # the port it publishes is the one it listens on.
    conf_text = (DEPLOY / "nginx.conf").read_text()
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert nginx_upstream_server(conf_text)[0] == f"sumservice:{port}"
    (listen,) = re.findall(r"^\s*listen\s+(\d+);", conf_text, re.MULTILINE)
    (listen_tls,) = re.findall(r"^\s*listen\s+(\d+) ssl;", conf_text, re.MULTILINE)
    published = {interpolate(port).split(":")[-1]: port for port in nginx["ports"]}
    assert set(published) == {listen, listen_tls}
    # HTTPS on 443 (the redirect names no port), with the certificate make-keys.sh makes.
    assert interpolate(published[listen_tls]).split(":")[0] == "443"
    assert "return 301 https://$host$request_uri;" in conf_text
    for name, mounted in (("tls-cert.pem", "cert.pem"), ("tls-key.pem", "key.pem")):
        assert f"./secrets/{name}:/etc/nginx/tls/{mounted}:ro" in nginx["volumes"]
        assert (
            f"ssl_certificate{'_key' if name == 'tls-key.pem' else ''} /etc/nginx/tls/{mounted};"
            in conf_text
        )
    assert env["SUMSERVICE_ISSUER"].startswith("https://")
    # Only named hosts are served; the image's health check uses 127.0.0.1.
    allowed = env["DJANGO_ALLOWED_HOSTS"].split(",")
    assert "*" not in allowed and "127.0.0.1" in allowed
    # The rate limits are counted in the Redis beside the replicas, which start after it.
    assert env["SUMSERVICE_CACHE_URL"] == "redis://redis:6379/0"
    assert app["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "6379" in services["redis"]["expose"] and "ports" not in services["redis"]
    # A container without capabilities cannot switch users: one whose image starts as root and
    # switches (Redis's entrypoint, with gosu) must be started as that user instead.
    assert services["redis"]["cap_drop"] == ["ALL"] and services["redis"]["user"] == "999:1000"
    assert nginx["depends_on"]["sumservice"]["condition"] == "service_healthy"
    # `server ... resolve` needs nginx 1.27.3 or later.
    version = re.match(r"nginx:(\d+)\.(\d+)", nginx["image"])
    assert version and (int(version[1]), int(version[2])) >= (1, 28)


# Keys and the image's build context


def test_no_private_key_is_committed():
    """No file git holds or would add carries a PEM private key that loads (indented, as in a
    YAML block, or not); the Secret's placeholder is one that must not."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    pem = re.compile(rb"-----BEGIN ((?:[A-Z]+ )?PRIVATE KEY)-----.*?-----END \1-----", re.S)
    checked = 0
    for name in filter(None, listed):
        path = ROOT / name.decode()
        if not path.is_file():
            continue
        for match in pem.finditer(path.read_bytes()):
            block = b"\n".join(line.strip() for line in match.group(0).splitlines())
            checked += 1
            with pytest.raises((ValueError, TypeError)):
                serialization.load_pem_private_key(block, password=None)
    assert checked >= 1


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        ("api/views.py", True),
        ("sumservice/settings.py", True),
        ("gunicorn.conf.py", True),
        ("manage.py", True),
        ("requirements.txt", True),
        ("requirements-compiled.txt", True),
        ("LICENSE", True),
        ("sumclient/client.py", False),
        ("README.md", False),
        ("var/keys/signing-key.pem", False),
        ("deploy/secrets/signing-key.pem", False),
        (".venv/bin/python", False),
        (".git/config", False),
        ("api/tests/test_views.py", False),
        ("tests/liveserver.py", False),
        ("api/__pycache__/views.cpython-311.pyc", False),
        ("requirements-dev.txt", False),
    ],
)
def test_build_context_holds_the_code_and_never_keys(path: str, sent: bool):
    assert is_ignored(path, dockerignore_rules()) is not sent


def test_kubernetes_allowed_hosts_serve_probes_and_scrapes_and_refuse_others():
    """The manifest's DJANGO_ALLOWED_HOSTS, with the pod IP as Kubernetes expands it: the
    probes' Host and Prometheus' (the pod IP and port) are served, any other Host is 400."""
    (container,) = load_manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    allowed = env["DJANGO_ALLOWED_HOSTS"].replace("$(POD_IP)", "127.0.0.1")
    with LiveServer(env={"DJANGO_ALLOWED_HOSTS": allowed}, workers=1) as server:
        probe = container["readinessProbe"]["httpGet"]
        host = {h["name"]: h["value"] for h in probe["httpHeaders"]}
        assert requests.get(server.url + probe["path"], headers=host, timeout=5).status_code == 200
        # Prometheus connects to the pod IP: its Host is that address and the port.
        assert requests.get(server.url + "/metrics", timeout=5).status_code == 200
        refused = requests.get(server.url + "/healthz", headers={"Host": "evil.example"}, timeout=5)
        assert refused.status_code == 400
        assert refused.json() == {"detail": HOST_NOT_SERVED}
