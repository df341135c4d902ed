"""The enrichment stages behind the Dagster assets.

Per episode: summary, grounded insights, knowledge graph and embeddings; plus the corpus graph.

Every stage reads the transcript (and its own upstream artifacts) from the artifact store,
writes one artifact atomically with its provenance, and returns the record. A stage whose inputs
and settings are unchanged since its last run reuses its artifact instead of recomputing it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import time
from typing import Any

from podcast_core.embed import Embedder
from podcast_core.pipeline import EpisodeError
from podcast_core.storage import ArtifactStore, episode_path

SUMMARY_FILE = "summary.json"
INSIGHTS_FILE = "gi.json"
GRAPH_FILE = "kg.json"
CHUNKS_FILE = "chunks.parquet"
CORPUS_GRAPH_DIR = "_corpus/graph"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:24]


def load_transcript(store: ArtifactStore, key: str) -> tuple[dict[str, Any], str]:
    """The transcript document of ``key`` and a digest of its bytes."""
    rel = episode_path(key, "transcript.json")
    if not store.exists(rel):
        raise EpisodeError(f"episode {key}: transcript.json missing; materialize transcript first")
    raw = store.read_bytes(rel)
    import json

    return json.loads(raw), _digest(raw)


def _reusable(store: ArtifactStore, rel: str, fingerprint: str) -> dict[str, Any] | None:
    if store.exists(rel) and rel.endswith(".json"):
        existing = store.read_json(rel)
        if existing.get("input_fingerprint") == fingerprint:
            return existing
    return None


def materialize_summary(
    store: ArtifactStore, key: str, settings: Any, embedder: Embedder
) -> dict[str, Any]:
    """Write ``summary.json``: lead, bullets, paragraph and provenance."""
    from podcast_core.summarize import SUMMARY_VERSION, summarize

    transcript, digest = load_transcript(store, key)
    fingerprint = _digest(SUMMARY_VERSION, digest, settings.fingerprint())
    rel = episode_path(key, SUMMARY_FILE)
    if (existing := _reusable(store, rel, fingerprint)) is not None:
        return existing | {"outcome": "reused"}
    started = time.perf_counter()
    try:
        # Share the process's embedder only when it is the model the summary settings name, so
        # the summary's fingerprint always describes the model that made it.
        shared = embedder if embedder.model_id == settings.resolved_model() else None
        result = summarize(transcript["text"], settings, embedder=shared)
    except Exception as exc:
        raise EpisodeError(f"episode {key}: summary failed: {exc}") from exc
    document = {
        "key": key,
        "feed": transcript.get("feed"),
        **result.to_dict(),
        "seconds": round(time.perf_counter() - started, 3),
        "code_version": SUMMARY_VERSION,
        "input_fingerprint": fingerprint,
        "created_at": _now(),
    }
    store.write_json(rel, document)
    return document | {"outcome": "created"}


def insight_candidates(summary: dict[str, Any]) -> list[str]:
    """The statements to ground: the summary's bullets, else its lead."""
    bullets = [b for b in summary.get("bullets") or [] if b and b.strip()]
    return bullets or ([summary["lead"]] if summary.get("lead") else [])


def materialize_insights(
    store: ArtifactStore, key: str, settings: Any, embedder: Embedder
) -> dict[str, Any]:
    """Write ``gi.json``: insights from the summary, grounded in verbatim, timed quotes."""
    from podcast_core.insights import GI_VERSION, build_insights, check_insights

    transcript, digest = load_transcript(store, key)
    summary_rel = episode_path(key, SUMMARY_FILE)
    if not store.exists(summary_rel):
        raise EpisodeError(f"episode {key}: summary.json missing; materialize summary first")
    summary = store.read_json(summary_rel)
    fingerprint = _digest(
        GI_VERSION,
        digest,
        summary.get("input_fingerprint", ""),
        settings.fingerprint(),
        embedder.model_id,
    )
    rel = episode_path(key, INSIGHTS_FILE)
    if (existing := _reusable(store, rel, fingerprint)) is not None:
        return existing | {"outcome": "reused"}
    started = time.perf_counter()
    try:
        gi = build_insights(transcript, insight_candidates(summary), embedder, settings)
    except Exception as exc:
        raise EpisodeError(f"episode {key}: grounded insights failed: {exc}") from exc
    problems = check_insights(gi, transcript["text"], transcript.get("duration_seconds"))
    if problems:
        raise EpisodeError(f"episode {key}: grounded insights invalid: {'; '.join(problems)}")
    document = {
        **gi,
        "key": key,
        "feed": transcript.get("feed"),
        "summary_backend": summary["backend"],
        "seconds": round(time.perf_counter() - started, 3),
        "code_version": GI_VERSION,
        "input_fingerprint": fingerprint,
        "created_at": _now(),
    }
    store.write_json(rel, document)
    return document | {"outcome": "created"}


def materialize_graph(
    store: ArtifactStore, key: str, ner: Any, embedder: Embedder
) -> dict[str, Any]:
    """Write ``kg.json``: people, organizations and topics of the episode and their relations."""
    from podcast_core.graph import GRAPH_VERSION, build_episode_graph

    transcript, digest = load_transcript(store, key)
    metadata_rel = episode_path(key, "metadata.json")
    if not store.exists(metadata_rel):
        raise EpisodeError(f"episode {key}: metadata.json missing")
    metadata = store.read_json(metadata_rel)
    fingerprint = _digest(
        GRAPH_VERSION,
        digest,
        _digest(store.read_bytes(metadata_rel)),
        ner.fingerprint(),
        embedder.model_id,
    )
    rel = episode_path(key, GRAPH_FILE)
    if (existing := _reusable(store, rel, fingerprint)) is not None:
        return existing | {"outcome": "reused"}
    started = time.perf_counter()
    try:
        graph = build_episode_graph(transcript, metadata, ner=ner, embedder=embedder)
    except Exception as exc:
        raise EpisodeError(f"episode {key}: knowledge graph failed: {exc}") from exc
    document = {
        **graph,
        "key": key,
        "seconds": round(time.perf_counter() - started, 3),
        "code_version": GRAPH_VERSION,
        "input_fingerprint": fingerprint,
        "created_at": _now(),
    }
    store.write_json(rel, document)
    return document | {"outcome": "created"}


def materialize_embeddings(
    store: ArtifactStore,
    key: str,
    embedder: Embedder,
    *,
    chunk_tokens: int,
    overlap_tokens: int,
) -> dict[str, Any]:
    """Write ``chunks.parquet``: sentence-bounded transcript chunks with their vectors."""
    import pyarrow.parquet as pq

    from podcast_core.search import EMBEDDINGS_VERSION, chunk_transcript, embed_chunks

    transcript, digest = load_transcript(store, key)
    fingerprint = _digest(
        EMBEDDINGS_VERSION, digest, embedder.model_id, str(chunk_tokens), str(overlap_tokens)
    )
    rel = episode_path(key, CHUNKS_FILE)
    if store.exists(rel):
        existing = pq.read_schema(io.BytesIO(store.read_bytes(rel))).metadata or {}
        if existing.get(b"input_fingerprint", b"").decode() == fingerprint:
            table = pq.read_table(io.BytesIO(store.read_bytes(rel)), columns=["chunk_id"])
            return {
                "key": key,
                "chunks": table.num_rows,
                "model": embedder.model_id,
                "outcome": "reused",
            }
    started = time.perf_counter()
    try:
        rows = chunk_transcript(transcript, chunk_tokens, overlap_tokens)
        table = embed_chunks(rows, embedder)
    except Exception as exc:
        raise EpisodeError(f"episode {key}: embeddings failed: {exc}") from exc
    seconds = round(time.perf_counter() - started, 3)
    provenance = {
        "key": key,
        "model": embedder.model_id,
        "code_version": EMBEDDINGS_VERSION,
        "input_fingerprint": fingerprint,
        "created_at": _now(),
        "seconds": str(seconds),
        "chunk_tokens": str(chunk_tokens),
        "overlap_tokens": str(overlap_tokens),
    }
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **provenance})
    with store.open_write(rel) as tmp:
        pq.write_table(table, tmp)
    return {
        "key": key,
        "chunks": table.num_rows,
        "model": embedder.model_id,
        "seconds": seconds,
        "outcome": "created",
    }


def materialize_corpus_graph(store: ArtifactStore, embedder: Embedder) -> dict[str, Any]:
    """Merge every episode's ``kg.json`` into the corpus graph under ``_corpus/graph/``.

    Writes ``nodes.parquet``, ``edges.parquet``, ``aliases.parquet`` (episode-level id →
    resolved id, read by the corpus views) and ``graph.graphml``, each atomically.
    """
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from podcast_core.graph import GRAPH_VERSION, merge_graphs, write_graphml

    started = time.perf_counter()
    paths = store.list("*/*/" + GRAPH_FILE)
    graphs = [store.read_json(p) for p in paths]
    merged = merge_graphs(graphs, embedder)
    nodes = [
        {
            "id": n["id"],
            "type": n["type"],
            "name": n.get("name") or "",
            "properties": json.dumps(n.get("properties") or {}, ensure_ascii=False),
        }
        for n in merged["nodes"]
    ]
    edges = [
        {
            "source": e["source"],
            "target": e["target"],
            "type": e["type"],
            "weight": float(e.get("weight") or 0.0),
            "count": int(e.get("count") or 0),
        }
        for e in merged["edges"]
    ]
    aliases = [
        {"alias_id": alias, "canonical_id": canonical}
        for alias, canonical in sorted(_alias_map(merged).items())
    ]
    tables = {
        "nodes.parquet": pa.Table.from_pylist(
            nodes,
            schema=pa.schema(
                [
                    ("id", pa.string()),
                    ("type", pa.string()),
                    ("name", pa.string()),
                    ("properties", pa.string()),
                ]
            ),
        ),
        "edges.parquet": pa.Table.from_pylist(
            edges,
            schema=pa.schema(
                [
                    ("source", pa.string()),
                    ("target", pa.string()),
                    ("type", pa.string()),
                    ("weight", pa.float64()),
                    ("count", pa.int64()),
                ]
            ),
        ),
        "aliases.parquet": pa.Table.from_pylist(
            aliases, schema=pa.schema([("alias_id", pa.string()), ("canonical_id", pa.string())])
        ),
    }
    for name, table in tables.items():
        with store.open_write(f"{CORPUS_GRAPH_DIR}/{name}") as tmp:
            pq.write_table(table, tmp)
    with store.open_write(f"{CORPUS_GRAPH_DIR}/graph.graphml") as tmp:
        write_graphml(merged, tmp)
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node["type"]] = counts.get(node["type"], 0) + 1
    return {
        "episodes": len(graphs),
        "nodes": len(nodes),
        "edges": len(edges),
        "merged_aliases": sum(1 for a in aliases if a["alias_id"] != a["canonical_id"]),
        "node_types": counts,
        "seconds": round(time.perf_counter() - started, 3),
        "code_version": GRAPH_VERSION,
        "created_at": _now(),
    }


def _alias_map(merged: dict[str, Any]) -> dict[str, str]:
    """Every episode-level entity id → its resolved corpus id."""
    mapping: dict[str, str] = {}
    for node in merged["nodes"]:
        mapping[node["id"]] = node["id"]
        for alias in (node.get("properties") or {}).get("merged_ids", []):
            mapping[alias] = node["id"]
    return mapping
