"""deploy/, the Dockerfile and .dockerignore, checked offline (no Docker daemon, no cluster):
- every Kubernetes object against the Kubernetes schemas (`kubernetes-validate`, strict: an
  unknown field fails), the ConfigMap and Secret that kustomization.yaml generates included;
- deploy/compose.yaml against the Compose Specification's JSON schema
  (tests/fixtures/compose-spec/, Apache-2.0);
- every image pinned (a tag that is not `latest`; the Dockerfile's base by digest too);
- the settings: every variable the code's settings models read is one deploy/ can set, every
  PIPELINE_* variable deploy/ names is one the code reads, and every value deploy/ sets is
  one the models accept;
- what the manifests refer to exists: files, generated keys, probe and scrape ports.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kubernetes_validate import utils as kubernetes
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
MANIFESTS = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "compose.yaml"
ENV_FILE = DEPLOY / "pipeline.env"
SECRETS_EXAMPLE = DEPLOY / "secrets.env.example"
COMPOSE_SCHEMA = Path(__file__).parent / "fixtures" / "compose-spec" / "compose-spec.json"
# The oldest Kubernetes still maintained when this was written, and the newest the package has.
KUBERNETES_VERSIONS = ("1.32.0", kubernetes.latest_version())
VARIABLE = re.compile(r"\bPIPELINE_[A-Z0-9_]+\b")
METRICS_PORT = 9464


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())


def manifests() -> list[dict[str, Any]]:
    """Every object of the kustomization's resources, in their order."""
    return [
        doc
        for resource in kustomization()["resources"]
        for doc in yaml.safe_load_all((DEPLOY / resource).read_text())
        if doc
    ]


def env_lines(path: Path) -> dict[str, str]:
    """KEY=value lines of an env file (kustomize's and compose's format), comments left out."""
    found = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=value: {line!r}"
            found[key.strip()] = value
    return found


def generated() -> list[dict[str, Any]]:
    """The ConfigMap and Secret kustomization.yaml generates (the Secret from the example)."""
    spec = kustomization()
    (config,) = spec["configMapGenerator"]
    (secret,) = spec["secretGenerator"]
    assert secret["envs"] == ["secrets.env"]  # the copy of the example nobody commits
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": config["name"]},
            "data": {k: v for env in config["envs"] for k, v in env_lines(DEPLOY / env).items()},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret["name"]},
            "type": "Opaque",
            "stringData": env_lines(SECRETS_EXAMPLE),
        },
    ]


def containers(objects: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(pod template, container) of every workload."""
    for obj in objects:
        template = obj.get("spec", {}).get("template")
        if template:
            for container in template["spec"]["containers"]:
                yield template, container


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def pipeline_services() -> dict[str, dict[str, Any]]:
    """The services that run this project's image."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if service["image"].startswith("passwordless-pipeline:")
    }


def settings_models() -> list[type[BaseSettings]]:
    """Every settings model of the package with a prefix of its own (pipeline.settings', the
    receiver's, the collectors'...), from each module whose source names BaseSettings."""
    models: list[type[BaseSettings]] = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        if "BaseSettings" not in path.read_text():
            continue
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        models += [
            found
            for found in vars(module).values()
            if inspect.isclass(found)
            and issubclass(found, BaseSettings)
            and found.__module__ == module.__name__
            and found.model_config.get("env_prefix")
        ]
    return models


def code_variables() -> set[str]:
    """The environment variables the settings models read (a nested model reads its own)."""
    found = set()
    for model in settings_models():
        prefix = str(model.model_config.get("env_prefix", ""))
        for name, field in model.model_fields.items():
            nested = isinstance(field.annotation, type) and issubclass(
                field.annotation, BaseSettings
            )
            if not nested:
                found.add(f"{prefix}{(field.alias or name).upper()}")
    return found


def deploy_texts() -> dict[str, str]:
    files = [*DEPLOY.glob("*.*"), *MANIFESTS.glob("*.yaml"), ROOT / "Dockerfile"]
    return {path.name: path.read_text() for path in files}


# -- Kubernetes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_kubernetes_object_is_valid_under_the_schemas(version: str) -> None:
    objects = manifests() + generated()
    assert {obj["kind"] for obj in objects} >= {
        "Namespace",
        "Job",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
    }
    for obj in objects:
        kubernetes.validate(obj, version, strict=True)


def test_the_schema_check_refuses_a_misspelt_field() -> None:
    worker = next(obj for obj in manifests() if obj["metadata"]["name"] == "pipeline-worker")
    worker["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes.ValidationError):
        kubernetes.validate(worker, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_kustomization_names_every_manifest_and_each_file_it_reads() -> None:
    spec = kustomization()
    listed = {DEPLOY / resource for resource in spec["resources"]}
    assert listed == set(MANIFESTS.glob("*.yaml"))
    assert spec["namespace"] == "passwordless"
    images = {image["name"]: image["newTag"] for image in spec["images"]}
    used = {container["image"] for _, container in containers(manifests())}
    assert used == {f"passwordless-pipeline:{images['passwordless-pipeline']}"}
    gitignore = (DEPLOY / "secrets" / ".gitignore").read_text()
    assert "*" in gitignore.splitlines()


def test_the_manifests_refer_to_generated_keys_probes_and_ports_that_exist() -> None:
    config, secret = generated()
    secret_keys = set(secret["stringData"])
    names = {
        name: 0 for name in ("pipeline-worker", "pipeline-receiver", "pipeline-collector-okta")
    }
    for template, container in containers(manifests()):
        assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret_keys
        for volume in template["spec"].get("volumes", []):
            if "secret" in volume:
                assert {item["key"] for item in volume["secret"]["items"]} <= secret_keys
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        for variable in container.get("env", []):
            if variable["name"].endswith("_FILE"):
                assert any(variable["value"].startswith(f"{m}/") for m in mounts), variable
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True
        if container["args"] == ["migrate"]:
            continue
        name = template["metadata"]["labels"]["app.kubernetes.io/name"]
        names[name] += 1
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(METRICS_PORT)
        assert annotations["prometheus.io/path"] == "/metrics"
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports["metrics"] == METRICS_PORT
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert set(names.values()) == {1}
    assert config["data"]["PIPELINE_METRICS_PORT"] == str(METRICS_PORT)


def test_workers_are_no_more_than_partitions_and_each_collector_is_one() -> None:
    from pipeline.settings import Topics

    partitions = int(env_lines(ENV_FILE).get("PIPELINE_TOPIC_PARTITIONS", Topics().partitions))
    by_kind = {(obj["kind"], obj["metadata"]["name"]): obj for obj in manifests()}
    assert 1 <= by_kind["Deployment", "pipeline-worker"]["spec"]["replicas"] <= partitions
    collector = by_kind["Deployment", "pipeline-collector-okta"]["spec"]
    assert collector["replicas"] == 1 and collector["strategy"] == {"type": "Recreate"}
    disruption = {name for kind, name in by_kind if kind == "PodDisruptionBudget"}
    assert {"pipeline-worker", "pipeline-receiver"} <= disruption
    service = by_kind["Service", "pipeline-receiver"]["spec"]
    assert service["selector"] == {"app.kubernetes.io/name": "pipeline-receiver"}
    assert service["ports"] == [{"name": "http", "port": 8088, "targetPort": "http"}]
    for _, container in containers(manifests()):
        assert "requests" in container["resources"] and "memory" in container["resources"]["limits"]


# -- compose --------------------------------------------------------------------------------


def test_the_compose_file_is_valid_under_the_compose_specification() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []
    broken = compose()
    broken["services"]["worker"]["depends_on"]["migrate"]["condition"] = "service_done"
    assert list(validator.iter_errors(broken))  # the check sees a wrong value


def test_the_compose_stack_starts_in_order_and_scales_its_workers() -> None:
    services = compose()["services"]
    assert {
        "kafka",
        "clickhouse",
        "grafana",
        "migrate",
        "worker",
        "receiver",
        "collector-okta",
    } <= set(services)
    worker = services["worker"]
    assert worker["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert worker["depends_on"]["kafka"] == {"condition": "service_healthy"}
    # `--scale worker=N`: no fixed name, no host port
    assert "container_name" not in worker and "ports" not in worker
    assert services["migrate"]["command"] == ["migrate"]
    for name, service in services.items():
        if name != "migrate":
            assert "healthcheck" in service, name
    for name, service in pipeline_services().items():
        assert service["env_file"] == ["pipeline.env"], name
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).exists()
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    for secret in compose()["secrets"].values():
        assert (DEPLOY / secret["file"]).parent == DEPLOY / "secrets"
    for volume in services["grafana"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith(".."):
            assert (DEPLOY / source).is_dir(), source


# -- images -----------------------------------------------------------------------------------


def images() -> dict[str, str]:
    """Every image deploy/ runs, where it is named."""
    found = {f"compose {name}": service["image"] for name, service in compose()["services"].items()}
    found |= {
        f"kubernetes {template['metadata']['labels']['app.kubernetes.io/name']}": c["image"]
        for template, c in containers(manifests())
    }
    return found


def test_every_image_is_pinned_to_a_tag_and_the_base_to_a_digest_too() -> None:
    for where, image in images().items():
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest" and "/" not in tag, f"{where}: {image}"
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert base and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+@sha256:[0-9a-f]{64}", base[1])
    assert re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE) == ["${PYTHON_IMAGE}"] * 2
    plugins = compose()["services"]["grafana"]["environment"]["GF_INSTALL_PLUGINS"]
    assert re.fullmatch(r"grafana-clickhouse-datasource \d+\.\d+\.\d+", plugins)


def test_the_image_runs_as_a_user_and_ships_only_what_it_needs() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    uid = users[-1].split(":")[0]
    for template, _ in containers(manifests()):
        assert str(template["spec"]["securityContext"]["runAsUser"]) == uid
    copied = set(re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.MULTILINE))
    sources = {source for line in copied for source in line.split()}
    assert sources == {"pyproject.toml", "README.md", "pipeline", "schemas", "grafana"}
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".git", ".venv", "var", "tests"} <= set(ignored)
    assert not {"pipeline", "schemas", "grafana"} & set(ignored)


# -- settings -------------------------------------------------------------------------------


def test_every_variable_the_code_reads_is_one_deploy_can_set() -> None:
    documented = set(VARIABLE.findall(ENV_FILE.read_text()))
    set_by_manifests = {
        variable["name"] for _, c in containers(manifests()) for variable in c.get("env", [])
    }
    set_by_compose = {
        name for service in pipeline_services().values() for name in service.get("environment", {})
    }
    variables = code_variables()
    assert {
        "PIPELINE_METRICS_PORT",
        "PIPELINE_WATCHDOG_SECONDS",
        "PIPELINE_RECEIVE_TOKEN",
    } <= variables
    assert variables - documented - set_by_manifests - set_by_compose == set()


def test_every_pipeline_variable_deploy_names_is_one_the_code_reads() -> None:
    variables = code_variables()
    unknown = {
        f"{name}: {found}"
        for name, text in deploy_texts().items()
        for found in VARIABLE.findall(text)
        if found not in variables
    }
    assert unknown == set()


def test_every_value_deploy_sets_is_one_the_settings_accept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.receive.settings import ReceiveSettings
    from pipeline.settings import Settings

    values = dict(env_lines(ENV_FILE))
    for service in pipeline_services().values():
        values |= {
            k: str(v) for k, v in service.get("environment", {}).items() if "${" not in str(v)
        }
    for _, container in containers(manifests()):
        values |= {v["name"]: v["value"] for v in container.get("env", []) if "value" in v}
    values = {name: value for name, value in values.items() if not name.endswith("_FILE")}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.metrics.host == "0.0.0.0" and settings.metrics.port == METRICS_PORT
    assert ReceiveSettings().host == "0.0.0.0"
    monkeypatch.setenv("PIPELINE_METRICS_PORT", "not-a-port")  # the check sees a wrong value
    with pytest.raises(ValueError):
        Settings()
