"""The weekly digest assets: the written digest, its spoken version, and the digest podcast feed."""

import dagster as dg

from partitions import WEEKS
from podcast_assets.queue import ENRICHMENT_QUEUE, QUEUE_TAG
from podcast_core import weekly
from podcast_core.digest import DIGEST_VERSION
from resources import ArtifactStoreResource, DigestResource, EmbeddingResource, SpeechResource

GROUP = "digest"


@dg.asset(
    partitions_def=WEEKS,
    group_name=GROUP,
    kinds={"duckdb", "markdown"},
    code_version=DIGEST_VERSION,
)
def weekly_digest(
    context: dg.AssetExecutionContext,
    artifacts: ArtifactStoreResource,
    embedding: EmbeddingResource,
    digest: DigestResource,
) -> dg.MaterializeResult:
    """The week's new episodes, shared stories, strongest insights, trends and a listen list."""
    # Reads the corpus by published date: episode partitions are not this asset's upstream
    # partitions, so none are enumerated.
    week = weekly.week_for_partition(context.partition_key)
    result = weekly.materialize_digest(
        artifacts.store(), week, embedding.embedder(), digest.budget_minutes
    )
    stats = result["stats"]
    return dg.MaterializeResult(
        metadata={
            "week": week,
            "episodes": stats["episodes"],
            "feeds": stats["feeds"],
            "clusters": stats["clusters"],
            "insights_shown": stats["insights_shown"],
            "listen_list_items": stats["listen_list_items"],
            "digest": dg.MetadataValue.md(result["markdown"]),
        }
    )


@dg.asset(
    partitions_def=WEEKS,
    group_name=GROUP,
    kinds={"espeak", "mp3"},
    deps=[weekly_digest],
    code_version="1",
)
def digest_audio(
    context: dg.AssetExecutionContext, artifacts: ArtifactStoreResource, speech: SpeechResource
) -> dg.MaterializeResult:
    """The week's digest read aloud, with a chapter per story."""
    week = weekly.week_for_partition(context.partition_key)
    manifest = weekly.materialize_digest_audio(artifacts.store(), week, speech.tts())
    return dg.MaterializeResult(
        metadata={
            "duration_seconds": manifest["duration_seconds"],
            "bytes": manifest["bytes"],
            "chapters": len(manifest["sections"]),
            "backend": manifest["backend"],
        }
    )


@dg.asset(group_name=GROUP, kinds={"rss", "xml"}, deps=[digest_audio], code_version="1")
def digest_feed(artifacts: ArtifactStoreResource, digest: DigestResource) -> dg.MaterializeResult:
    """A podcast feed (RSS 2.0, iTunes, Podcasting 2.0) of every spoken weekly digest."""
    result = weekly.materialize_digest_feed(artifacts.store(), digest.public_url)
    return dg.MaterializeResult(
        metadata={
            "episodes": result["episodes"],
            "bytes": result["bytes"],
            "url": dg.MetadataValue.url(result["url"]),
        }
    )


weekly_digest_job = dg.define_asset_job(
    "weekly_digest_job",
    selection=[weekly_digest, digest_audio],
    description="Write and speak one week's digest.",
    executor_def=dg.in_process_executor,
    tags={QUEUE_TAG: ENRICHMENT_QUEUE},
)
digest_feed_job = dg.define_asset_job(
    "digest_feed_job",
    selection=[digest_feed],
    description="Republish the digest feed.",
    executor_def=dg.in_process_executor,
    tags={QUEUE_TAG: ENRICHMENT_QUEUE},
)

weekly_digest_schedule = dg.build_schedule_from_partitioned_job(
    weekly_digest_job,
    hour_of_day=6,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Monday 06:00 UTC: the digest of the week that just ended.",
)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[weekly_digest_job],
    request_job=digest_feed_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def digest_feed_sensor(context: dg.RunStatusSensorContext) -> dg.RunRequest:
    """Republish the digest feed after every new weekly digest (scheduled or backfilled)."""
    return dg.RunRequest(run_key=context.dagster_run.run_id)


DIGEST_ASSETS = [weekly_digest, digest_audio, digest_feed]
