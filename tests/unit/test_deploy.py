"""The deployment (deploy/k8s, deploy/nginx-rtmp) agrees with the code, the README and
docker-compose.yml."""

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import ValidationError

from services.gateway.settings import GatewaySettings
from services.streams.settings import StreamsSettings
from services.webhooks.settings import WebhooksSettings
from vitrine import nats_auth, nginx_rtmp
from vitrine.services import SERVICES, spec

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
OUR_IMAGE = f"vitrine:{VERSION}"  # built from deploy/Dockerfile; overlays may set their registry
# Beside the resources, never among them: applying again would overwrite the real Secret.
EXAMPLES = {"secret.example.yaml", "nats-secret.example.yaml"}
# Kustomize replacements, listed under `replacements`: not manifests.
REPLACEMENTS = {"migrate-job-name.yaml"}
MIGRATE_JOB = "vitrine-migrate-release"  # named vitrine-migrate-<tag> by the build
REQUIRED = {
    "DATABASE_URL",
    "NATS_URL",
    "REDIS_URL",
    "JWT_SECRET",
    "VITRINE_SECRET_KEY",
    "RTMP_CALLBACK_SECRET",
}
SECRETS = {
    "DATABASE_URL", "JWT_SECRET", "VITRINE_SECRET_KEY", "RTMP_CALLBACK_SECRET",
    "WOOCOMMERCE_WEBHOOK_SECRET",
    "SHOPIFY_WEBHOOK_SECRET", "SMTP_URL", "VAPID_PRIVATE_KEY",
}  # fmt: skip
WORKLOADS = {"Deployment", "StatefulSet", "Job"}


def _kustomization() -> dict:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def _manifests() -> list[dict]:
    docs = []
    for name in _kustomization()["resources"]:
        docs += [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]
    return docs


def _one(kind: str, name: str) -> dict:
    found = [d for d in _manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _pod(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def _containers(pod: dict) -> list[dict]:
    return pod.get("initContainers", []) + pod["containers"]


def _config() -> dict[str, str]:
    return _one("ConfigMap", "vitrine-config")["data"]


def _example_secret() -> dict:
    (secret,) = yaml.safe_load_all((K8S / "secret.example.yaml").read_text())
    return secret


def _secret() -> dict[str, str]:
    return _example_secret()["stringData"]


def _k8s_env() -> dict[str, str]:
    config, secret = _config(), _secret()
    assert not set(config) & set(secret), "a variable is both in the ConfigMap and the Secret"
    return config | secret


def _vitrine_containers() -> list[tuple[dict, dict]]:
    """(workload, container) for every container running our image."""
    return [
        (doc, container)
        for doc in _manifests()
        if doc["kind"] in WORKLOADS
        for container in _containers(_pod(doc))
        if container["image"].split(":")[0] == OUR_IMAGE.split(":")[0]
    ]


def _readme_configuration() -> set[str]:
    """The backticked names in the first column of the README's Configuration table."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("|") and not set(line) <= set("|- "):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", line.split("|")[1]))
    assert names, "no Configuration table found in README.md"
    return names


def _without_comments(conf: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in conf.splitlines())


def _nats_conf() -> str:
    return _without_comments(_one("ConfigMap", "nats-config")["data"]["nats.conf"])


def _setting(conf: str, name: str) -> str:
    """The value of `name: value` in a NATS configuration."""
    match = re.search(rf"^\s*{name}\s*:\s*(\S+)\s*$", conf, re.MULTILINE)
    assert match, f"no {name}"
    return match[1]


def _block(conf: str, name: str) -> str:
    """The body of `name { ... }` in a NATS configuration."""
    match = re.search(rf"^\s*{name}\s*\{{", conf, re.MULTILINE)
    assert match, f"no {name} block"
    depth, start = 1, match.end()
    for i in range(start, len(conf)):
        depth += {"{": 1, "}": -1}.get(conf[i], 0)
        if depth == 0:
            return conf[start:i]
    raise AssertionError(f"unclosed {name} block")


def test_kustomization_lists_every_manifest_and_each_parses():
    listed = _kustomization()["resources"]
    assert len(listed) == len(set(listed))
    for name in listed:
        assert (K8S / name).is_file(), f"{name} is listed in kustomization.yaml but missing"
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"} - EXAMPLES
    on_disk -= REPLACEMENTS
    assert [entry["path"] for entry in _kustomization()["replacements"]] == sorted(REPLACEMENTS)
    assert on_disk == set(listed), "a manifest in deploy/k8s is not in kustomization.yaml"
    for doc in _manifests():
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "vitrine", doc["metadata"]["name"]
    assert _kustomization()["namespace"] == "vitrine"


def test_every_variable_set_is_documented_in_the_readme():
    undocumented = set(_k8s_env()) - _readme_configuration()
    assert not undocumented, f"add to README.md's Configuration table: {sorted(undocumented)}"


def test_required_variables_are_documented_and_set():
    assert _readme_configuration() >= REQUIRED
    assert set(_k8s_env()) >= REQUIRED


def test_variables_match_docker_compose():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert set(_k8s_env()) == set(compose["x-vitrine"]["environment"])
    for _, container in _vitrine_containers():
        # Everything comes from the two shared objects, as in compose's x-vitrine, but for a
        # service's own user on the bus.
        assert {e["name"] for e in container.get("env", [])} <= {"NATS_USER", "NATS_PASSWORD"}
        assert container["envFrom"] == [
            {"configMapRef": {"name": "vitrine-config"}},
            {"secretRef": {"name": "vitrine-secrets"}},
        ]


def test_each_service_connects_to_the_bus_as_its_own_user_and_nobody_else_does():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    served = 0
    for _, container in _vitrine_containers():
        if container.get("args", [""])[0] != "serve":
            assert "env" not in container  # migrations never reach the bus
            continue
        served += 1
        name = container["args"][1]
        env = {e["name"]: e for e in container["env"]}
        assert env["NATS_USER"]["value"] == name
        assert env["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "vitrine-nats", "key": nats_auth.password_variable(name),
        }  # fmt: skip
        assert compose[name]["environment"]["NATS_USER"] == name
        assert nats_auth.password_variable(name) in compose[name]["environment"]["NATS_PASSWORD"]
    assert served == len(nats_auth.USERS)
    # The servers: the generated users, their passwords from the vitrine-nats Secret.
    config = _one("ConfigMap", "nats-config")["data"]
    generated = nats_auth.conf_file(subject_root="live", stream="LIVE")
    assert config["auth.conf"] == generated == (ROOT / "deploy/nats/auth.conf").read_text()
    for conf in (config["nats.conf"], (ROOT / "deploy/nats/nats.conf").read_text()):
        assert "include ./auth.conf" in _without_comments(conf)
    (nats,) = _pod(_one("StatefulSet", "nats"))["containers"]
    assert {"secretRef": {"name": "vitrine-nats"}} in nats["envFrom"]
    (example,) = yaml.safe_load_all((K8S / "nats-secret.example.yaml").read_text())
    assert example["metadata"]["name"] == "vitrine-nats"
    expected = {nats_auth.password_variable(user) for user in nats_auth.all_users()}
    assert set(example["stringData"]) == expected
    assert all("replace" in value for value in example["stringData"].values())
    assert set(compose["nats"]["environment"]) == expected
    assert all(not port.startswith("4222") for port in compose["nats"]["ports"])  # not open


@pytest.mark.parametrize(
    "password", ["replace-me", "vitrine-dev-nats-streams-but-long-enough", None]
)
def test_a_service_refuses_the_bus_without_its_own_real_password_in_production(password):
    env = _k8s_env() | {name: "x" * 48 for name in SECRETS - {"DATABASE_URL"}}
    env |= {"NATS_USER": "streams"} | ({"NATS_PASSWORD": password} if password else {})
    settings = StreamsSettings(_env_file=None, **_settings_kwargs(env))
    with pytest.raises(ValueError, match="never open in production"):
        settings.bus_options()
    real = StreamsSettings(_env_file=None, **_settings_kwargs(env | {"NATS_PASSWORD": "p" * 32}))
    assert real.bus_options()["user"] == "streams"


def test_the_secret_is_an_example_to_create_once_never_a_resource_that_overwrites_it():
    assert not [doc for doc in _manifests() if doc["kind"] == "Secret"]
    assert not EXAMPLES & set(_kustomization()["resources"])
    example = _example_secret()
    assert (example["kind"], example["metadata"]["name"]) == ("Secret", "vitrine-secrets")
    assert example["metadata"]["namespace"] == "vitrine"
    for doc, container in _vitrine_containers():  # what every pod reads is that Secret
        refs = [ref["secretRef"]["name"] for ref in container["envFrom"] if "secretRef" in ref]
        assert refs == ["vitrine-secrets"], doc["metadata"]["name"]
    readme = (ROOT / "README.md").read_text()
    assert "kubectl apply -f" in readme and "secret.example.yaml" in readme


def test_secrets_are_in_the_secret_with_placeholders_to_replace():
    assert set(_secret()) == SECRETS
    for name, value in _secret().items():
        assert "replace" in value, f"{name} does not look like a placeholder"
    assert _config()["VITRINE_ENV"] == "production"


def _settings_kwargs(env: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in env.items()}


@pytest.mark.parametrize("settings", [StreamsSettings, GatewaySettings, WebhooksSettings])
def test_the_placeholder_secrets_are_refused_in_production(settings):
    with pytest.raises(ValidationError, match="32\\+ characters"):
        settings(_env_file=None, **_settings_kwargs(_k8s_env()))


@pytest.mark.parametrize("settings", [StreamsSettings, GatewaySettings, WebhooksSettings])
def test_the_configuration_loads_once_the_secrets_are_replaced(settings):
    env = _k8s_env() | {name: "x" * 48 for name in SECRETS - {"DATABASE_URL"}}
    loaded = settings(_env_file=None, **_settings_kwargs(env))
    assert loaded.vitrine_env == "production"
    assert loaded.nats_url == _config()["NATS_URL"]


def test_images_are_pinned_to_a_tag():
    images = [
        c["image"] for d in _manifests() if d["kind"] in WORKLOADS for c in _containers(_pod(d))
    ]
    assert images
    for image in images:
        tag = image.rpartition("/")[2].partition(":")[2]
        assert tag, f"{image} has no tag"
        assert tag != "latest", f"{image} is not pinned"
        # A patch release, not a moving major or minor tag.
        assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"{image} is not pinned to a release"
    # The release's version, in one place for overlays to change.
    (ours,) = [image for image in _kustomization()["images"] if image["name"] == "vitrine"]
    assert ours["newTag"] == VERSION


def test_workloads_run_as_non_root_with_a_read_only_root():
    for doc in _manifests():
        if doc["kind"] not in WORKLOADS:
            continue
        pod = _pod(doc)
        for container in _containers(pod):
            where = f"{doc['kind']} {doc['metadata']['name']}/{container['name']}"
            context = pod.get("securityContext", {}) | container.get("securityContext", {})
            assert context.get("runAsNonRoot") is True, where
            # A named USER (the Dockerfile's) cannot be checked by the kubelet: need a number.
            assert context.get("runAsUser", 0) > 0, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            assert "requests" in container["resources"], where
            assert "limits" in container["resources"], where


def test_long_running_workloads_have_readiness_and_liveness_probes():
    for doc in _manifests():
        if doc["kind"] in {"Deployment", "StatefulSet"}:
            for container in _pod(doc)["containers"]:
                assert "readinessProbe" in container, doc["metadata"]["name"]
                assert "livenessProbe" in container, doc["metadata"]["name"]


def test_vitrine_containers_match_the_cli_and_the_dockerfile():
    useradd = re.search(r"--uid (\d+)", (ROOT / "deploy" / "Dockerfile").read_text())
    assert useradd, "the Dockerfile no longer creates its user with a fixed uid"
    uid = int(useradd[1])
    commands = {}
    for doc, container in _vitrine_containers():
        assert container["image"] == OUR_IMAGE
        context = _pod(doc).get("securityContext", {}) | container.get("securityContext", {})
        assert context["runAsUser"] == uid
        commands[doc["metadata"]["name"]] = container["args"]
    assert commands == {
        MIGRATE_JOB: ["migrate"],
        "streams": ["serve", "streams"],
        "products": ["serve", "products"],
        "chat": ["serve", "chat"],
        "analytics": ["serve", "analytics"],
        "notifications": ["serve", "notifications"],
        "webhooks": ["serve", "webhooks"],
        "gateway": ["serve", "gateway"],
    }
    served = {args[1] for args in commands.values() if args[0] == "serve"}
    assert served == set(SERVICES), "every service `vitrine serve` knows needs a Deployment"


@pytest.mark.parametrize(
    ("service", "port_variable"),
    [
        ("streams", "STREAMS_PORT"),
        ("products", "PRODUCTS_PORT"),
        ("chat", "CHAT_PORT"),
        ("analytics", "ANALYTICS_PORT"),
        ("notifications", "NOTIFICATIONS_PORT"),
        ("webhooks", "WEBHOOKS_PORT"),
        ("gateway", "GATEWAY_PORT"),
    ],
)
def test_services_probe_and_expose_their_configured_port(service, port_variable):
    port = int(_config()[port_variable])
    deployment = _one("Deployment", service)
    (container,) = _pod(deployment)["containers"]
    (container_port,) = container["ports"]
    assert container_port["containerPort"] == port
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/readyz",
        "port": container_port["name"],
    }
    assert container["livenessProbe"]["httpGet"] == {
        "path": "/healthz",
        "port": container_port["name"],
    }
    (service_port,) = _one("Service", service)["spec"]["ports"]
    assert service_port["port"] == port
    assert service_port["targetPort"] in (port, container_port["name"])
    assert _config()["VITRINE_BIND"] == "0.0.0.0"  # the CLI's default 127.0.0.1 is unreachable


def test_replicas_and_disruption_budgets():
    # The autoscaler owns the gateway's count; a `replicas` would reset it on every apply.
    gateway = _one("Deployment", "gateway")
    assert "replicas" not in gateway["spec"]
    scaler = _one("HorizontalPodAutoscaler", "gateway")["spec"]
    assert scaler["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": "gateway"}  # fmt: skip
    assert 2 <= scaler["minReplicas"] < scaler["maxReplicas"]
    assert {m["resource"]["name"] for m in scaler["metrics"]} == {"cpu"}
    # Safe: only the holder of the outbox relay's advisory lock publishes.
    assert _one("Deployment", "streams")["spec"]["replicas"] == 2
    for doc in _manifests():
        if doc["kind"] != "Deployment" or doc["spec"].get("replicas", 2) < 2:
            continue  # redis: one pod, which a budget would keep from ever being drained
        budget = _one("PodDisruptionBudget", doc["metadata"]["name"])["spec"]
        assert budget["selector"]["matchLabels"] == doc["spec"]["selector"]["matchLabels"]
        assert budget.get("minAvailable") == 1 or budget.get("maxUnavailable") == 1


def test_the_migrate_job_gates_every_service_with_a_schema():
    assert _one("Job", MIGRATE_JOB)["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "migrate"
    ]
    for doc in _manifests():
        if doc["kind"] != "Deployment" or doc["metadata"]["name"] not in SERVICES:
            continue
        name = doc["metadata"]["name"]
        waits = [c["args"] for c in _pod(doc).get("initContainers", [])]
        if spec(name).migrate is None:
            assert waits == [], name  # the gateway keeps nothing in PostgreSQL
            continue
        (args,) = waits
        assert args[:2] == ["migrate", "--wait"] and args[-1] == name, name
        assert "--timeout" in args, name


def test_only_the_gateway_is_reachable_from_outside():
    policies = {d["metadata"]["name"]: d["spec"] for d in _manifests()
                if d["kind"] == "NetworkPolicy"}  # fmt: skip
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    open_to_all = [
        policy["podSelector"] for policy in policies.values()
        for rule in policy.get("ingress", []) if "from" not in rule
    ]  # fmt: skip
    assert open_to_all == [{"matchLabels": {"app.kubernetes.io/name": "gateway"}}]
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in _manifests()
        if d["kind"] in {"Deployment", "StatefulSet"}
    }
    selected = {
        name
        for policy in policies.values()
        if policy["podSelector"] and policy.get("ingress")
        for name, labels in pods.items()
        if _selects(policy["podSelector"], labels)
    }
    assert selected == set(pods), "a workload no policy lets anything reach"


def _selects(selector: dict, labels: dict) -> bool:
    assert set(selector) <= {"matchLabels", "matchExpressions"}
    matched = all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        matched &= labels.get(expression["key"]) in expression["values"]
    return matched


def test_the_service_monitor_scrapes_every_vitrine_service():
    (monitor,) = yaml.safe_load_all((K8S / "monitoring" / "servicemonitor.yaml").read_text())
    assert monitor["kind"] == "ServiceMonitor"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    scraped = {
        doc["metadata"]["name"]
        for doc in _manifests()
        if doc["kind"] == "Service"
        and _selects(monitor["spec"]["selector"], doc["metadata"]["labels"])
    }
    assert scraped == {name for name in SERVICES if _has(("Deployment", name))}
    for name in scraped:
        ports = {port["name"] for port in _one("Service", name)["spec"]["ports"]}
        assert endpoint["port"] in ports, name


def _has(kind_and_name: tuple[str, str]) -> bool:
    return any((d["kind"], d["metadata"]["name"]) == kind_and_name for d in _manifests())


def test_the_stream_is_replicated_on_every_nats_server():
    assert int(_config()["JETSTREAM_REPLICAS"]) == _one("StatefulSet", "nats")["spec"]["replicas"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl (kustomize) here")
@pytest.mark.parametrize("directory", [K8S, K8S / "monitoring"])
def test_kustomize_builds_the_manifests(directory: Path):
    built = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    docs = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    assert docs and all(doc["metadata"].get("namespace") in ("vitrine", None) for doc in docs)
    for doc in docs:
        for container in _containers(_pod(doc)) if doc["kind"] in WORKLOADS else []:
            assert not container["image"].endswith(":latest"), container["image"]
    jobs = [doc["metadata"]["name"] for doc in docs if doc["kind"] == "Job"]
    # One Job per release: applying a new image creates a new Job instead of being refused.
    assert jobs == ([f"vitrine-migrate-{VERSION}"] if directory == K8S else [])


@pytest.mark.parametrize(
    ("variable", "scheme"), [("NATS_URL", "nats"), ("REDIS_URL", "redis"), ("STREAMS_URL", "http")]
)
def test_service_urls_point_at_a_service_in_the_manifests(variable, scheme):
    url = urlsplit(_config()[variable])
    assert url.scheme == scheme
    assert url.hostname
    service = _one("Service", url.hostname)
    assert url.port in {p["port"] for p in service["spec"]["ports"]}
    selector = service["spec"]["selector"].items()
    pods = [
        d["spec"]["template"]["metadata"]["labels"].items()
        for d in _manifests()
        if d["kind"] in {"Deployment", "StatefulSet"}
    ]
    assert any(labels >= selector for labels in pods), f"{url.hostname} selects no pod"


def test_nats_runs_jetstream_on_file_storage_with_sync_always():
    jetstream = _block(_nats_conf(), "jetstream")
    assert _setting(jetstream, "sync_interval") == "always"
    store_dir = _setting(jetstream, "store_dir")
    nats = _one("StatefulSet", "nats")
    (container,) = _pod(nats)["containers"]
    assert container["image"].startswith("nats:2.10.")
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    (claim,) = nats["spec"]["volumeClaimTemplates"]
    assert mounts[claim["metadata"]["name"]] == store_dir, "JetStream must store on the PVC"
    # The compose configuration is just as durable.
    compose_conf = _without_comments((ROOT / "deploy" / "nats" / "nats.conf").read_text())
    compose_jetstream = _block(compose_conf, "jetstream")
    assert _setting(compose_jetstream, "sync_interval") == "always"


def test_nats_is_a_three_node_cluster_routed_through_the_headless_service():
    nats = _one("StatefulSet", "nats")["spec"]
    assert nats["replicas"] == 3  # JetStream's quorum survives one server down
    assert nats["podManagementPolicy"] == "Parallel"  # the cluster forms only once all start
    headless = _one("Service", nats["serviceName"])["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True
    conf = _nats_conf()
    assert _setting(conf, "server_name") == "$POD_NAME"  # unique and stable per pod
    routes = re.findall(r"nats://([\w.-]+):(\d+)", _block(conf, "cluster"))
    # One route per pod, by the stable DNS name the headless Service gives it.
    expected = [(f"nats-{i}.{nats['serviceName']}", "6222") for i in range(nats["replicas"])]
    assert sorted(routes) == expected
    assert 4222 in {p["port"] for p in _one("Service", "nats")["spec"]["ports"]}


# nginx-rtmp (deploy/nginx-rtmp/): its callback secret stays in its configuration.

RTMP_SECRET = "rtmp-secret_0.9~"


def _rendered_nginx_conf(secret: str = RTMP_SECRET) -> str:
    return nginx_rtmp.render_conf(
        callbacks_url="http://127.0.0.1:9/webhooks", secret=secret, rtmp_port=1, http_port=2,
        root=Path("/srv/nginx-rtmp"), host="127.0.0.1",
    )  # fmt: skip


@pytest.mark.parametrize("secret", ["a&b", "a;b", "a b", "a?b", "a/b", "a|b", "a\nb", "é", ""])
def test_the_nginx_conf_refuses_a_callback_secret_start_sh_refuses(secret: str) -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        _rendered_nginx_conf(secret)


def test_start_sh_checks_the_callback_secret_against_the_same_characters() -> None:
    start = (ROOT / "deploy" / "nginx-rtmp" / "start.sh").read_text()
    allowed = re.search(r"\*\[!([^\]]+)\]\*\)", start)
    assert allowed is not None, "start.sh no longer checks RTMP_CALLBACK_SECRET's characters"
    assert nginx_rtmp.SAFE_SECRET.pattern == f"[{allowed.group(1)}]+"


def test_record_done_gets_the_callback_url_from_its_environment_and_logs_outside_recordings():
    conf = _rendered_nginx_conf()
    exec_line = next(line for line in conf.splitlines() if "exec_record_done" in line)
    assert RTMP_SECRET not in exec_line  # nginx logs exec command lines; ps shows them
    assert "2>>/srv/nginx-rtmp/logs/record-done.log;" in exec_line
    assert "recordings" not in exec_line.split("2>>")[1]
    assert (
        "\nenv RECORD_DONE_URL=http://127.0.0.1:9/webhooks/nginx-rtmp/on_record_done"
        f"?secret={RTMP_SECRET};\n" in conf
    )
    deployed = (ROOT / "deploy" / "nginx-rtmp" / "nginx.conf").read_text()
    assert "2>>/var/log/nginx/record-done.log;" in deployed
    script = (ROOT / "deploy" / "nginx-rtmp" / "record-done.sh").read_text()
    assert "RECORD_DONE_URL" in script and "--config -" in script and "wget" not in script


def test_nginx_rtmp_does_not_log_at_info_where_notify_urls_carry_the_secret() -> None:
    levels = re.findall(r"^\s*error_log\s+\S+\s+(\w+);", _rendered_nginx_conf(), re.MULTILINE)
    assert levels and all(level in ("notice", "warn", "error", "crit") for level in levels)


def test_every_alert_reads_metrics_vitrine_serves_and_has_its_runbook():
    (rules,) = yaml.safe_load_all((K8S / "monitoring" / "alerts.yaml").read_text())
    sources = "".join(p.read_text() for p in ROOT.glob("[cs][he]*/**/*.py"))
    runbook = (ROOT / "docs" / "operations.md").read_text()
    dashboard = (ROOT / "deploy" / "grafana" / "vitrine.json").read_text()
    exprs = [rule["expr"] for group in rules["spec"]["groups"] for rule in group["rules"]]
    for group in rules["spec"]["groups"]:
        for rule in group["rules"]:
            assert f"## {rule['alert']}\n" in runbook, rule["alert"]
            assert rule["annotations"]["runbook_url"].endswith("#" + rule["alert"].lower())
    for expr in [*exprs, dashboard]:
        for name in re.findall(r"vitrine_[a-z_]+", expr):
            served = re.sub(r"_(bucket|count|sum)$", "", name).removesuffix("_total")
            assert f'"{served}' in sources, f"{name} is served by no process"
