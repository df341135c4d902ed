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
* while Whisper runs are queued, one in-progress Whisper run's worker is killed (SIGKILL);
* a third feed's episode, whose download trickles a byte a second, gets a Whisper run with a
  20 s ``dagster/max_runtime``: run monitoring must end it and free its slot.

Run start and end times come from the instance's run records. Skips when no PostgreSQL server
answers (the daemon, its code server and the run workers write one store concurrently; SQLite
would lock).
"""

from __future__ import annotations

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
from conftest import DEMO_SITE, OFFLINE_MODELS, rss, trickling
from dagster._core.events import DagsterEventType
from dagster._core.storage.dagster_run import DagsterRunStatus
from test_queue import LOCATION, _workspace, repository, submit_run_request

from partitions import EPISODES as EPISODE_PARTITIONS
from podcast_assets.demo import serve_directory
from podcast_core.catalog import Catalog, FeedConfig
from podcast_core.settings import load_settings
from resources import build_resources
from sensors.rss import poll_catalog, run_request

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[1]
WHISPER_LIMIT = 2
"""N: Whisper runs allowed in progress (production: 1 per GPU); 2 shows the limit is reached."""
EPISODES = 20
QUEUE_TAG = "podcast/queue"
WILL_RETRY = "dagster/will_retry"
TIMEOUT = 240
"""Seconds without any run changing status before the scenario counts as stuck."""
TIMEOUT_TOTAL = 900
MAX_RUNTIME = 20
"""``dagster/max_runtime`` of the run whose download stalls."""
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
        trickling() as trickle,
    ):
        env = {
            **postgres_env(dbname),
            **OFFLINE_MODELS,
            "PODCAST_DATA_DIR": str(root / "data"),
            # One thread per transcription: N of them share the machine's cores.
            "PODCAST_WHISPER_CPU_THREADS": "1",
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
            repo = repository(context)
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
                yield _drive(instance, context, repo, log, started, site, base, trickle)
            finally:
                os.killpg(daemon.pid, signal.SIGTERM)
                try:
                    daemon.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(daemon.pid, signal.SIGKILL)
                    daemon.wait()


def _stalled_episode(instance, site: Path, base: str, trickle) -> dg.RunRequest:
    """Follow a feed whose one episode's download never finishes; its run, as rss_sensor asks.

    The run gets ``dagster/max_runtime`` (production relies on ``max_runtime_seconds``, 6 h, in
    ``dagster.yaml``: the same check with another number) and a priority, so it takes the next
    free Whisper slot while the queue is still full.
    """
    item = {
        "title": "Stalled download",
        "guid": "stall-0",
        "pub_date": "Wed, 01 Jul 2026 12:00:00 +0000",
        "audio": f"{trickle.url}/stall.mp3",
    }
    (site / "feeds" / "stall.xml").write_text(rss("Stall", [item]))
    settings = load_settings()
    Catalog(settings.catalog_path).add(FeedConfig(name="stall", url=f"{base}/feeds/stall.xml"))
    res = build_resources(settings)
    found = poll_catalog(instance, None, res["artifacts"], res["catalog"], res["http"], {"stall"})
    instance.add_dynamic_partitions(EPISODE_PARTITIONS.name, found.add_keys)
    [episode] = found.requests
    request = run_request(episode)
    return dg.RunRequest(
        partition_key=request.partition_key,
        tags={**request.tags, "dagster/max_runtime": str(MAX_RUNTIME), "dagster/priority": "1"},
    )


def _drive(instance, context, repo, log: Path, started: float, site, base, trickle) -> dict:
    """Wait for the sensor's runs, kill one Whisper worker, stall one, add enrichment runs."""
    from sensors.enrichment import enrichment_requests

    _wait(
        lambda: (
            len(_runs(instance, **{QUEUE_TAG: "whisper"})) >= EPISODES
            and len(_runs(instance, **{QUEUE_TAG: "published"})) == 2
        ),
        "the rss_sensor tick to request 22 runs",
        instance,
        log,
    )
    requested_at = time.time()
    # No second tick: the stalled feed below gets a run of its own, submitted by hand.
    rss_sensor = repo.get_sensor("rss_sensor")
    instance.stop_sensor(rss_sensor.get_remote_origin_id(), rss_sensor.selector_id, rss_sensor)

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

    stalled = _stalled_episode(instance, site, base, trickle)
    stalled_key = stalled.partition_key
    submit_run_request(context, rss_sensor, stalled, "episode_job")

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
    for request in [r for r in requests if r.partition_key in published_keys]:
        submit_run_request(context, sensor, request, "enrichment_job")
    enrichment_submitted_at = time.time()

    def done():
        records = list(instance.get_run_records())
        retried = {r.dagster_run.tags.get("dagster/parent_run_id") for r in records}
        return (
            len(records) >= EPISODES + 2 + 2 + 1
            and all(r.dagster_run.status in FINAL for r in records)
            # Every failed run's retry decided (run retries tag it) and, if decided so, made.
            and all(
                r.dagster_run.tags.get(WILL_RETRY) == "false" or r.dagster_run.run_id in retried
                for r in records
                if r.dagster_run.status == DagsterRunStatus.FAILURE
            )
        )

    _wait(done, "every run, and every run retry, to finish", instance, log)
    trickle.wait_for_hangups(len(trickle.requests))
    return {
        "instance": instance,
        "records": list(instance.get_run_records()),
        "killed": killed,
        "killed_at": killed_at,
        "stalled": stalled_key,
        "downloads": (list(trickle.requests), list(trickle.hangups)),
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


def _partition(records, key: str):
    return [r for r in records if r.dagster_run.tags.get("dagster/partition") == key]


def test_never_more_than_n_whisper_runs_in_progress(scenario):
    records = scenario["records"]
    # Every Whisper run counts against the limit, the stalled episode's too.
    whisper = _by_queue(records, "whisper")
    stalled = {r.dagster_run.run_id for r in _partition(records, scenario["stalled"])}
    load = [r for r in whisper if r.dagster_run.run_id not in stalled]
    first_tick = [r for r in load if "dagster/parent_run_id" not in r.dagster_run.tags]
    assert len(first_tick) == EPISODES
    retries = [r for r in load if "dagster/parent_run_id" in r.dagster_run.tags]
    assert [r.dagster_run.tags["dagster/parent_run_id"] for r in retries] == [scenario["killed"]]
    statuses = {r.dagster_run.run_id: r.dagster_run.status for r in load}
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
        f"\n{len(whisper)} Whisper runs ({EPISODES} + 1 retry + {len(whisper) - len(load)} "
        f"stalled), limit {WHISPER_LIMIT}: max "
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
    stalled = _partition(records, scenario["stalled"])
    first_tick = [
        r for r in whisper if "dagster/parent_run_id" not in r.dagster_run.tags and r not in stalled
    ]
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
    parent = killed.dagster_run.run_id
    [retry] = [r for r in whisper if r.dagster_run.tags.get("dagster/parent_run_id") == parent]
    assert (
        retry.dagster_run.tags["dagster/partition"] == killed.dagster_run.tags["dagster/partition"]
    )
    assert retry.dagster_run.status == DagsterRunStatus.SUCCESS


def test_a_run_past_its_maximum_runtime_is_failed_and_frees_its_slot(scenario):
    instance: dg.DagsterInstance = scenario["instance"]
    records = scenario["records"]
    stalled = _partition(records, scenario["stalled"])
    # The interrupted worker reports no failure of its own for a run monitoring already failed,
    # so run retries re-execute it, once (max_retries: 1); the retry stalls and fails the same way.
    first, retry = runs = sorted(stalled, key=lambda r: r.create_timestamp)
    assert retry.dagster_run.tags["dagster/parent_run_id"] == first.dagster_run.run_id
    for run in runs:
        assert run.dagster_run.status == DagsterRunStatus.FAILURE
        # Run monitoring (polled every second here) ended it just after its maximum runtime.
        assert MAX_RUNTIME <= run.end_time - run.start_time < MAX_RUNTIME + 10
        events = instance.all_logs(run.dagster_run.run_id)
        assert any(
            f"Exceeded maximum runtime of {MAX_RUNTIME} seconds" in e.message for e in events
        )
        # The interrupted download was not retried inside the terminated run.
        restarted = {DagsterEventType.STEP_UP_FOR_RETRY, DagsterEventType.STEP_RESTARTED}
        assert not [e for e in events if e.dagster_event_type in restarted]
    # One download per run, each hung up once its run was terminated: no worker went on.
    requests, hangups = scenario["downloads"]
    assert len(requests) == len(hangups) == len(runs), (requests, hangups)
    for run, hangup in zip(runs, sorted(hangups), strict=True):
        assert run.start_time + MAX_RUNTIME < hangup < run.end_time + 10, (hangup, run.end_time)
        print(
            f"\nstalled run: failed {run.end_time - run.start_time:.1f}s after its start "
            f"(max runtime {MAX_RUNTIME}s), download hung up {hangup - run.end_time:+.1f}s later"
        )
    # Its Whisper slot went to the queue: a run waiting behind it started once it ended.
    others = [
        r
        for r in _by_queue(records, "whisper")
        if r.dagster_run.tags.get("dagster/partition") != scenario["stalled"]
    ]
    assert any(r.start_time >= first.end_time for r in others)
