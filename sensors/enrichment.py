"""``enrichment_sensor``: every new transcript gets the enrichment chain.

It reads only transcript materializations recorded since its cursor (a storage id), so a tick
costs the same with ten episodes or a hundred thousand, unlike evaluating an automation condition
over every partition.
"""

import dagster as dg

from podcast_assets.enrichment import ENRICHMENT_ASSETS
from podcast_assets.jobs import ENRICHMENT_QUEUE, QUEUE_TAG, enrichment_job
from podcast_assets.queue import TRANSCRIPT

MAX_RUNS_PER_TICK = 100


def enriched_since(instance: dg.DagsterInstance, key: str, storage_id: int) -> bool:
    """Whether every enrichment asset of ``key`` was materialized after that transcript event."""
    for asset in ENRICHMENT_ASSETS:
        latest = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset.key, asset_partitions=[key]), limit=1
        ).records
        if not latest or latest[0].storage_id < storage_id:
            return False
    return True


def needs_enrichment(instance: dg.DagsterInstance, key: str) -> bool:
    """Whether ``key`` has a transcript that its enrichment assets have not caught up with."""
    latest = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=TRANSCRIPT, asset_partitions=[key]), limit=1
    ).records
    return bool(latest) and not enriched_since(instance, key, latest[0].storage_id)


ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _active_partitions(instance: dg.DagsterInstance) -> set[str]:
    """Episodes with an enrichment run queued or in progress (``podcast ingest --remote``'s)."""
    runs = instance.get_runs(dg.RunsFilter(job_name=enrichment_job.name, statuses=ACTIVE))
    return {key for run in runs if (key := run.tags.get("dagster/partition"))}


def enrichment_requests(
    instance: dg.DagsterInstance, cursor: str | None, limit: int = MAX_RUNS_PER_TICK
) -> tuple[list[dg.RunRequest], str | None]:
    """Run requests for transcripts materialized after ``cursor``, and the new cursor."""
    after = int(cursor) if cursor else None
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=TRANSCRIPT, after_storage_id=after),
        limit=limit,
        ascending=True,
    ).records
    requests = []
    active = _active_partitions(instance) if records else set()
    for record in records:
        key = record.partition_key
        if key is None or key in active or enriched_since(instance, key, record.storage_id):
            continue
        requests.append(
            dg.RunRequest(
                partition_key=key,
                run_key=f"{key}:{record.storage_id}",
                tags={QUEUE_TAG: ENRICHMENT_QUEUE},
            )
        )
    new_cursor = str(records[-1].storage_id) if records else cursor
    return requests, new_cursor


@dg.sensor(
    job=enrichment_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests the enrichment chain for every transcript materialized since last tick.",
)
def enrichment_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Follow new transcript materializations with enrichment runs (one per episode)."""
    requests, cursor = enrichment_requests(context.instance, context.cursor)
    return dg.SensorResult(
        run_requests=requests,
        cursor=cursor,
        skip_reason=None if requests else "no new transcripts to enrich",
    )
