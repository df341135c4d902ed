"""Per-episode ingestion assets: RSS item → raw audio → transcript.

Assets are thin: the work lives in ``podcast_core.pipeline``. Every asset accepts a range of
episode partitions, so a backfill batches several episodes per run and loads Whisper once.
"""

import time
import warnings
from typing import Any

import dagster as dg

from partitions import EPISODES
from podcast_assets.batch import each_episode
from podcast_core import pipeline
from podcast_core.keys import parse_episode_key
from podcast_core.settings import load_settings
from podcast_core.storage import episode_path
from resources import ArtifactStoreResource, CatalogResource, HttpResource, WhisperResource

# backfill_policy is marked beta; the warning repeats in every process that loads the code location.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

GROUP = "ingestion"
BATCH_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=8)
# Step retries for the assets that fetch over the network: waits drawn from 0-5 s, 0-15 s, 0-35 s
# (full jitter, so episodes that failed together against one host do not retry in lockstep).
# Permanent errors (4xx, not audio, oversize, unknown item) raise dg.Failure(allow_retries=False)
# through each_episode and are not retried at all.
NETWORK_RETRY = dg.RetryPolicy(
    max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.FULL
)

# The Whisper settings in force when the code location loads are part of the transcript's code
# version: changing the model or decoding options marks every transcript stale in the UI.
TRANSCRIPT_CODE_VERSION = f"{pipeline.TRANSCRIPT_VERSION}:{load_settings().whisper.fingerprint()}"


@dg.asset(
    partitions_def=EPISODES,
    group_name=GROUP,
    kinds={"rss", "json"},
    code_version=pipeline.METADATA_VERSION,
    backfill_policy=BATCH_POLICY,
    retry_policy=NETWORK_RETRY,
)
def episode_metadata(
    context: dg.AssetExecutionContext,
    artifacts: ArtifactStoreResource,
    catalog: CatalogResource,
    http: HttpResource,
) -> dg.MaterializeResult:
    """The episode's parsed RSS item and its feed's facts."""
    store, client = artifacts.store(), http.client()

    def stage(key: str) -> dict[str, Any]:
        return pipeline.materialize_metadata(
            store, key, catalog.feed(parse_episode_key(key).feed), client
        )

    def describe(key: str, record: dict[str, Any]) -> dict[str, Any]:
        item = record["episode"]
        return {
            "title": item.get("title") or "",
            "published": item.get("published") or "",
            "audio_url": dg.MetadataValue.url(item["audio_url"]) if item.get("audio_url") else "",
            "transcript_links": len(item.get("transcripts", [])),
            "path": dg.MetadataValue.path(store.location(episode_path(key, "metadata.json"))),
        }

    return each_episode(context, stage, describe)


@dg.asset(
    partitions_def=EPISODES,
    group_name=GROUP,
    kinds={"http", "audio"},
    deps=[episode_metadata],
    code_version=pipeline.AUDIO_VERSION,
    backfill_policy=BATCH_POLICY,
    retry_policy=NETWORK_RETRY,
)
def raw_audio(
    context: dg.AssetExecutionContext, artifacts: ArtifactStoreResource, http: HttpResource
) -> dg.MaterializeResult:
    """The episode's audio file, downloaded from its enclosure."""
    store, client = artifacts.store(), http.client()

    def stage(key: str) -> dict[str, Any]:
        def progress(done: int, total: int | None) -> None:
            share = f" of {total / 1e6:.0f} MB" if total else ""
            context.log.info(f"{key}: downloaded {done / 1e6:.0f} MB{share}")

        return pipeline.materialize_audio(store, key, client, progress=progress)

    def describe(key: str, record: dict[str, Any]) -> dict[str, Any]:
        return {
            "outcome": record["outcome"],
            "bytes": record["bytes"],
            "sha256": record["sha256"],
            "content_type": record["content_type"] or "",
            "duration_seconds": record["duration_seconds"],
            "download_seconds": record["download_seconds"],
            "path": dg.MetadataValue.path(store.location(episode_path(key, record["file"]))),
        }

    return each_episode(context, stage, describe)


@dg.asset(
    partitions_def=EPISODES,
    group_name=GROUP,
    kinds={"whisper", "json"},
    deps=[raw_audio],
    code_version=TRANSCRIPT_CODE_VERSION,
    backfill_policy=BATCH_POLICY,
    retry_policy=NETWORK_RETRY,
)
def transcript(
    context: dg.AssetExecutionContext,
    artifacts: ArtifactStoreResource,
    catalog: CatalogResource,
    http: HttpResource,
    whisper: WhisperResource,
) -> dg.MaterializeResult:
    """The episode's transcript: the publisher's when linked, otherwise Whisper's."""
    store, client, settings = artifacts.store(), http.client(), whisper.settings()

    def stage(key: str) -> dict[str, Any]:
        last = {"share": -1.0, "at": 0.0}

        def progress(done: float, total: float, elapsed: float) -> None:
            share = done / total if total else 1.0
            if share - last["share"] >= 0.1 or time.monotonic() - last["at"] >= 30:
                last.update(share=share, at=time.monotonic())
                speed = done / elapsed if elapsed else 0.0
                context.log.info(
                    f"{key}: transcribed {share:.0%} ({done:.0f}s of {total:.0f}s audio) "
                    f"at {speed:.1f}x real time"
                )

        feed = catalog.feed(parse_episode_key(key).feed)
        # Before the last attempt a publisher transcript that fails with a transient error (5xx,
        # timeout) fails the step for a retry, rather than paying for Whisper at once; a
        # permanent failure (404, unparseable) goes to Whisper straight away.
        return pipeline.materialize_transcript(
            store,
            key,
            feed,
            client,
            settings,
            progress=progress,
            retry_transient=context.retry_number < NETWORK_RETRY.max_retries,
        )

    def describe(key: str, record: dict[str, Any]) -> dict[str, Any]:
        details = record.get("details") or {}
        return {
            "outcome": record["outcome"],
            "source": record["source"],
            "model": record.get("model") or "",
            "language": record.get("language") or "",
            "duration_seconds": record.get("duration_seconds") or 0.0,
            "processing_seconds": record.get("processing_seconds") or 0.0,
            "realtime_factor": details.get("realtime_factor") or 0.0,
            "segments": len(record["segments"]),
            "words": len(record["text"].split()),
            "fallback_reason": record.get("fallback_reason") or "",
            "preview": dg.MetadataValue.md(record["text"][:600]),
            "path": dg.MetadataValue.path(store.location(episode_path(key, "transcript.json"))),
        }

    return each_episode(context, stage, describe)


INGESTION_ASSETS = [episode_metadata, raw_audio, transcript]
