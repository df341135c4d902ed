"""Kubernetes placement of runs (read only by ``K8sRunLauncher``; other launchers ignore it).

Runs that may run Whisper carry :data:`WHISPER_K8S_TAGS`: a ``dagster-k8s/config`` run tag that
puts their pod on a GPU node and requests one GPU. Every other run gets the launcher's default
``runK8sConfig`` (CPU nodes) from ``deploy/helm/values.yaml``. The node label is the contract
between the two: label GPU nodes ``podcast.dev/pool=gpu`` and CPU nodes ``podcast.dev/pool=cpu``.
"""

import json

K8S_CONFIG_TAG = "dagster-k8s/config"
POOL_LABEL = "podcast.dev/pool"

WHISPER_K8S_CONFIG = {
    "pod_spec_config": {
        "node_selector": {POOL_LABEL: "gpu"},
        # GPU node pools are usually tainted so that only pods asking for a GPU land there.
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    },
    "container_config": {
        "resources": {
            "requests": {"cpu": "2", "memory": "6Gi"},
            "limits": {"nvidia.com/gpu": "1", "memory": "12Gi"},
        },
    },
}

WHISPER_K8S_TAGS = {K8S_CONFIG_TAG: json.dumps(WHISPER_K8S_CONFIG, sort_keys=True)}
"""Run tags for Whisper runs; merged over the launcher's CPU default by ``K8sRunLauncher``."""

PUBLISHED_K8S_TAGS = {
    K8S_CONFIG_TAG: json.dumps({"pod_spec_config": {"node_selector": {POOL_LABEL: "cpu"}}})
}
"""Run tags for runs that only fetch a publisher transcript: back on CPU nodes.

``episode_job`` defaults to the Whisper tags (a run launched from the UI may need Whisper); a run
request overrides a job tag with the same key, so these replace them.
"""
