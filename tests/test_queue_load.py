"""The run queue under load, with a real ``dagster-daemon`` and real run workers.

One scenario, run once for the module on a Postgres-backed instance (a database created for it):

* a feed of 20 episodes without transcripts is followed with ``initial_episodes=20``, so the
  daemon's first ``rss_sensor`` tick requests 20 Whisper runs at once; a second feed's two
  publisher-transcript episodes are requested in the same tick, after them;
* the daemon's queued run coordinator (Whisper limit ``N``) dequeues them and the default run
  launcher starts each in a worker process of the code server, transcribing 3 s of real speech
  with ``packaged:tiny.en``;
* once the publisher transcripts exist, enrichment runs for them are submitted the way the
  enrichment sensor submits runs;
* while Whisper runs are queued, one in-progress Whisper run's worker is killed (SIGKILL).

Run start and end times come from the instance's run records. Skips when no PostgreSQL server
answers (the daemon, its code server and the run workers write one store concurrently; SQLite
would lock).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
import yaml
from _instance import fresh_database, postgres_env, require_postgres, write_home
from conftest import DEMO_SITE, rss
from dagster._core.events import DagsterEventType
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.utils import make_new_run_id
from dagster._daemon.sensor import _submit_run_request
from test_queue import LOCATION, _workspace

from podcast_assets.demo import serve_directory
from podcast_core.catalog import Catalog, FeedConfig

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[1]
WHISPER_LIMIT = 2
"""N: Whisper runs allowed in progress (production: 1 per GPU); 2 shows the limit is reached."""
EPISODES = 20
QUEUE_TAG = "podcast/queue"
TIMEOUT = 240
"""Seconds without any run changing status before the scenario counts as stuck."""
TIMEOUT_TOTAL = 900
FINAL = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def _site(root: Path) -> Path:
    """20 episodes of 3 s of speech with no transcript, and 2 with a publisher transcript."""
    site = root / "site"
    (site / "audio").mkdir(parents=True)
    (site / "transcripts").mkdir()
    shutil.copy(DEMO_SITE / "audio" / "your-country.mp3", site / "audio")
    shutil.copy(DEMO_SITE / "audio" / "two-voices.mp3", site / "audio")
    shutil.copy(DEMO_SITE / "transcripts" / "two-voices.vtt", site / "transcripts")
    whisper = [
        {
            "title": f"Load {i}",
            "guid": f"load-{i}",
            "pub_date": f"Mon, {i + 1:02d} Jun 2026 12:00:00 +0000",
            "audio": "../audio/your-country.mp3",
        }
        for i in range(EPISODES)
    ]
    published = [
        {
            "title": f"Published {i}",
            "guid": f"published-{i}",
            "pub_date": f"Tue, {i + 1:02d} Jun 2026 12:00:00 +0000",
            "audio": "../audio/two-voices.mp3",
            "transcripts": [("../transcripts/two-voices.vtt", "text/vtt")],
        }
        for i in range(2)
    ]
    (site / "feeds").mkdir()
    (site / "feeds" / "whisper.xml").write_text(rss("Load", whisper))
    (site / "feeds" / "published.xml").write_text(rss("Published", published))
    return site


def _runs(instance: dg.DagsterInstance, **tags: str) -> list[dg.RunRecord]:
    return list(instance.get_run_records(filters=dg.RunsFilter(tags=tags)))


def _wait(condition, what: str, instance: dg.DagsterInstance, daemon_log: Path):
    """Poll ``condition`` until it is truthy; fail once no run has changed status for ``TIMEOUT``.

    A slow machine only slows the queue down; a stuck queue stops changing. The overall cap
    (``TIMEOUT_TOTAL``) keeps a queue that moves but never finishes from hanging CI.
    """
    start = time.monotonic()
    progress, last_change = None, start
    while True:
        value = condition()
        if value:
            return value
        now = time.monotonic()
        state = sorted((r.dagster_run.run_id, r.dagster_run.status) for r in _runs(instance))
        if state != progress:
            progress, last_change = state, now
        if now - last_change > TIMEOUT or now - start > TIMEOUT_TOTAL:
            break
        time.sleep(0.5)
    counts = Counter(
        (r.dagster_run.tags.get(QUEUE_TAG), r.dagster_run.status.value) for r in _runs(instance)
    )
    tail = daemon_log.read_text()[-3000:] if daemon_log.exists() else ""
    raise AssertionError(
        f"timed out after {now - start:.0f}s ({now - last_change:.0f}s without a run changing "
        f"status) waiting for {what}; load average {os.getloadavg()}; runs by queue and status: "
        f"{dict(counts)}\n{tail}"
    )


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The run worker's pid, from the engine event the worker logs as it starts."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data
        if data and "pid" in data.metadata:
            return int(data.metadata["pid"].value)
    return None


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    require_postgres()
    root = tmp_path_factory.mktemp("load")
    site = _site(root)
    # A context, so a failure in the scenario does not leak its environment into later tests.
    with (
        pytest.MonkeyPatch.context() as mp,
        fresh_database("podcast_load") as dbname,
        serve_directory(site) as base,
    ):
        env = {
            **postgres_env(dbname),
            "PODCAST_DATA_DIR": str(root / "data"),
            "PODCAST_WHISPER_MODEL": "packaged:tiny.en",
            # One thread per transcription: N of them share the machine's cores.
            "PODCAST_WHISPER_CPU_THREADS": "1",
            "PODCAST_EMBEDDING_MODEL": "packaged:all-MiniLM-L6-v2",
            "PODCAST_SUMMARY_BACKEND": "extractive",
            "PODCAST_SUMMARY_MODEL": "packaged:all-MiniLM-L6-v2",
            "PODCAST_NER_BACKEND": "spacy",
            "PODCAST_NER_MODEL": "packaged:en_core_web_sm",
            "HF_HUB_OFFLINE": "1",
        }
        project = yaml.safe_load((ROOT / "dagster.yaml").read_text())
        limits = project["concurrency"]["runs"]["tag_concurrency_limits"]
        for limit in limits:
            if limit.get("value") == "whisper":
                limit["limit"] = WHISPER_LIMIT
        home = write_home(
            root / "home",
            run_coordinator={
                **project["run_coordinator"],
                "config": {"dequeue_interval_seconds": 1},
            },
            concurrency={"runs": {"max_concurrent_runs": 4, "tag_concurrency_limits": limits}},
            # The project's monitoring, polled every second instead of every 30.
            run_monitoring={**project["run_monitoring"], "poll_interval_seconds": 1},
        )
        env["DAGSTER_HOME"] = str(home)
        for name, value in env.items():
            mp.setenv(name, value)
        (root / "workspace.yaml").write_text(
            yaml.safe_dump(
                {
                    "load_from": [
                        {
                            "python_module": {
                                "module_name": "podcast_assets.definitions",
                                "attribute": "defs",
                                "location_name": LOCATION,
                                "working_directory": str(ROOT),
                            }
                        }
                    ]
                }
            )
        )
        catalog = Catalog(root / "data" / "catalog.json")
        catalog.add(FeedConfig(name="load", url=f"{base}/feeds/whisper.xml", initial_episodes=20))
        catalog.add(FeedConfig(name="pub", url=f"{base}/feeds/published.xml"))

        with (
            dg.DagsterInstance.from_config(str(home)) as instance,
            _workspace(instance) as context,
        ):
            repo = next(
                iter(
                    context.create_request_context()
                    .get_code_location(LOCATION)
                    .get_repositories()
                    .values()
                )
            )
            # Enrichment runs are submitted below for the publisher episodes only, and no schedule
            # may take a run slot mid-scenario (the hourly corpus rebuild fires at :15).
            enrichment_sensor = repo.get_sensor("enrichment_sensor")
            instance.stop_sensor(
                enrichment_sensor.get_remote_origin_id(),
                enrichment_sensor.selector_id,
                enrichment_sensor,
            )
            for schedule in repo.get_schedules():
                instance.stop_schedule(
                    schedule.get_remote_origin_id(), schedule.selector_id, schedule
                )
            log = root / "daemon.log"
            started = time.time()
            with log.open("w") as out:
                daemon = subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "dagster-daemon"),
                        "run",
                        "-w",
                        str(root / "workspace.yaml"),
                    ],
                    cwd=ROOT,
                    env={**os.environ, **env},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                yield _drive(instance, context, repo, log, started)
            finally:
                os.killpg(daemon.pid, signal.SIGTERM)
                try:
                    daemon.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(daemon.pid, signal.SIGKILL)
                    daemon.wait()


def _drive(instance, context, repo, log: Path, started: float) -> dict:
    """Wait for the sensor's runs, kill one Whisper worker, add enrichment runs, wait for all."""
    from sensors.enrichment import enrichment_requests

    whisper = _wait(
        lambda: (
            len(_runs(instance, **{QUEUE_TAG: "whisper"})) >= EPISODES
            and len(_runs(instance, **{QUEUE_TAG: "published"})) == 2
        ),
        "the rss_sensor tick to request 22 runs",
        instance,
        log,
    )
    assert whisper
    requested_at = time.time()

    # Kill the worker of an in-progress Whisper run while others still wait in the queue.
    def running_with_pid():
        for record in _runs(instance, **{QUEUE_TAG: "whisper"}):
            if record.dagster_run.status == DagsterRunStatus.STARTED:
                pid = _worker_pid(instance, record.dagster_run.run_id)
                if pid:
                    return record.dagster_run.run_id, pid
        return None

    killed, pid = _wait(running_with_pid, "a Whisper run in progress", instance, log)
    os.kill(pid, signal.SIGKILL)
    killed_at = time.time()

    # Publisher transcripts done: enrichment runs, as enrichment_sensor requests them.
    published_keys = {
        r.dagster_run.tags["dagster/partition"] for r in _runs(instance, **{QUEUE_TAG: "published"})
    }
    _wait(
        lambda: published_keys <= instance.get_materialized_partitions(dg.AssetKey("transcript")),
        "the publisher transcripts",
        instance,
        log,
    )
    requests, _ = enrichment_requests(instance, None)
    sensor = repo.get_sensor("enrichment_sensor")
    from podcast_assets.definitions import defs

    for request in [r for r in requests if r.partition_key in published_keys]:
        resolved = request.with_resolved_tags_and_config(
            target_definition=defs.resolve_job_def("enrichment_job"),
            dynamic_partitions_requests=[],
            dynamic_partitions_store=instance,
        )
        result = _submit_run_request(
            make_new_run_id(), resolved, context, sensor, {}, logging.getLogger("load"), None
        )
        assert result.error_info is None, result.error_info
    enrichment_submitted_at = time.time()

    def all_final():
        records = list(instance.get_run_records())
        return len(records) >= EPISODES + 2 + 2 and all(
            r.dagster_run.status in FINAL for r in records
        )

    # The killed run is retried by run retries once it is marked failed; wait for that too.
    _wait(
        lambda: (
            all_final()
            and any(
                r.dagster_run.tags.get("dagster/parent_run_id") == killed
                and r.dagster_run.status in FINAL
                for r in instance.get_run_records()
            )
        ),
        "every run, including the killed run's retry, to finish",
        instance,
        log,
    )
    return {
        "instance": instance,
        "records": list(instance.get_run_records()),
        "killed": killed,
        "killed_at": killed_at,
        "started": started,
        "requested_at": requested_at,
        "enrichment_submitted_at": enrichment_submitted_at,
        "finished_at": time.time(),
        "log": log,
    }


def _by_queue(records, queue: str):
    return [r for r in records if r.dagster_run.tags.get(QUEUE_TAG) == queue]


def _enrichment(records):
    # The daemon also runs the hourly corpus schedule (same queue) if the clock passes :15.
    queued = _by_queue(records, "enrichment")
    return [r for r in queued if r.dagster_run.job_name == "enrichment_job"]


def _max_overlap(records) -> int:
    points = []
    for r in records:
        assert r.start_time and r.end_time, r.dagster_run.run_id
        points += [(r.start_time, 1), (r.end_time, -1)]
    current = peak = 0
    for _, delta in sorted(points, key=lambda p: (p[0], p[1])):
        current += delta
        peak = max(peak, current)
    return peak


def test_never_more_than_n_whisper_runs_in_progress(scenario):
    records = scenario["records"]
    whisper = _by_queue(records, "whisper")
    first_tick = [r for r in whisper if "dagster/parent_run_id" not in r.dagster_run.tags]
    assert len(first_tick) == EPISODES
    retries = [r for r in whisper if "dagster/parent_run_id" in r.dagster_run.tags]
    assert [r.dagster_run.tags["dagster/parent_run_id"] for r in retries] == [scenario["killed"]]
    statuses = {r.dagster_run.run_id: r.dagster_run.status for r in whisper}
    assert statuses.pop(scenario["killed"]) == DagsterRunStatus.FAILURE
    assert set(statuses.values()) == {DagsterRunStatus.SUCCESS}, statuses

    overlap = _max_overlap(whisper)
    start = min(r.start_time for r in whisper)
    end = max(r.end_time for r in whisper)
    published = _by_queue(records, "published")
    enrichment = _enrichment(records)
    waited = [r.start_time - r.create_timestamp.timestamp() for r in published]
    submitted = scenario["enrichment_submitted_at"]
    enriched = ", ".join(f"{r.start_time - submitted:.1f}s" for r in enrichment)
    print(
        f"\n{len(whisper)} Whisper runs ({EPISODES} + 1 retry), limit {WHISPER_LIMIT}: max "
        f"overlap {overlap}, Whisper queue {end - start:.1f}s "
        f"(first start to last end), scenario {scenario['finished_at'] - scenario['started']:.1f}s"
        f"\npublisher runs waited {', '.join(f'{w:.1f}s' for w in waited)} from creation to "
        f"start, {sum(r.start_time < end for r in published)} of {len(published)} started while "
        f"Whisper runs were queued; enrichment runs started "
        f"{enriched}"
        f" after submission, {min(r.start_time for r in enrichment) - start:.1f}s into the queue"
    )
    # The limit is reached but never exceeded.
    assert overlap == WHISPER_LIMIT


def test_publisher_and_enrichment_runs_flow_past_the_whisper_queue(scenario):
    records = scenario["records"]
    whisper = _by_queue(records, "whisper")
    published = _by_queue(records, "published")
    enrichment = _enrichment(records)
    assert len(published) == 2 and len(enrichment) == 2
    assert {r.dagster_run.status for r in published + enrichment} == {DagsterRunStatus.SUCCESS}
    # Created after all 20 Whisper runs (same tick), yet started while most still waited.
    first_tick = [r for r in whisper if "dagster/parent_run_id" not in r.dagster_run.tags]
    assert min(r.create_timestamp for r in published) > max(r.create_timestamp for r in first_tick)
    whisper_starts = sorted(r.start_time for r in whisper)
    for run in published:
        assert run.start_time < whisper_starts[WHISPER_LIMIT * 2], "publisher run waited"
    for run in enrichment:
        waiting = [r for r in whisper if r.start_time > run.start_time]
        assert len(waiting) >= 2, "the Whisper queue drained before enrichment started"


def test_a_killed_whisper_run_is_failed_and_frees_its_slot(scenario):
    instance: dg.DagsterInstance = scenario["instance"]
    records = {r.dagster_run.run_id: r for r in scenario["records"]}
    killed = records[scenario["killed"]]
    assert killed.dagster_run.status == DagsterRunStatus.FAILURE
    # The code server saw its worker die and failed the run within seconds.
    assert killed.end_time - scenario["killed_at"] < 15, killed.end_time - scenario["killed_at"]
    messages = [e.message for e in instance.all_logs(scenario["killed"])]
    assert any(
        f"Run execution process for {killed.dagster_run.run_id} was terminated by signal 9" in m
        for m in messages
    ), messages[-5:]
    # The queue went on: a Whisper run that was still queued started after the kill.
    whisper = _by_queue(scenario["records"], "whisper")
    assert any(r.start_time > killed.end_time for r in whisper)
    # Run retries re-ran the killed episode, and it succeeded.
    [retry] = [r for r in whisper if r.dagster_run.tags.get("dagster/parent_run_id")]
    assert (
        retry.dagster_run.tags["dagster/partition"] == killed.dagster_run.tags["dagster/partition"]
    )
    assert retry.dagster_run.status == DagsterRunStatus.SUCCESS
