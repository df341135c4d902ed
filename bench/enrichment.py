"""Per-stage cost of the whole chain, and grounded-insight quality, on the demo corpus.

In a temporary ``PODCAST_DATA_DIR`` and an empty temporary ``DAGSTER_HOME`` (inherited
``PODCAST_*`` variables are dropped), writes the demo profile (``DEMO_PROFILE``: packaged
faster-whisper ``tiny.en``, packaged ``all-MiniLM-L6-v2`` for the extractive summary, the
embedding verifier and the embeddings, packaged spaCy ``en_core_web_sm`` for NER) with
``write_settings``, serves ``demo/site`` on loopback with ``serve_directory`` and ingests both
demo feeds with ``podcast_assets.runner.ingest`` (as ``tests/test_enrichment.py`` does): per
episode one ``episode_job`` run (episode_metadata, raw_audio, transcript), one ``enrichment_job``
run (summary, grounded_insights + its blocking check, knowledge_graph, embeddings), then one
``corpus_graph_job`` run. Everything runs in this process, through the instance.

Then it reports, per stage and across the 7 episodes:

- the step duration from the instance (``instance.get_run_step_stats(run_id)``: STEP_START to
  STEP_SUCCESS): first episode, p50, max and total;
- the stage's own time recorded in its artifact: ``audio.json`` ``download_seconds``,
  ``transcript.json`` ``processing_seconds`` (Whisper's excludes the model load; a publisher
  transcript's is fetch + parse), ``seconds`` of ``summary.json`` / ``gi.json`` / ``kg.json`` and of
  the ``chunks.parquet`` schema metadata (``metadata.json`` records none);
- model load times where an artifact records them (``transcript.json`` ``details.load_seconds``,
  ``summary.json`` ``details.load_seconds``, ``gi.json`` ``provenance.load_seconds``), for the
  episode that loaded the model against the rest; spaCy's load is not recorded, so it is
  estimated as the first knowledge_graph step minus the median of the others;
- grounded-insight quality from the corpus tables (``podcast_core.corpus.query``: ``insights``,
  ``quotes``, ``transcripts``): insights, grounded rate, verbatim rate recomputed here as the
  share of quotes whose text equals ``transcript.text[char_start:char_end]`` (not the artifact's
  own ``stats``), timestamps inside the episode, quotes per grounded insight; also over every
  quote in the ``gi.json`` files, including those below the support threshold that the ``quotes``
  table leaves out.

Caveat printed with the results: with the demo profile's extractive summarizer the insight
candidates are transcript sentences, so grounding is near-trivial (each insight finds itself).
The models are real (packaged MiniLM, spaCy en_core_web_sm, faster-whisper tiny.en) on real
speech, but the clips are short (2.6 to 19.3 s), so fixed per-episode costs dominate.

Run from the repository root (about 1-2 minutes on 2 cores)::

    .venv/bin/python bench/enrichment.py [--keep] [--out bench/results/enrichment.json]

Prints markdown tables and writes ``bench/results/enrichment.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "enrichment.json"
INGEST_STAGES = ("episode_metadata", "raw_audio", "transcript")
ENRICH_STAGES = ("summary", "grounded_insights", "knowledge_graph", "embeddings")
STAGES = INGEST_STAGES + ENRICH_STAGES
ARTIFACT_FIELD = {
    "episode_metadata": None,
    "raw_audio": "audio.json download_seconds",
    "transcript": "transcript.json processing_seconds",
    "summary": "summary.json seconds",
    "grounded_insights": "gi.json seconds",
    "knowledge_graph": "kg.json seconds",
    "embeddings": "chunks.parquet metadata seconds",
}
TIMESTAMP_TOLERANCE_MS = 500
CAVEAT = (
    "With the demo profile's extractive summarizer, every insight candidate is a transcript "
    "sentence (the summary's bullets), so grounding is near-trivial: each insight retrieves "
    "itself as its best window. These rates show that the machinery (span resolution, "
    "timestamps, the blocking check) is correct on real output, not that an abstractive "
    "summarizer's or an LLM's claims would ground as well. The models are real (packaged "
    "all-MiniLM-L6-v2, spaCy en_core_web_sm, faster-whisper tiny.en) on real speech, but the "
    "clips are 2.6 to 19.3 s, so fixed per-episode costs weigh far more than on real episodes."
)


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


def _summary(values: list[float], first: float | None = None) -> dict[str, Any]:
    """n, first, p50, max, total; ``first_excess`` = first - median of the others."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "first": round(first, 3) if first is not None else None,
        "first_excess": (
            round(first - statistics.median(values[1:]), 3)
            if first is not None and len(values) > 1
            else None
        ),
        "p50": round(statistics.median(values), 3),
        "max": round(max(values), 3),
        "total": round(sum(values), 3),
    }


def _prepare_environment(tmp: Path) -> tuple[Path, Path]:
    for var in [v for v in os.environ if v.startswith("PODCAST_")]:
        del os.environ[var]
    data, home = tmp / "data", tmp / "home"
    home.mkdir(parents=True)
    os.environ["PODCAST_DATA_DIR"] = str(data)
    os.environ["DAGSTER_HOME"] = str(home)
    return data, home


def _runs(instance, job_name: str) -> list:
    import dagster as dg

    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job_name))
    return sorted(runs, key=lambda r: instance.get_run_stats(r.run_id).start_time or 0.0)


def _step_times(instance, run_id: str) -> dict[str, float]:
    """Step key -> STEP_START to STEP_SUCCESS seconds, in execution order."""
    stats = [
        s
        for s in instance.get_run_step_stats(run_id)
        if s.start_time is not None and s.end_time is not None
    ]
    stats.sort(key=lambda s: s.start_time)
    return {s.step_key: s.end_time - s.start_time for s in stats}


def _artifact_seconds(store, key: str) -> dict[str, float | None]:
    import pyarrow.parquet as pq

    from podcast_core.storage import episode_path

    def doc(name: str) -> dict[str, Any]:
        rel = episode_path(key, name)
        return store.read_json(rel) if store.exists(rel) else {}

    chunks_rel = episode_path(key, "chunks.parquet")
    chunk_meta = (
        pq.read_schema(io.BytesIO(store.read_bytes(chunks_rel))).metadata or {}
        if store.exists(chunks_rel)
        else {}
    )

    def number(value: Any) -> float | None:
        return None if value is None else float(value)

    return {
        "episode_metadata": None,
        "raw_audio": number(doc("audio.json").get("download_seconds")),
        "transcript": number(doc("transcript.json").get("processing_seconds")),
        "summary": number(doc("summary.json").get("seconds")),
        "grounded_insights": number(doc("gi.json").get("seconds")),
        "knowledge_graph": number(doc("kg.json").get("seconds")),
        "embeddings": number(chunk_meta.get(b"seconds", b"").decode() or None),
    }


def _model_loads(
    store,
    order: list[str],
    enrich_order: list[str],
    step_by_key: dict[str, dict[str, float]],
    first_enrich_steps: list[str],
) -> list[dict[str, Any]]:
    """Model load times: recorded in the artifacts where they are, else estimated.

    Recorded: the value on the episode that loaded the model against the other episodes' max.
    Estimated: the first episode's step minus the median of the other episodes' steps, for the
    step that ran first among those using the model (its artifact does not record the load).
    """
    from podcast_core.storage import episode_path

    rows: list[dict[str, Any]] = []

    def recorded(model: str, stage: str, where: str, series: list[tuple[str, float]]) -> None:
        rest = [v for _, v in series[1:]]
        rows.append(
            {
                "model": model,
                "stage": stage,
                "how": f"recorded: {where}",
                "episodes": len(series),
                "first_episode": series[0][0] if series else None,
                "first_seconds": round(series[0][1], 3) if series else None,
                "rest_max_seconds": round(max(rest), 4) if rest else None,
            }
        )

    def estimated(model: str, stage: str) -> None:
        steps = [step_by_key[k][stage] for k in enrich_order if stage in step_by_key[k]]
        if len(steps) < 2:
            return
        rows.append(
            {
                "model": model,
                "stage": stage,
                "how": "estimate: first step - p50 of the other steps (load not recorded)",
                "episodes": len(steps),
                "first_episode": enrich_order[0],
                "first_seconds": round(steps[0] - statistics.median(steps[1:]), 3),
                "rest_max_seconds": None,
            }
        )

    whisper, summary, gi = [], [], []
    for key in order:
        t = store.read_json(episode_path(key, "transcript.json"))
        if t.get("source") == "whisper":
            whisper.append((key, float((t.get("details") or {}).get("load_seconds") or 0.0)))
    for key in enrich_order:
        s = store.read_json(episode_path(key, "summary.json"))
        summary.append((key, float((s.get("details") or {}).get("load_seconds") or 0.0)))
        g = store.read_json(episode_path(key, "gi.json"))
        gi.append((key, float((g.get("provenance") or {}).get("load_seconds") or 0.0)))
    where = "transcript.json details.load_seconds"
    recorded("faster-whisper tiny.en", "transcript", where, whisper)
    # Every enrichment stage uses the embedder; the first one Dagster runs pays for the load.
    minilm_first = next((s for s in first_enrich_steps if s in ENRICH_STAGES), None)
    if minilm_first:
        estimated("all-MiniLM-L6-v2 (+ torch import)", minilm_first)
    recorded("all-MiniLM-L6-v2", "summary", "summary.json details.load_seconds", summary)
    recorded("all-MiniLM-L6-v2", "grounded_insights", "gi.json provenance.load_seconds", gi)
    estimated("spaCy en_core_web_sm (+ spacy import)", "knowledge_graph")
    return rows


def _process_model_counts(settings) -> dict[str, int]:
    from podcast_core import embed, graph, transcribe

    ner = graph.NerSettings(
        backend=settings.enrichment.ner_backend, model=settings.enrichment.ner_model
    )
    return {
        "whisper_models_loaded": transcribe.loaded_model_count(),
        "embedding_models_loaded": len(embed._MODELS),
        "ner_loads": graph.ner_load_count(ner),
    }


def _gi_quality(store, keys: set[str]) -> dict[str, Any]:
    from podcast_core.corpus import query
    from podcast_core.storage import episode_path

    _, transcripts = query(store, "SELECT key, text, duration_seconds FROM transcripts")
    text_of = {k: t or "" for k, t, _ in transcripts}
    duration_of = {k: d for k, _, d in transcripts}
    _, insights = query(
        store, "SELECT key, insight_id, text, grounded, support_score FROM insights ORDER BY 1, 2"
    )
    _, quotes = query(
        store,
        """SELECT key, quote_id, insight_id, text, char_start, char_end, timestamp_start_ms,
                  timestamp_end_ms, confidence FROM quotes ORDER BY 1, 2, 3""",
    )
    grounded = [i for i in insights if i[3]]
    distinct_quotes = {(q[0], q[1]): q for q in quotes}
    verbatim = sum(
        1 for (k, _), q in distinct_quotes.items() if q[3] == text_of.get(k, "")[q[4] : q[5]]
    )
    in_time = sum(
        1
        for (k, _), q in distinct_quotes.items()
        if duration_of.get(k) is not None
        and 0 <= q[6] <= q[7] <= duration_of[k] * 1000 + TIMESTAMP_TOLERANCE_MS
    )
    insight_in_text = sum(1 for i in insights if i[2] and i[2] in text_of.get(i[0], ""))
    supported = {(q[0], q[2]) for q in quotes}
    grounded_without_quote = sum(1 for i in grounded if (i[0], i[1]) not in supported)
    scores = [float(i[4]) for i in insights if i[4] is not None]

    # Every quote in the artifacts, including those below min_support (not in the quotes table).
    all_quotes = all_verbatim = 0
    artifact_stats = {"insights": 0, "grounded": 0}
    for key in sorted(keys):
        gi = store.read_json(episode_path(key, "gi.json"))
        text = text_of.get(key, "")
        for q in gi["quotes"]:
            all_quotes += 1
            all_verbatim += q["text"] == text[q["char_start"] : q["char_end"]]
        artifact_stats["insights"] += gi["stats"]["insights"]
        artifact_stats["grounded"] += gi["stats"]["grounded"]

    def rate(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    return {
        "episodes_with_insights": len({i[0] for i in insights}),
        "insights": len(insights),
        "grounded": len(grounded),
        "grounded_rate": rate(len(grounded), len(insights)),
        "supporting_quotes": len(distinct_quotes),
        "supported_by_edges": len(quotes),
        "verbatim_quotes": verbatim,
        "verbatim_rate": rate(verbatim, len(distinct_quotes)),
        "quotes_inside_episode_rate": rate(in_time, len(distinct_quotes)),
        "quotes_per_grounded_insight": rate(len(quotes), len(grounded)),
        "distinct_quotes_per_grounded_insight": rate(len(distinct_quotes), len(grounded)),
        "grounded_without_quote": grounded_without_quote,
        "insight_text_verbatim_in_transcript_rate": rate(insight_in_text, len(insights)),
        "support_score_min": round(min(scores), 4) if scores else None,
        "support_score_p50": round(statistics.median(scores), 4) if scores else None,
        "all_artifact_quotes": all_quotes,
        "all_artifact_quotes_verbatim_rate": rate(all_verbatim, all_quotes),
        "artifact_stats_agree": artifact_stats
        == {"insights": len(insights), "grounded": len(grounded)},
    }


def run(keep: bool) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-enrichment-"))
    load_before = _load_average()
    try:
        data, _home = _prepare_environment(tmp)
        from podcast_assets.demo import DEMO_FEEDS, DEMO_PROFILE, DEMO_SITE, serve_directory
        from podcast_core.settings import load_settings, write_settings

        write_settings(data, DEMO_PROFILE)
        settings = load_settings()

        started = time.perf_counter()
        import podcast_assets.definitions  # noqa: F401  (warm-up, reported on its own)
        from podcast_assets.runner import get_instance, ingest

        import_seconds = time.perf_counter() - started

        from resources import open_artifact_store

        feeds: list[dict[str, Any]] = []
        lines: list[str] = []
        with serve_directory(DEMO_SITE) as base, get_instance(settings) as instance:
            for name, path in DEMO_FEEDS.items():
                started = time.perf_counter()
                report = ingest(
                    f"{base}/{path}", settings, instance, limit=10, name=name, echo=lines.append
                )
                feeds.append(
                    {
                        "feed": name,
                        "episodes": len(report.episodes),
                        "failed": len(report.failed),
                        "wall_seconds": round(time.perf_counter() - started, 3),
                    }
                )
            for line in lines:
                print(line, file=sys.stderr)
            failed = sum(f["failed"] for f in feeds)
            if failed:
                raise SystemExit(f"{failed} episodes failed; see the lines above")

            ingest_runs = _runs(instance, "episode_job")
            enrich_runs = _runs(instance, "enrichment_job")
            graph_runs = _runs(instance, "corpus_graph_job")
            order = [r.tags["dagster/partition"] for r in ingest_runs]
            if len(order) != len(set(order)) or {
                r.tags["dagster/partition"] for r in enrich_runs
            } != set(order):
                raise SystemExit("expected one episode_job and one enrichment_job run per episode")
            step_by_key: dict[str, dict[str, float]] = {k: {} for k in order}
            run_seconds: dict[str, dict[str, float]] = {k: {} for k in order}
            for job, runs in (("episode_job", ingest_runs), ("enrichment_job", enrich_runs)):
                for r in runs:
                    key = r.tags["dagster/partition"]
                    step_by_key[key].update(_step_times(instance, r.run_id))
                    stats = instance.get_run_stats(r.run_id)
                    run_seconds[key][job] = stats.end_time - stats.start_time
            # One corpus_graph_job per ingest() call (per feed): the graph grows with the corpus.
            graph_steps = [
                round(sum(_step_times(instance, r.run_id).values()), 3) for r in graph_runs
            ]
            enrich_order = [r.tags["dagster/partition"] for r in enrich_runs]
            first_enrich_steps = list(_step_times(instance, enrich_runs[0].run_id))

            store = open_artifact_store(settings)
            artifact_by_key = {k: _artifact_seconds(store, k) for k in order}
            from podcast_core.storage import episode_path

            audio = {
                k: store.read_json(episode_path(k, "transcript.json")).get("duration_seconds")
                for k in order
            }
            sources = {
                k: store.read_json(episode_path(k, "transcript.json"))["source"] for k in order
            }

            stages: dict[str, Any] = {}
            for stage in STAGES:
                series_order = order if stage in INGEST_STAGES else enrich_order
                steps = [step_by_key[k][stage] for k in series_order if stage in step_by_key[k]]
                recorded = [
                    artifact_by_key[k][stage]
                    for k in series_order
                    if artifact_by_key[k][stage] is not None
                ]
                first_recorded = artifact_by_key[series_order[0]][stage]
                stages[stage] = {
                    "step": _summary(steps, steps[0] if steps else None),
                    "artifact": _summary(recorded, first_recorded),
                    "artifact_field": ARTIFACT_FIELD[stage],
                }
            extra_steps = sorted({s for k in order for s in step_by_key[k]} - set(STAGES))
            for step in extra_steps:
                steps = [step_by_key[k][step] for k in enrich_order if step in step_by_key[k]]
                stages[step] = {
                    "step": _summary(steps, steps[0] if steps else None),
                    "artifact": {"n": 0},
                    "artifact_field": None,
                }
            per_run = {
                job: _summary(
                    [run_seconds[k][job] for k in order if job in run_seconds[k]],
                    run_seconds[order[0]].get(job),
                )
                for job in ("episode_job", "enrichment_job")
            }
            episodes = [
                {
                    "key": k,
                    "transcript_source": sources[k],
                    "audio_seconds": audio[k],
                    "steps": {s: round(v, 3) for s, v in step_by_key[k].items()},
                    "artifact_seconds": artifact_by_key[k],
                    "run_seconds": {j: round(v, 3) for j, v in run_seconds[k].items()},
                }
                for k in order
            ]
            loads = _model_loads(store, order, enrich_order, step_by_key, first_enrich_steps)
            counts = _process_model_counts(settings)
            quality = _gi_quality(store, set(order))
        return {
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "load_average_before": load_before,
                "load_average_after": _load_average(),
            },
            "versions": {
                d: _version(d)
                for d in ("dagster", "faster-whisper", "sentence-transformers", "spacy", "torch")
            },
            "profile": DEMO_PROFILE,
            "episodes_count": len(order),
            "whisper_episodes": sum(1 for s in sources.values() if s == "whisper"),
            "import_definitions_seconds": round(import_seconds, 3),
            "feeds": feeds,
            "stages": stages,
            "runs": per_run,
            "enrichment_step_order": first_enrich_steps,
            "corpus_graph_steps": graph_steps,
            "model_loads": loads,
            "process_model_counts": counts,
            "gi_quality": quality,
            "episodes": episodes,
            "caveat": CAVEAT,
            "temp_dir": str(tmp) if keep else None,
        }
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render(result: dict[str, Any]) -> str:
    out: list[str] = []
    n = result["episodes_count"]
    out.append(
        f"### Per-stage time per episode ({n} episodes, {result['whisper_episodes']} through "
        "Whisper; seconds)\n"
    )
    out.append(
        "| stage | step p50 | step max | step total | step first (excess) | artifact p50 | "
        "artifact max | artifact total | artifact first | artifact field |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")

    def first(s: dict[str, Any]) -> str:
        if s.get("first") is None:
            return "-"
        excess = s.get("first_excess")
        return _fmt(s["first"]) + (f" ({excess:+.2f})" if excess is not None else "")

    for stage, row in result["stages"].items():
        s, a = row["step"], row["artifact"]
        out.append(
            f"| {stage} | {_fmt(s.get('p50'))} | {_fmt(s.get('max'))} | {_fmt(s.get('total'))} | "
            f"{first(s)} | {_fmt(a.get('p50'))} | {_fmt(a.get('max'))} | {_fmt(a.get('total'))} "
            f"| {_fmt(a.get('first'))} | {row['artifact_field'] or '-'} |"
        )
    for job, s in result["runs"].items():
        out.append(
            f"| *{job} run (start to end)* | {_fmt(s.get('p50'))} | {_fmt(s.get('max'))} | "
            f"{_fmt(s.get('total'))} | {first(s)} | | | | | |"
        )
    graph = result["corpus_graph_steps"]
    if graph:
        out.append(
            f"| *corpus_graph step, per ingest() call* | {' / '.join(_fmt(g) for g in graph)} "
            f"| | {_fmt(sum(graph))} | | | | | | |"
        )
    feeds = ", ".join(f"{f['feed']} {f['wall_seconds']:.1f}" for f in result["feeds"])
    out.append(
        f"\nStep = STEP_START to STEP_SUCCESS from `instance.get_run_step_stats`. First = the "
        f"first episode processed, where models load; excess = first - p50 of the others (also "
        f"reflects clip length). Enrichment steps run in the order "
        f"{', '.join(result['enrichment_step_order'])}. `ingest()` wall seconds per feed: "
        f"{feeds}; `import podcast_assets.definitions`: "
        f"{result['import_definitions_seconds']:.2f} s (before the runs).\n"
    )
    out.append("### Per episode (seconds)\n")
    out.append(
        "| episode | transcript source | audio | episode_job run | transcript step "
        "| enrichment_job run | enrichment steps |"
    )
    out.append("|---|---|---:|---:|---:|---:|---:|")
    for e in result["episodes"]:
        enrich = sum(v for k, v in e["steps"].items() if k not in INGEST_STAGES)
        out.append(
            f"| {e['key']} | {e['transcript_source']} | {_fmt(e['audio_seconds'], 1)} | "
            f"{_fmt(e['run_seconds'].get('episode_job'))} | {_fmt(e['steps'].get('transcript'))} "
            f"| {_fmt(e['run_seconds'].get('enrichment_job'))} | {_fmt(enrich)} |"
        )
    out.append("")
    out.append("### Model loads (seconds)\n")
    out.append("| model | stage | how | episodes | first episode | other episodes max |")
    out.append("|---|---|---|---:|---:|---:|")
    for row in result["model_loads"]:
        out.append(
            f"| {row['model']} | {row['stage']} | {row['how']} | {row['episodes']} | "
            f"{_fmt(row.get('first_seconds'))} | {_fmt(row.get('rest_max_seconds'), 4)} |"
        )
    c = result["process_model_counts"]
    out.append(
        f"\nLoaded once per process: Whisper models {c['whisper_models_loaded']}, embedding "
        f"models {c['embedding_models_loaded']}, spaCy loads {c['ner_loads']}.\n"
    )
    q = result["gi_quality"]
    out.append("### Grounded insights on the demo corpus (corpus tables)\n")
    out.append("| measure | value |")
    out.append("|---|---:|")
    rows = [
        ("episodes with insights", q["episodes_with_insights"]),
        ("insights", q["insights"]),
        ("grounded", q["grounded"]),
        ("grounded rate", q["grounded_rate"]),
        ("supporting quotes (quotes table, distinct)", q["supporting_quotes"]),
        ("SUPPORTED_BY edges", q["supported_by_edges"]),
        ("verbatim rate (text == transcript[char_start:char_end])", q["verbatim_rate"]),
        ("quotes with timestamps inside the episode", q["quotes_inside_episode_rate"]),
        ("quotes (edges) per grounded insight", q["quotes_per_grounded_insight"]),
        ("distinct quotes per grounded insight", q["distinct_quotes_per_grounded_insight"]),
        ("grounded insights without a quote", q["grounded_without_quote"]),
        (
            "insight text found verbatim in its transcript",
            q["insight_text_verbatim_in_transcript_rate"],
        ),
        (
            "support score min / p50",
            f"{_fmt(q['support_score_min'], 3)} / {_fmt(q['support_score_p50'], 3)}",
        ),
        ("all gi.json quotes (incl. below min_support)", q["all_artifact_quotes"]),
        ("all gi.json quotes verbatim rate", q["all_artifact_quotes_verbatim_rate"]),
        ("gi.json stats agree with the tables", q["artifact_stats_agree"]),
    ]
    for name, value in rows:
        out.append(f"| {name} | {_fmt(value, 3)} |")
    out.append(f"\n**Caveat.** {result['caveat']}\n")
    machine = result["machine"]
    out.append(
        f"Load average before/after: {machine['load_average_before']} / "
        f"{machine['load_average_after']} on {machine['cpus']} CPUs.\n"
    )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results path")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    result = run(args.keep)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))
    print(f"Wrote {args.out}" + (f"; kept {result['temp_dir']}" if args.keep else ""))


if __name__ == "__main__":
    main()
