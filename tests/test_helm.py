"""Static checks of deploy/helm/values.yaml for the official Dagster Helm chart.

No Kubernetes cluster or ``helm`` binary here, so these tests check what can be checked: the values
use the chart's keys, agree with the code location and with ``dagster.yaml``'s queue policy, and
the ``dagster-k8s/config`` run tags the code sets, merged by dagster-k8s exactly as
``K8sRunLauncher`` merges them, put Whisper runs on GPU nodes and every other run on CPU nodes.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import yaml
from dagster._config import process_config
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._serdes.config_class import class_from_code_pointer
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import UserDefinedDagsterK8sConfig, get_user_defined_k8s_config

from podcast_assets.jobs import enrichment_job, episode_job
from podcast_assets.k8s import POOL_LABEL
from podcast_core.discovery import EpisodeRequest
from sensors.rss import run_request

REPO = Path(__file__).resolve().parents[1]
VALUES = yaml.safe_load((REPO / "deploy" / "helm" / "values.yaml").read_text())
DEV_INSTANCE = yaml.safe_load((REPO / "dagster.yaml").read_text())

# Top-level keys of the chart's values schema (helm/dagster/schema/.../values.py upstream).
CHART_KEYS = {
    "dagsterWebserver", "dagster-user-deployments", "postgresql",
    "generatePostgresqlPasswordSecret", "generateCeleryConfigSecret", "rabbitmq", "redis",
    "flower", "ingress", "imagePullSecrets", "computeLogManager", "scheduler", "runLauncher",
    "pythonLogs", "dagsterDaemon", "busybox", "migrate", "telemetry", "serviceAccount", "global",
    "retention", "additionalInstanceConfig", "concurrency",
}  # fmt: skip
K8S_LAUNCHER_KEYS = {
    "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile",
    "envConfigMaps", "envSecrets", "envVars", "volumeMounts", "volumes", "labels",
    "failPodOnRunFailure", "resources", "schedulerName", "securityContext", "runK8sConfig",
}  # fmt: skip
RUN_K8S_CONFIG_KEYS = {
    "containerConfig": "container_config",
    "podSpecConfig": "pod_spec_config",
    "podTemplateSpecMetadata": "pod_template_spec_metadata",
    "jobSpecConfig": "job_spec_config",
    "jobMetadata": "job_metadata",
}


def _launcher() -> dict[str, Any]:
    return VALUES["runLauncher"]["config"]["k8sRunLauncher"]


def _placement(tags: dict[str, str]) -> K8sContainerContext:
    """What K8sRunLauncher runs a run with these tags with (its default merged with the tags)."""
    default = {RUN_K8S_CONFIG_KEYS[k]: v for k, v in _launcher()["runK8sConfig"].items()}
    launcher = K8sContainerContext(run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(default))
    from_tags = K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(tags))
    return launcher.merge(from_tags)


def _node_selector(context: K8sContainerContext) -> dict[str, str]:
    spec = context.run_k8s_config.pod_spec_config
    return spec.get("node_selector") or spec.get("nodeSelector") or {}


def _string_tags(tags: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in tags.items()}


def test_values_use_only_chart_keys():
    assert set(VALUES) <= CHART_KEYS, set(VALUES) - CHART_KEYS
    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    assert set(_launcher()) <= K8S_LAUNCHER_KEYS, set(_launcher()) - K8S_LAUNCHER_KEYS
    assert set(_launcher()["runK8sConfig"]) <= set(RUN_K8S_CONFIG_KEYS)
    assert VALUES["computeLogManager"]["type"] == "S3ComputeLogManager"
    assert VALUES["computeLogManager"]["config"]["s3ComputeLogManager"]["bucket"]
    assert VALUES["postgresql"]["enabled"] is False
    assert VALUES["dagsterDaemon"]["runCoordinator"]["type"] == "CustomRunCoordinator"


def test_code_location_is_this_project():
    (deployment,) = VALUES["dagster-user-deployments"]["deployments"]
    module = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", module]
    # Settings and secrets reach run pods, not only the code server.
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    names = {s["name"] for s in deployment["envSecrets"]}
    assert names and names == {s["name"] for s in _launcher()["envSecrets"]}
    # The webserver and the daemon load the instance, which names this project's coordinator,
    # and read step logs from S3 with the same credentials as the runs.
    for service in ("dagsterWebserver", "dagsterDaemon"):
        assert VALUES[service]["image"] == deployment["image"], service
        assert VALUES[service]["envSecrets"] == deployment["envSecrets"], service


def test_code_server_and_runs_share_the_data_directory():
    # The catalog the sensor reads on the code server is the one run pods and feed_intake_job
    # write: the same claim mounted at PODCAST_DATA_DIR in both.
    (deployment,) = VALUES["dagster-user-deployments"]["deployments"]
    data_dir = next(
        line.split("=", 1)[1].strip()
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if "PODCAST_DATA_DIR=" in line
    ).split()[0]
    for spec in (deployment, _launcher()):
        mounts = {m["mountPath"]: m["name"] for m in spec["volumeMounts"]}
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in spec["volumes"]
            if "persistentVolumeClaim" in v
        }
        assert claims[mounts[data_dir]] == "podcast-data"


def test_queue_monitoring_and_retries_match_dagster_yaml():
    custom = VALUES["dagsterDaemon"]["runCoordinator"]["config"]["customRunCoordinator"]
    coordinator = DEV_INSTANCE["run_coordinator"]
    assert (custom["module"], custom["class"]) == (coordinator["module"], coordinator["class"])
    # The class is importable and accepts the queue config the chart renders for it.
    cls = class_from_code_pointer(custom["module"], custom["class"])
    assert issubclass(cls, QueuedRunCoordinator)
    assert process_config(cls.config_type(), custom["config"]).success
    runs = DEV_INSTANCE["concurrency"]["runs"]
    assert custom["config"] == {
        "max_concurrent_runs": runs["max_concurrent_runs"],
        "tag_concurrency_limits": runs["tag_concurrency_limits"],
    }
    for helm_key, yaml_key in (("runMonitoring", "run_monitoring"), ("runRetries", "run_retries")):
        for key, value in DEV_INSTANCE[yaml_key].items():
            assert VALUES["dagsterDaemon"][helm_key][_snake_to_camel(key)] == value, key


def _snake_to_camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def test_whisper_runs_go_to_gpu_nodes_and_everything_else_to_cpu_nodes():
    whisper = _placement(_string_tags(episode_job.tags))
    assert _node_selector(whisper) == {POOL_LABEL: "gpu"}
    limits = whisper.run_k8s_config.container_config["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"
    tolerations = whisper.run_k8s_config.pod_spec_config["tolerations"]
    assert any(t["key"] == "nvidia.com/gpu" for t in tolerations)

    # What the RSS sensor requests for a publisher-transcript episode, laid over the job's tags
    # as the sensor daemon does; enrichment runs never had the GPU tag.
    request = run_request(EpisodeRequest(key="feed-a--0123456789ab", needs_whisper=False))
    published = _placement({**_string_tags(episode_job.tags), **request.tags})
    enrichment = _placement(_string_tags(enrichment_job.tags))
    for context in (published, enrichment):
        assert _node_selector(context) == {POOL_LABEL: "cpu"}
        resources = context.run_k8s_config.container_config.get("resources", {})
        assert "nvidia.com/gpu" not in resources.get("limits", {})


def _items(value: Any, path: str = ""):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _items(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _items(inner, f"{path}[{index}]")
    else:
        yield path, value


def test_no_secret_values_in_values_file():
    # Secrets are Kubernetes Secrets referenced by name; no password or key is a value here.
    secret_like = ("password", "secret_key", "secretkey", "access_key", "accesskey", "api_key")
    leaks = [
        path
        for path, value in _items(VALUES)
        if any(word in path.lower().rsplit(".", 1)[-1] for word in secret_like) and value
    ]
    assert leaks == []
    assert VALUES["global"]["postgresqlSecretName"]
