"""The code location, its job and the instance configuration load as ``dagster dev`` loads them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MODULE = "podcast_assets.definitions"
HEAVY_MODULES = (
    "torch",
    "transformers",
    "faster_whisper",
    "ctranslate2",
    "sentence_transformers",
    "spacy",
)
INGESTION = {"episode_metadata", "raw_audio", "transcript"}
ENRICHMENT = {"summary", "grounded_insights", "knowledge_graph", "embeddings"}
DIGEST = {"weekly_digest", "digest_audio", "digest_feed"}
ASSETS = INGESTION | ENRICHMENT | DIGEST | {"corpus_graph", "corpus"}

# Imports the code location in a fresh interpreter and prints what the parent test checks.
PROBE = f"""
import json, sys, time
started = time.perf_counter()
import {MODULE} as module
seconds = time.perf_counter() - started
specs = module.defs.resolve_all_asset_specs()
print(json.dumps({{
    "seconds": seconds,
    "heavy": [m for m in {HEAVY_MODULES!r} if m in sys.modules],
    "code_versions": {{spec.key.to_user_string(): spec.code_version for spec in specs}},
}}))
"""


def _probe_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The parent's environment without any PODCAST_* setting, on an empty data directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODCAST_")}
    env.update(
        PODCAST_DATA_DIR=str(data_dir),
        DAGSTER_HOME=str(data_dir / "dagster_home"),
        PYTHONWARNINGS="ignore",
        **extra,
    )
    return env


def _probe(tmp_path: Path, name: str, **extra: str) -> subprocess.Popen:
    data_dir = tmp_path / name
    data_dir.mkdir()
    return subprocess.Popen(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=_probe_env(data_dir, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    from podcast_assets.definitions import defs

    return defs


def test_code_location_imports_fast_without_ml_libraries(tmp_path):
    result = _result(_probe(tmp_path, "light"))
    print(f"import {MODULE}: {result['seconds']:.2f} s")
    assert result["heavy"] == [], f"imported at load time: {result['heavy']}"
    assert result["seconds"] < 10, result["seconds"]


def test_definitions_load_and_describe_every_asset(defs):
    dg.Definitions.validate_loadable(defs)
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    assert set(specs) == ASSETS
    # Corpus-wide assets are unpartitioned: one graph, one database, one digest feed of all weeks.
    for name in ("corpus_graph", "corpus", "digest_feed"):
        assert specs[name].partitions_def is None, name
    for name, spec in specs.items():
        partitions = spec.partitions_def
        if name in INGESTION | ENRICHMENT:
            assert isinstance(partitions, dg.DynamicPartitionsDefinition), name
            assert partitions.name == "episodes", name
        elif name in {"weekly_digest", "digest_audio"}:
            assert isinstance(partitions, dg.WeeklyPartitionsDefinition), name
        assert spec.group_name and spec.group_name != "default", name
        assert spec.kinds, name
        assert spec.description and spec.description.strip(), name
        assert spec.code_version, name


def test_whisper_model_changes_only_the_transcript_code_version(tmp_path):
    tiny = _probe(tmp_path, "tiny", PODCAST_WHISPER_MODEL="tiny.en")
    small = _probe(tmp_path, "small", PODCAST_WHISPER_MODEL="small")
    tiny_again = _probe(tmp_path, "tiny_again", PODCAST_WHISPER_MODEL="tiny.en")
    tiny, small, tiny_again = (_result(p)["code_versions"] for p in (tiny, small, tiny_again))

    assert set(tiny) == set(small) == ASSETS
    # Stable across processes: restarting the code server does not mark transcripts stale.
    assert tiny == tiny_again
    assert tiny["transcript"] != small["transcript"]
    assert {k: v for k, v in tiny.items() if k != "transcript"} == {
        k: v for k, v in small.items() if k != "transcript"
    }


def test_summarizer_change_marks_only_summaries_stale(tmp_path):
    bart = _result(_probe(tmp_path, "bart", PODCAST_SUMMARY_BACKEND="transformers"))
    extractive = _result(_probe(tmp_path, "ext", PODCAST_SUMMARY_BACKEND="extractive"))
    changed = {k for k in ASSETS if bart["code_versions"][k] != extractive["code_versions"][k]}
    assert changed == {"summary"}
    minilm = _result(_probe(tmp_path, "emb", PODCAST_EMBEDDING_MODEL="packaged:all-MiniLM-L6-v2"))
    changed = {k for k in ASSETS if bart["code_versions"][k] != minilm["code_versions"][k]}
    assert changed == {"grounded_insights", "knowledge_graph", "embeddings", "corpus_graph"}


def test_episode_job_runs_in_process_in_the_whisper_queue_unless_the_sensor_says_otherwise(
    defs,
):
    from podcast_assets.jobs import PUBLISHED_QUEUE, QUEUE_TAG, WHISPER_QUEUE
    from podcast_core.discovery import EpisodeRequest
    from sensors.rss import run_request

    job = defs.resolve_job_def("episode_job")
    assert job.executor_def is dg.in_process_executor
    assert job.run_tags[QUEUE_TAG] == WHISPER_QUEUE
    assert {key.to_user_string() for key in job.asset_layer.selected_asset_keys} == INGESTION
    sensor = defs.resolve_sensor_def("rss_sensor")
    assert sensor.job_name == "episode_job"

    key = "feed-a--0123456789ab"
    published = run_request(EpisodeRequest(key=key, needs_whisper=False))
    assert published.partition_key == key
    assert published.run_key == key
    assert published.tags[QUEUE_TAG] == PUBLISHED_QUEUE
    # The sensor daemon lays the request's tags over the job's run tags.
    assert {**job.run_tags, **published.tags}[QUEUE_TAG] == PUBLISHED_QUEUE
    whisper = run_request(EpisodeRequest(key=key, needs_whisper=True))
    assert {**job.run_tags, **whisper.tags}[QUEUE_TAG] == WHISPER_QUEUE


def test_dagster_yaml_is_a_valid_instance_with_the_whisper_queue(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        from dagster._core.run_coordinator import QueuedRunCoordinator

        from podcast_assets.queue import PodcastRunCoordinator

        assert isinstance(instance.run_coordinator, PodcastRunCoordinator)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None
        whisper = [
            limit
            for limit in queue.tag_concurrency_limits
            if limit["key"] == "podcast/queue" and limit.get("value") == "whisper"
        ]
        assert [limit["limit"] for limit in whisper] == [1]
        # Publisher-transcript runs must be able to run next to the Whisper run.
        assert queue.max_concurrent_runs == -1 or queue.max_concurrent_runs >= 2
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings.get("free_slots_after_run_end_seconds", 0) > 0

    # The same sections are accepted as overrides of a test instance.
    (tmp_path / "test_home").mkdir()
    with dg.instance_for_test(
        overrides=yaml.safe_load((ROOT / "dagster.yaml").read_text()),
        temp_dir=str(tmp_path / "test_home"),
    ) as instance:
        from dagster._core.run_coordinator import QueuedRunCoordinator

        from podcast_assets.queue import PodcastRunCoordinator

        assert isinstance(instance.run_coordinator, PodcastRunCoordinator)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)


def test_workspace_points_at_the_module_that_exposes_defs(env):
    import importlib

    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    [entry] = workspace["load_from"]
    module_name = entry["python_module"]["module_name"]
    assert module_name == MODULE
    assert isinstance(importlib.import_module(module_name).defs, dg.Definitions)

    # Loaded the way `dagster dev -w workspace.yaml` does it: in a separate code server.
    with (
        dg.instance_for_test(temp_dir=str(env.dagster_home)) as instance,
        create_test_daemon_workspace_context(
            WorkspaceFileTarget(paths=[str(ROOT / "workspace.yaml")]), instance
        ) as context,
    ):
        entries = context.create_request_context().get_code_location_entries()
        location_name = entry["python_module"].get("location_name", module_name)
        assert set(entries) == {location_name}
        location = entries[location_name].code_location
        assert location is not None, entries[location_name].load_error
        [repo] = location.get_repositories().values()
        assert repo.has_job("episode_job")
        assert repo.has_sensor("rss_sensor")
