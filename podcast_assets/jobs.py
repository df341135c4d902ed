"""Jobs and the run tags that route them through the run queue."""

import dagster as dg

from podcast_assets.enrichment import ENRICHMENT_ASSETS, ENRICHMENT_CHECKS
from podcast_assets.ingestion import INGESTION_ASSETS
from podcast_assets.k8s import WHISPER_K8S_TAGS
from podcast_assets.queue import (
    ENRICHMENT_QUEUE,
    PUBLISHED_QUEUE,
    QUEUE_TAG,
    WHISPER_QUEUE,
)

__all__ = ["ENRICHMENT_QUEUE", "PUBLISHED_QUEUE", "QUEUE_TAG", "WHISPER_QUEUE"]

episode_job = dg.define_asset_job(
    "episode_job",
    selection=INGESTION_ASSETS,
    description="Ingest episodes: RSS item, audio, transcript.",
    # In process: one Python process per run, so Whisper loads once for all the run's episodes.
    executor_def=dg.in_process_executor,
    # Runs launched without a queue tag (from the UI, backfills) are assumed to need Whisper:
    # the Whisper queue, and a GPU node under K8sRunLauncher.
    tags={QUEUE_TAG: WHISPER_QUEUE, **WHISPER_K8S_TAGS},
)

enrichment_job = dg.define_asset_job(
    "enrichment_job",
    selection=dg.AssetSelection.assets(*ENRICHMENT_ASSETS)
    | dg.AssetSelection.checks(*ENRICHMENT_CHECKS),
    description="Enrich episodes: summary, grounded insights, knowledge graph, embeddings.",
    executor_def=dg.in_process_executor,
    tags={QUEUE_TAG: ENRICHMENT_QUEUE},
)

corpus_graph_job = dg.define_asset_job(
    "corpus_graph_job",
    selection=dg.AssetSelection.assets("corpus_graph", "corpus"),
    description="Rebuild the corpus-wide knowledge graph and the corpus database.",
    executor_def=dg.in_process_executor,
    tags={QUEUE_TAG: ENRICHMENT_QUEUE},
)

corpus_graph_schedule = dg.ScheduleDefinition(
    job=corpus_graph_job,
    cron_schedule="15 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: merge the episode graphs and rebuild the corpus database.",
)
