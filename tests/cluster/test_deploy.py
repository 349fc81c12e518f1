"""The deployment files describe the tested topology (issue 16, item 6): the Kubernetes
example is valid against the API schemas kubernetes-validate ships (offline, strict: an unknown
field fails), and it, the compose file and the Procfile agree with each other and with the
processes tests/cluster starts. Neither Docker nor a Kubernetes cluster runs here: what is not
checked is listed in docs/deployment.md ("What was not run here")."""

import shlex
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.cluster.edge_processes import SHIPPED_NGINX_CONF

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
# A recent Kubernetes among the schemas kubernetes-validate 1.37 bundles.
K8S_VERSION = "1.36.0"
# What the tests start (tests/cluster, this module's neighbours and the bus' tests).
COMPOSE_SERVICES = {
    "nginx", "web", "worker", "beat", "migrate",
    "redis-bus-1", "redis-bus-2", "sentinel-1", "sentinel-2", "sentinel-3",
    "redis-cache", "pgbouncer", "postgres",
}  # fmt: skip
# The WebSocket options every web command shares with the Procfile's (docs/benchmarks.md says
# why each).
WS_OPTIONS = {
    "--ws": "switchboard.websocket:WSProtocol",
    "--ws-per-message-deflate": "false",
    "--ws-max-size": "65536",
    "--ws-ping-interval": "20",
    "--ws-ping-timeout": "20",
}


def _manifests() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def _one(kind: str, name: str) -> dict:
    found = [d for d in _manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def _options(argv: list[str]) -> dict[str, str]:
    """``--name value`` and ``--name=value`` pairs of a command line."""
    out, i = {}, 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
            out[name] = value
        elif arg.startswith("--") and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out[arg] = argv[i + 1]
            i += 1
        elif arg.startswith("--"):
            out[arg] = ""
        i += 1
    return out


@pytest.mark.parametrize("doc", _manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_each_kubernetes_manifest_is_valid_in_strict_mode(doc):
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_strict_validation_refuses_an_unknown_field():
    web = _one("Deployment", "switchboard-web")
    broken = {**web, "spec": {**web["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_web_deployment_is_probed_on_readyz_and_drains_before_it_is_killed():
    web = _one("Deployment", "switchboard-web")
    pod = web["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz?scope=web"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    options = _options(container["command"])
    assert {k: options.get(k) for k in WS_OPTIONS} == WS_OPTIONS
    assert "--proxy-headers" in options
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    graceful = int(options["--timeout-graceful-shutdown"])
    assert pre_stop + graceful < pod["terminationGracePeriodSeconds"]
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    labels = web["spec"]["template"]["metadata"]["labels"]
    pdb = _one("PodDisruptionBudget", "switchboard-web")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = _one("Service", "switchboard-web")
    assert service["spec"]["selector"].items() <= labels.items()


def test_beat_is_exactly_one_and_never_two_during_a_rollout():
    beat = _one("Deployment", "switchboard-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}


def test_every_pod_reads_the_configmap_and_secret_that_exist():
    config = _one("ConfigMap", "switchboard")["data"]
    secret = _one("Secret", "switchboard")["stringData"]
    assert config["DB_POOLER"] == "transaction"
    assert config["REDIS_URL"].startswith("sentinel://")
    assert {"SECRET_KEY", "DATABASE_URL", "METRICS_TOKEN"} <= secret.keys()
    for doc in _manifests():
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
            assert refs == {"switchboard"}, doc["metadata"]["name"]


def test_the_compose_file_names_the_tested_topology():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == COMPOSE_SERVICES
    env = compose["x-app"]["environment"]
    assert env["DB_POOLER"] == "transaction"
    assert env["DATABASE_URL"].split("@", 1)[1].startswith("pgbouncer:")
    sentinels = env["REDIS_URL"].removeprefix("sentinel://").split("/", 1)[0].split(",")
    assert sorted(h.split(":")[0] for h in sentinels) == ["sentinel-1", "sentinel-2", "sentinel-3"]
    assert services["pgbouncer"]["environment"]["PGBOUNCER_POOL_MODE"] == "transaction"
    assert services["beat"]["deploy"]["replicas"] == 1
    assert services["web"]["deploy"]["replicas"] == 2
    sentinel_script = services["sentinel-1"]["command"][-1]
    assert "sentinel monitor bus1 redis-bus-1 6379 2" in sentinel_script
    assert "--replicaof redis-bus-1 6379" in services["redis-bus-2"]["command"]
    web = _options(shlex.split(services["web"]["command"]))
    assert {k: web.get(k) for k in WS_OPTIONS} == WS_OPTIONS
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in services["nginx"]["volumes"]
    # The nginx config names the compose service and port of web.
    assert "server web:8000 " in SHIPPED_NGINX_CONF.read_text()


def test_the_procfile_web_shares_the_websocket_options():
    line = next(ln for ln in (ROOT / "Procfile").read_text().splitlines() if ln.startswith("web:"))
    options = _options(shlex.split(line.removeprefix("web:")))
    assert {k: options.get(k) for k in WS_OPTIONS} == WS_OPTIONS
