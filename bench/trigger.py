"""What it costs to make enrichment follow new transcripts: our sensor against ``eager()``.

For each N (default 1000 and 5000 episode partitions), in a fresh file-backed SQLite instance
(an empty temporary ``DAGSTER_HOME`` with only ``telemetry: enabled: false``), one process:

1. adds N keys to the ``episodes`` dynamic partitions and records, per episode in chain order,
   materializations of episode_metadata, raw_audio, transcript and the 4 enrichment assets
   (summary, grounded_insights, knowledge_graph, embeddings): N episodes already enriched.
   The events are exactly those ``instance.report_runless_asset_event(AssetMaterialization(
   asset_key=..., partition=key))`` stores, but SQLite has no bulk event API in Dagster 1.13
   (``store_event_batch`` loops over ``store_event``: 20-40 ms per event here), so ``seed_events``
   replays ``SqliteEventLogStorage.store_event`` in batches (one transaction per shard and
   batch). First, a small instance seeded that way is compared with one seeded through
   ``report_runless_asset_event``: same storage ids, materialized partitions, asset rows and
   answers of every mechanism, or the script stops (``--check-n``; 0 skips);
2. (a) our mechanism, ``sensors.enrichment.enrichment_requests(instance, cursor)``: a cold
   start from no cursor (``--cold-ticks`` ticks timed, 100 transcripts per tick, extrapolated
   to the ceil(N/100) ticks it needs), then the cursor of a caught-up sensor (latest transcript
   storage id);
   (b) the alternative, ``AutomationCondition.eager()`` on the 4 enrichment assets, put on the
   project's real ``Definitions`` (``build_definitions``) with ``map_resolved_asset_specs``: same
   keys, deps, partitions and checks; nothing runs. Evaluated two ways on the same instance:
   ``tester`` = ``dg.evaluate_automation_conditions(defs=..., instance=..., cursor=...)`` and
   ``daemon`` = ``AutomationTickEvaluationContext(...).evaluate()``, what the automation daemon
   runs per tick (same evaluator; the tester builds its new cursor with the bare instance as
   dynamic-partitions store, so it re-reads all N partition keys for every subset it
   serializes, while the daemon uses the evaluation's caching queryer). First evaluations without
   a cursor are timed once each (tester first, on a cold asset status cache);
3. idle: all three again from their caught-up cursors with nothing new;
4. steady state: M new episodes (default 20) arrive (partitions added, then episode_metadata,
   raw_audio and transcript through ``report_runless_asset_event``) and all three are timed from
   their caught-up cursors. All three must request exactly the 4 enrichment assets of the M new
   partitions (the script stops otherwise); then one more evaluation of each ``eager()`` path
   from the cursor after the requests.

Timed calls only read the instance (the asset status cache aside), so every repeat sees the same
state; ``--repeat`` repeats (default 5) rotate which of the three goes first; medians reported.
Not included on either side: the daemon/gRPC tick machinery, storing ticks and evaluation
records, launching runs.

Run from the repository root (about 4-6 minutes on 2 cores with the defaults)::

    .venv/bin/python bench/trigger.py [--n 1000 5000] [--m 20] [--repeat 5] [--cold-ticks 3]
        [--check-n 30] [--out bench/results/trigger.json]

Prints markdown tables and writes ``bench/results/trigger.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "trigger.json"
INGEST = ("episode_metadata", "raw_audio", "transcript")
ENRICH = ("summary", "grounded_insights", "knowledge_graph", "embeddings")
SEED_BATCH = 2000


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def episode_keys(start: int, count: int, feed: str = "bench") -> list[str]:
    """Keys shaped like ``podcast_core.keys``: ``{feed}--{12 hex}``."""
    return [
        f"{feed}--{hashlib.sha256(str(i).encode()).hexdigest()[:12]}"
        for i in range(start, start + count)
    ]


def _materialization_entry(asset: str, partition: str, timestamp: float):
    """The event ``report_runless_asset_event(AssetMaterialization(...))`` stores."""
    import dagster as dg
    from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
    from dagster._core.events.log import EventLogEntry
    from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID

    event = DagsterEvent(
        event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
        event_specific_data=StepMaterializationData(
            dg.AssetMaterialization(asset_key=asset, partition=partition)
        ),
        job_name=RUNLESS_JOB_NAME,
    )
    return EventLogEntry(
        user_message="",
        level=logging.INFO,
        job_name=event.job_name,
        run_id=RUNLESS_RUN_ID,
        error_info=None,
        timestamp=timestamp,
        step_key=event.step_key,
        dagster_event=event,
    )


def seed_events(instance, events: Iterable[tuple[str, str]], *, fast: bool = True) -> int:
    """Record a materialization per ``(asset, partition)``, in order; returns the count.

    ``fast=False`` calls ``instance.report_runless_asset_event`` per event. ``fast=True`` does
    what ``SqliteEventLogStorage.store_event`` does for each of those events (row in the runless
    run shard; row, asset event tags and asset key entry in the index shard), with one
    transaction per shard and batch instead of two per event, one multi-row insert in the run
    shard and one asset key update per asset and batch.
    """
    import dagster as dg
    from dagster._core.instance.utils import RUNLESS_RUN_ID
    from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    events = list(events)
    storage = instance.event_log_storage
    if not fast or not isinstance(storage, SqliteEventLogStorage):
        for asset, partition in events:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(asset_key=asset, partition=partition)
            )
        return len(events)
    for start in range(0, len(events), SEED_BATCH):
        entries = [
            _materialization_entry(asset, partition, time.time())
            for asset, partition in events[start : start + SEED_BATCH]
        ]
        rows = [storage._event_to_row(entry) for entry in entries]
        insert = SqlEventLogStorageTable.insert()
        with storage.run_connection(RUNLESS_RUN_ID) as conn:
            conn.execute(insert, rows)
        with storage.index_transaction() as conn:
            ids = [conn.execute(insert, row).inserted_primary_key[0] for row in rows]
            storage._store_asset_event_tags(conn, entries, ids)
            # The asset key row keeps only the latest event: writing each key's last one of the
            # batch leaves the same state as writing all of them in turn.
            latest = {
                entry.dagster_event.asset_key: (entry, event_id)
                for entry, event_id in zip(entries, ids, strict=True)
            }
            for entry, event_id in latest.values():
                storage._store_asset_event(conn, entry, event_id)
    return len(events)


def episode_events(keys: list[str], assets: tuple[str, ...]) -> list[tuple[str, str]]:
    """Per episode, one materialization of each asset in chain order (as ``ingest`` does)."""
    return [(asset, key) for key in keys for asset in assets]


def open_instance(home: Path):
    import dagster as dg

    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def eager_definitions():
    """The project's Definitions with ``eager()`` on the 4 enrichment assets."""
    import dagster as dg

    from podcast_assets.definitions import build_definitions
    from podcast_core.settings import load_settings

    eager = dg.AutomationCondition.eager()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        defs = build_definitions(load_settings()).map_resolved_asset_specs(
            func=lambda spec: spec.replace_attributes(automation_condition=eager),
            selection=list(ENRICH),
        )
    graph = defs.resolve_asset_graph()
    conditioned = {
        k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).automation_condition
    }
    if conditioned != set(ENRICH):
        raise SystemExit(f"eager() landed on {sorted(conditioned)}, expected {sorted(ENRICH)}")
    return defs


class Eager:
    """``eager()`` on the enrichment assets, evaluated two ways over the same instance.

    ``tester``: ``dg.evaluate_automation_conditions`` (public API; builds the new cursor with the
    bare instance as dynamic-partitions store, so serializing each dynamic-partitions subset
    reads all partition keys again). ``daemon``: ``AutomationTickEvaluationContext.evaluate()``,
    what the automation daemon (``AssetDaemon``) runs per tick: same evaluator, cursor and
    evaluation records built with the evaluation's caching queryer, run requests built.
    """

    def __init__(self, defs, instance):
        self.defs = defs
        self.graph = defs.resolve_asset_graph()
        self.instance = instance
        self.last_run_requests = 0

    def tester(self, cursor) -> tuple[dict[str, set[str]], Any]:
        import dagster as dg

        result = dg.evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, cursor=cursor
        )
        requested = {a: set(result.get_requested_partitions(dg.AssetKey(a))) for a in ENRICH}
        return requested, result.cursor

    def daemon(self, cursor) -> tuple[dict[str, set[str]], Any]:
        import dagster as dg
        from dagster._core.definitions.asset_daemon_cursor import AssetDaemonCursor
        from dagster._core.definitions.automation_tick_evaluation_context import (
            AutomationTickEvaluationContext,
        )
        from dagster._serdes import deserialize_value, serialize_value

        # The daemon stores its cursor between ticks: round-trip it as it does.
        cursor = (
            deserialize_value(serialize_value(cursor), AssetDaemonCursor)
            if cursor
            else AssetDaemonCursor.empty()
        )
        run_requests, new_cursor, _evaluations = AutomationTickEvaluationContext(
            evaluation_id=cursor.evaluation_id + 1,
            instance=self.instance,
            asset_graph=self.graph,
            asset_selection=dg.AssetSelection.all(),
            cursor=cursor,
            materialize_run_tags={},
            observe_run_tags={},
            auto_observe_asset_keys=set(),
            logger=logging.getLogger("bench.trigger"),
            emit_backfills=False,
        ).evaluate()
        self.last_run_requests = len(run_requests)
        requested: dict[str, set[str]] = {a: set() for a in ENRICH}
        for request in run_requests:
            for key in request.asset_selection or []:
                requested.setdefault(key.to_user_string(), set()).add(request.partition_key)
        return requested, new_cursor


def sensor_cold_start(instance, ticks: int, total: int) -> dict[str, Any]:
    """``ticks`` sensor ticks from no cursor over ``total`` enriched transcripts, extrapolated."""
    import math

    from sensors.enrichment import MAX_RUNS_PER_TICK, enrichment_requests

    cursor: str | None = None
    times, requested = [], 0
    for _ in range(ticks):
        started = time.perf_counter()
        requests, cursor = enrichment_requests(instance, cursor)
        times.append(time.perf_counter() - started)
        requested += len(requests)
    needed = math.ceil(total / MAX_RUNS_PER_TICK)
    return {
        "ticks_timed": ticks,
        "first_tick_seconds": round(times[0], 4),
        "tick_p50_seconds": round(statistics.median(times), 4),
        "ticks_to_catch_up": needed,
        "catch_up_seconds_estimate": round(needed * statistics.median(times), 1),
        "requested": requested,
    }


def caught_up_sensor_cursor(instance) -> str:
    """The cursor of a sensor that has seen every transcript so far: the latest storage id."""
    import dagster as dg

    (latest,) = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("transcript")), limit=1
    ).records
    return str(latest.storage_id)


def sensor_requested(requests: list) -> dict[str, set[str]]:
    """What the sensor's run requests materialize: every enrichment asset of each partition."""
    keys = {r.partition_key for r in requests}
    return {a: set(keys) for a in ENRICH}


def count_queries(instance, fn: Callable[[], Any]) -> int:
    """How many ``instance.fetch_materializations`` calls ``fn`` makes."""
    original, calls = instance.fetch_materializations, [0]

    def counting(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    instance.fetch_materializations = counting
    try:
        fn()
    finally:
        del instance.fetch_materializations
    return calls[0]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "runs": len(values),
    }


def rotate(calls: dict[str, Callable[[], Any]], repeat: int) -> dict[str, tuple[dict, Any]]:
    """Time each call ``repeat`` times, rotating which goes first; (stats, last value) per name."""
    names = list(calls)
    times: dict[str, list[float]] = {n: [] for n in names}
    values: dict[str, Any] = {}
    for i in range(repeat):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            seconds, values[name] = timed(calls[name])
            times[name].append(seconds)
    return {n: (_stats(times[n]), values[n]) for n in names}


def measure(n: int, m: int, repeat: int, cold_ticks: int, root: Path, defs) -> dict[str, Any]:
    from partitions import EPISODES
    from sensors.enrichment import enrichment_requests

    def log(step: str) -> None:
        print(f"N={n}: {step}", file=sys.stderr, flush=True)

    log("seeding")
    instance = open_instance(root / f"home-{n}")
    existing, new = episode_keys(0, n), episode_keys(n, m)
    out: dict[str, Any] = {"n": n, "m": m}
    seconds, _ = timed(lambda: instance.add_dynamic_partitions(EPISODES.name, existing))
    out["seed_add_partitions_seconds"] = round(seconds, 3)
    seconds, count = timed(lambda: seed_events(instance, episode_events(existing, INGEST + ENRICH)))
    out["seed_events"] = count
    out["seed_events_seconds"] = round(seconds, 2)

    # (a) the sensor: a cold start from no cursor (extrapolated), then the caught-up cursor.
    log(f"sensor cold start ({cold_ticks} ticks)")
    out["sensor_cold_start"] = sensor_cold_start(instance, cold_ticks, n)
    out["sensor_cold_start"]["queries_per_tick"] = count_queries(
        instance, lambda: enrichment_requests(instance, None)
    )
    if out["sensor_cold_start"]["requested"]:
        raise SystemExit("the sensor requested enrichment of already enriched episodes")
    sensor_cursor = caught_up_sensor_cursor(instance)

    # (b) eager(): first evaluations without a cursor. The tester goes first, on a cold asset
    # status cache; the daemon path then finds the cache built.
    eager = Eager(defs, instance)
    log("eager first evaluations")
    seconds, (requested, tester_cursor) = timed(lambda: eager.tester(None))
    out["tester_first"] = {
        "seconds": round(seconds, 3),
        "requested": sum(map(len, requested.values())),
    }
    seconds, (requested, daemon_cursor) = timed(lambda: eager.daemon(None))
    out["daemon_first"] = {
        "seconds": round(seconds, 3),
        "requested": sum(map(len, requested.values())),
    }

    calls = {
        "sensor": lambda: sensor_requested(enrichment_requests(instance, sensor_cursor)[0]),
        "tester": lambda: eager.tester(tester_cursor)[0],
        "daemon": lambda: eager.daemon(daemon_cursor)[0],
    }
    log(f"idle x{repeat}")
    idle = rotate(calls, repeat)
    out["idle"] = {
        name: stats | {"requested": sum(map(len, value.values()))}
        for name, (stats, value) in idle.items()
    }

    log(f"{m} new transcripts, x{repeat}")
    instance.add_dynamic_partitions(EPISODES.name, new)
    seed_events(instance, episode_events(new, INGEST), fast=False)
    steady = rotate(calls, repeat)
    expected = {a: set(new) for a in ENRICH}
    out["steady"] = {
        name: stats
        | {
            "requested_asset_partitions": sum(map(len, value.values())),
            "same_partitions": value == expected,
        }
        for name, (stats, value) in steady.items()
    }
    out["steady"]["daemon"]["run_requests"] = eager.last_run_requests
    out["steady"]["sensor"]["run_requests"] = len(enrichment_requests(instance, sensor_cursor)[0])
    out["steady"]["sensor"]["queries"] = count_queries(
        instance, lambda: enrichment_requests(instance, sensor_cursor)
    )
    if not all(v["same_partitions"] for v in out["steady"].values()):
        counts = {k: v["requested_asset_partitions"] for k, v in out["steady"].items()}
        raise SystemExit(f"N={n}: requested asset partitions {counts}, expected 4 x {m} new ones")

    # The evaluation after the requests (nothing new since): what eager() settles back to.
    log("after the requests")
    _, tester_after = eager.tester(tester_cursor)
    _, daemon_after = eager.daemon(daemon_cursor)
    seconds, requested = timed(lambda: eager.tester(tester_after)[0])
    out["tester_after"] = {
        "seconds": round(seconds, 3),
        "requested": sum(map(len, requested.values())),
    }
    seconds, requested = timed(lambda: eager.daemon(daemon_after)[0])
    out["daemon_after"] = {
        "seconds": round(seconds, 3),
        "requested": sum(map(len, requested.values())),
    }
    for phase in ("idle", "steady"):
        base = out[phase]["sensor"]["median"]
        out[f"ratio_{phase}"] = {
            name: round(out[phase][name]["median"] / base, 1) for name in ("tester", "daemon")
        }
    instance.dispose()
    return out


def check_fast_seeding(n: int, m: int, root: Path, defs) -> dict[str, Any]:
    """Seed two instances, one per seeding path, and compare what the mechanisms see."""
    import dagster as dg

    from partitions import EPISODES
    from sensors.enrichment import enrichment_requests

    existing, new = episode_keys(0, n), episode_keys(n, m)
    seen = []
    timings = {}
    for fast in (False, True):
        instance = open_instance(root / f"check-{'fast' if fast else 'api'}")
        instance.add_dynamic_partitions(EPISODES.name, existing)
        seconds, count = timed(
            lambda instance=instance, fast=fast: seed_events(
                instance, episode_events(existing, INGEST + ENRICH), fast=fast
            )
        )
        timings["fast" if fast else "api"] = round(seconds / count * 1000, 2)
        eager = Eager(defs, instance)
        cold = sensor_cold_start(instance, 1, n)
        cursor = caught_up_sensor_cursor(instance)
        tester_first, tester_cursor = eager.tester(None)
        daemon_first, daemon_cursor = eager.daemon(None)
        instance.add_dynamic_partitions(EPISODES.name, new)
        seed_events(instance, episode_events(new, INGEST), fast=False)
        requests, _ = enrichment_requests(instance, cursor)
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("transcript")), limit=10_000
        ).records
        seen.append(
            {
                "records": [(r.storage_id, r.partition_key) for r in records],
                "materialized": {
                    a: sorted(instance.get_materialized_partitions(dg.AssetKey(a)))
                    for a in INGEST + ENRICH
                },
                # The asset key rows (the part the batched path writes once per batch).
                "asset_rows": {
                    r.asset_entry.asset_key.to_user_string(): (
                        r.asset_entry.last_materialization_record.storage_id,
                        r.asset_entry.last_materialization_record.partition_key,
                    )
                    for r in instance.get_asset_records([dg.AssetKey(a) for a in INGEST + ENRICH])
                },
                "cold_requested": cold["requested"],
                "sensor_cursor": cursor,
                "sensor": sorted(r.partition_key for r in requests),
                "eager_first": (tester_first, daemon_first),
                "tester": eager.tester(tester_cursor)[0],
                "daemon": eager.daemon(daemon_cursor)[0],
            }
        )
        instance.dispose()
    if seen[0] != seen[1]:
        diff = [k for k in seen[0] if seen[0][k] != seen[1][k]]
        raise SystemExit(f"fast seeding differs from report_runless_asset_event in {diff}")
    return {"n": n, "m": m, "identical": True, "ms_per_event": timings}


def run(ns: list[int], m: int, repeat: int, cold_ticks: int, check_n: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-trigger-"))
    load_before = _load_average()
    try:
        for var in [v for v in os.environ if v.startswith("PODCAST_")]:
            del os.environ[var]
        os.environ["PODCAST_DATA_DIR"] = str(tmp / "data")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            started = time.perf_counter()
            defs = eager_definitions()
            defs_seconds = time.perf_counter() - started
            check = check_fast_seeding(check_n, min(m, 5), tmp, defs) if check_n else None
            results = [measure(n, m, repeat, cold_ticks, tmp, defs) for n in ns]
        return {
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "load_average_before": load_before,
                "load_average_after": _load_average(),
            },
            "versions": {d: _version(d) for d in ("dagster", "sqlalchemy")},
            "storage": "SQLite, file-backed, temporary DAGSTER_HOME",
            "repeat": repeat,
            "definitions_seconds": round(defs_seconds, 2),
            "seeding_check": check,
            "results": results,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _s(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def render(result: dict[str, Any]) -> str:
    out = []
    m = result["results"][0]["m"] if result["results"] else 0
    out.append(
        f"### Following new transcripts: sensor tick vs `eager()` evaluation (SQLite, "
        f"M = {m} new transcripts, median of {result['repeat']})\n"
    )
    out.append(
        "| N partitions | sensor tick | `evaluate_automation_conditions` | ratio | "
        "daemon evaluator | ratio | same M partitions |"
    )
    out.append("|---:|---:|---:|---:|---:|---:|---|")
    for r in result["results"]:
        st = r["steady"]
        same = all(v["same_partitions"] for v in st.values())
        out.append(
            f"| {r['n']:,} | {_s(st['sensor']['median'])} | {_s(st['tester']['median'])} | "
            f"{r['ratio_steady']['tester']}x | {_s(st['daemon']['median'])} | "
            f"{r['ratio_steady']['daemon']}x | {'yes' if same else 'NO'} |"
        )
    out.append("\n### Idle (nothing new) and first evaluations\n")
    out.append(
        "| N | sensor idle tick | tester idle | daemon idle | tester first (no cursor, cold "
        "cache) | daemon first (no cursor) | tester / daemon after the requests |"
    )
    out.append("|---:|---:|---:|---:|---:|---:|---:|")
    for r in result["results"]:
        idle = r["idle"]
        out.append(
            f"| {r['n']:,} | {_s(idle['sensor']['median'])} | {_s(idle['tester']['median'])} | "
            f"{_s(idle['daemon']['median'])} | {_s(r['tester_first']['seconds'])} | "
            f"{_s(r['daemon_first']['seconds'])} | {_s(r['tester_after']['seconds'])} / "
            f"{_s(r['daemon_after']['seconds'])} |"
        )
    out.append("\n### Sensor cold start and seeding\n")
    out.append(
        "| N | sensor queries: steady / cold tick | sensor tick from no cursor (100 enriched "
        "transcripts) | ticks to catch up | catch-up estimate | steady min-max: sensor / tester / "
        "daemon | seeded events (s) |"
    )
    out.append("|---:|---:|---:|---:|---:|---|---:|")
    for r in result["results"]:
        cold, st = r["sensor_cold_start"], r["steady"]
        spread = " / ".join(
            f"{_s(st[k]['min'])}-{_s(st[k]['max'])}" for k in ("sensor", "tester", "daemon")
        )
        out.append(
            f"| {r['n']:,} | {st['sensor']['queries']} / {cold['queries_per_tick']} | "
            f"{_s(cold['tick_p50_seconds'])} | {cold['ticks_to_catch_up']} | "
            f"{_s(cold['catch_up_seconds_estimate'])} | {spread} | "
            f"{r['seed_events']:,} ({r['seed_events_seconds']:.0f}) |"
        )
    check = result["seeding_check"]
    if check:
        out.append(
            f"\nSeeding check (N={check['n']}, M={check['m']}): batched seeding and "
            f"`report_runless_asset_event` gave identical storage ids, partitions and answers; "
            f"{check['ms_per_event']['api']} ms/event through the API vs "
            f"{check['ms_per_event']['fast']} ms/event batched."
        )
    load = result["machine"]
    out.append(
        f"Load average before/after: {load['load_average_before']} / "
        f"{load['load_average_after']} on {load['cpus']} CPUs."
    )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 5000], help="partitions")
    parser.add_argument("--m", type=int, default=20, help="new transcripts per steady tick")
    parser.add_argument("--repeat", type=int, default=5, help="timed repeats (median)")
    parser.add_argument(
        "--cold-ticks", type=int, default=3, help="sensor ticks timed from no cursor"
    )
    parser.add_argument(
        "--check-n", type=int, default=30, help="partitions of the seeding check (0 skips)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results path")
    args = parser.parse_args()
    result = run(args.n, args.m, args.repeat, args.cold_ticks, args.check_n)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))
    print(f"\nWrote {args.out}")


if __name__ == "__main__":
    main()
