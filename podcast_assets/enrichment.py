"""Per-episode enrichment assets downstream of ``transcript``, and the corpus-wide graph.

Each asset is thin: the work lives in ``podcast_core.enrich``. Models (the embedder, the
summarizer, the entity recognizer) load lazily, once per run process.
"""

from typing import Any

import dagster as dg

from partitions import EPISODES
from podcast_assets.batch import each_episode
from podcast_assets.ingestion import BATCH_POLICY, episode_metadata, transcript
from podcast_core import enrich
from podcast_core.settings import load_settings
from podcast_core.storage import episode_path
from resources import (
    ArtifactStoreResource,
    EmbeddingResource,
    EntityRecognizerResource,
    GroundingResource,
    SummarizerResource,
)

GROUP = "enrichment"


def _code_versions() -> dict[str, str]:
    # Backend, model and prompt settings are part of each code version, so changing them marks
    # the affected artifacts stale in the UI.
    from podcast_core.graph import GRAPH_VERSION, NerSettings
    from podcast_core.insights import GI_VERSION, GroundingSettings
    from podcast_core.search import EMBEDDINGS_VERSION
    from podcast_core.summarize import SUMMARY_VERSION, SummarySettings

    e = load_settings().enrichment
    summary = SummarySettings(backend=e.summary_backend, model=e.summary_model).fingerprint()
    grounding = GroundingSettings(
        verifier=e.verifier, nli_model=e.nli_model, llm_model=e.llm_model
    ).fingerprint()
    ner = NerSettings(backend=e.ner_backend, model=e.ner_model).fingerprint()
    return {
        "summary": f"{SUMMARY_VERSION}:{summary}",
        "grounded_insights": f"{GI_VERSION}:{grounding}|{e.embedding_model}",
        "knowledge_graph": f"{GRAPH_VERSION}:{ner}|{e.embedding_model}",
        "embeddings": (
            f"{EMBEDDINGS_VERSION}:{e.embedding_model}|{e.chunk_tokens}/{e.chunk_overlap}"
        ),
    }


CODE_VERSIONS = _code_versions()


def _timings(record: dict[str, Any]) -> dict[str, Any]:
    return {"outcome": record.get("outcome", ""), "seconds": float(record.get("seconds") or 0.0)}


@dg.asset(
    partitions_def=EPISODES,
    group_name=GROUP,
    kinds={"transformers", "json"},
    deps=[transcript],
    code_version=CODE_VERSIONS["summary"],
    backfill_policy=BATCH_POLICY,
)
def summary(
    context: dg.AssetExecutionContext,
    artifacts: ArtifactStoreResource,
    summarizer: SummarizerResource,
    embedding: EmbeddingResource,
) -> dg.MaterializeResult:
    """A lead sentence, key-point bullets and a paragraph summarizing the episode."""
    store, settings, embedder = artifacts.store(), summarizer.settings(), embedding.embedder()

    def describe(key: str, record: dict[str, Any]) -> dict[str, Any]:
        return {
            **_timings(record),
            "backend": record["backend"],
            "model": record["model"],
            "lead": record["lead"],
            "bullets": len(record["bullets"]),
            "summary": dg.MetadataValue.md("\n".join(f"- {b}" for b in record["bullets"])),
            "path": dg.MetadataValue.path(store.location(episode_path(key, enrich.SUMMARY_FILE))),
        }

    return each_episode(
        context, lambda key: enrich.materialize_summary(store, key, settings, embedder), describe
    )


@dg.asset(
    partitions_def=EPISODES,
    group_name=GROUP,
    kinds={"sentence_transformers", "json"},
    deps=[summary, transcript],
    code_version=CODE_VERSIONS["grounded_insights"],
    backfill_policy=BATCH_POLICY,
)
def grounded_insights(
    context: dg.AssetExecutionContext,
    artifacts: ArtifactStoreResource,
    grounding: GroundingResource,
    embedding: EmbeddingResource,
) -> dg.MaterializeResult:
    """Claims, recommendations, observations and questions backed by verbatim, timed quotes."""
    store, settings, embedder = artifacts.store(), grounding.settings(), embedding.embedder()

    def describe(key: str, record: dict[str, Any]) -> dict[str, Any]:
        stats = record["stats"]
        return {
            **_timings(record),
            "insights": stats["insights"],
            "grounded": stats["grounded"],
            "grounded_rate": float(stats["grounded_rate"]),
            "quotes_per_insight": float(stats["quotes_per_insight"]),
            "verifier": record["provenance"]["verifier"],
            "path": dg.MetadataValue.path(store.location(episode_path(key, enrich.INSIGHTS_FILE))),
        }

    return each_episode(
        context, lambda key: enrich.materialize_insights(store, key, settings, embedder), describe
    )


@dg.asset_check(
    asset=grounded_insights,
    partitions_def=EPISODES,
    blocking=True,
    description="Every quote is verbatim, its timestamps lie inside the episode, and every "
    "grounded insight has at least one supporting quote.",
)
def grounded_insights_verbatim(
    context: dg.AssetCheckExecutionContext, artifacts: ArtifactStoreResource
) -> dg.AssetCheckResult:
    """Re-read gi.json and the transcript from storage and verify every quote against them."""
    from podcast_core.insights import check_insights

    store = artifacts.store()
    problems: list[str] = []
    quotes = 0
    for key in context.partition_keys:
        gi = store.read_json(episode_path(key, enrich.INSIGHTS_FILE))
        doc = store.read_json(episode_path(key, "transcript.json"))
        quotes += len(gi["quotes"])
        problems += [
            f"{key}: {p}" for p in check_insights(gi, doc["text"], doc.get("duration_seconds"))
        ]
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"quotes_checked": quotes, "problems": problems[:20]},
        description="; ".join(problems[:5]) if problems else None,
    )


@dg.asset(
    partitions_def=EPISODES,
    group_name=GROUP,
    kinds={"spacy", "json"},
    deps=[transcript, episode_metadata],
    code_version=CODE_VERSIONS["knowledge_graph"],
    backfill_policy=BATCH_POLICY,
)
def knowledge_graph(
    context: dg.AssetExecutionContext,
    artifacts: ArtifactStoreResource,
    ner: EntityRecognizerResource,
    embedding: EmbeddingResource,
) -> dg.MaterializeResult:
    """People, organizations and topics of the episode, with mentions and relations."""
    store, settings, embedder = artifacts.store(), ner.settings(), embedding.embedder()

    def describe(key: str, record: dict[str, Any]) -> dict[str, Any]:
        kinds: dict[str, int] = {}
        for node in record["nodes"]:
            kinds[node["type"]] = kinds.get(node["type"], 0) + 1
        return {
            **_timings(record),
            "nodes": len(record["nodes"]),
            "edges": len(record["edges"]),
            **{f"nodes_{k.lower()}": v for k, v in sorted(kinds.items())},
            "path": dg.MetadataValue.path(store.location(episode_path(key, enrich.GRAPH_FILE))),
        }

    return each_episode(
        context, lambda key: enrich.materialize_graph(store, key, settings, embedder), describe
    )


@dg.asset(
    partitions_def=EPISODES,
    group_name=GROUP,
    kinds={"sentence_transformers", "parquet"},
    deps=[transcript],
    code_version=CODE_VERSIONS["embeddings"],
    backfill_policy=BATCH_POLICY,
)
def embeddings(
    context: dg.AssetExecutionContext,
    artifacts: ArtifactStoreResource,
    embedding: EmbeddingResource,
) -> dg.MaterializeResult:
    """Sentence-bounded transcript chunks with their vectors, for hybrid search."""
    store, embedder = artifacts.store(), embedding.embedder()

    def stage(key: str) -> dict[str, Any]:
        return enrich.materialize_embeddings(
            store,
            key,
            embedder,
            chunk_tokens=embedding.chunk_tokens,
            overlap_tokens=embedding.chunk_overlap,
        )

    def describe(key: str, record: dict[str, Any]) -> dict[str, Any]:
        return {
            **_timings(record),
            "chunks": record["chunks"],
            "model": record["model"],
            "path": dg.MetadataValue.path(store.location(episode_path(key, enrich.CHUNKS_FILE))),
        }

    return each_episode(context, stage, describe)


ENRICHMENT_ASSETS = [summary, grounded_insights, knowledge_graph, embeddings]
ENRICHMENT_CHECKS = [grounded_insights_verbatim]


@dg.asset(
    group_name=GROUP,
    kinds={"networkx", "parquet"},
    deps=[knowledge_graph],
    code_version=CODE_VERSIONS["knowledge_graph"],
)
def corpus_graph(
    artifacts: ArtifactStoreResource, embedding: EmbeddingResource
) -> dg.MaterializeResult:
    """Every episode's knowledge graph merged, with people, organizations and topics resolved."""
    store = artifacts.store()
    record = enrich.materialize_corpus_graph(store, embedding.embedder())
    return dg.MaterializeResult(
        metadata={
            **{k: v for k, v in record.items() if k != "node_types"},
            **{f"nodes_{k.lower()}": v for k, v in record["node_types"].items()},
            "graphml": dg.MetadataValue.path(
                store.location(f"{enrich.CORPUS_GRAPH_DIR}/graph.graphml")
            ),
        }
    )
