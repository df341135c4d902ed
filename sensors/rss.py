"""``rss_sensor``: poll catalog feeds, add new episodes as partitions and request their runs."""

import json

import dagster as dg

from partitions import EPISODES
from podcast_assets.jobs import episode_job
from podcast_assets.k8s import PUBLISHED_K8S_TAGS
from podcast_assets.queue import PUBLISHED_QUEUE, QUEUE_TAG, WHISPER_QUEUE
from podcast_core.discovery import Discovery, EpisodeRequest, discover, save_feed_snapshot
from resources import ArtifactStoreResource, CatalogResource, HttpResource

SENSOR_NAME = "rss_sensor"


def run_request(request: EpisodeRequest) -> dg.RunRequest:
    """The run for one new episode; the run key makes re-evaluation request nothing twice."""
    return dg.RunRequest(
        partition_key=request.key,
        run_key=request.key,
        # The job's tags send a run to the Whisper queue (and a GPU node); a publisher-transcript
        # run overrides both.
        tags={QUEUE_TAG: WHISPER_QUEUE}
        if request.needs_whisper
        else {QUEUE_TAG: PUBLISHED_QUEUE, **PUBLISHED_K8S_TAGS},
    )


def poll_catalog(
    instance: dg.DagsterInstance,
    cursor: str | None,
    artifacts: ArtifactStoreResource,
    catalog: CatalogResource,
    http: HttpResource,
    feed_names: set[str] | None = None,
) -> Discovery:
    """Poll the catalog (or the named feeds) and persist what was found in the feed snapshots."""
    feeds = catalog.catalog().feeds()
    if feed_names is not None:
        feeds = [f for f in feeds if f.name in feed_names]
    found = discover(
        feeds,
        json.loads(cursor) if cursor else {},
        set(instance.get_dynamic_partitions(EPISODES.name)),
        http.client().poll,
        initial_episodes=catalog.initial_episodes,
        max_runs=catalog.max_runs_per_tick,
    )
    store = artifacts.store()
    for feed, parsed in found.snapshots.values():
        save_feed_snapshot(store, feed, parsed)
    return found


@dg.sensor(
    job=episode_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Polls every catalog feed; new episodes become partitions with a run each.",
)
def rss_sensor(
    context: dg.SensorEvaluationContext,
    artifacts: ArtifactStoreResource,
    catalog: CatalogResource,
    http: HttpResource,
) -> dg.SensorResult:
    """Poll feeds with conditional GETs and request runs for episodes never seen before."""
    found = poll_catalog(context.instance, context.cursor, artifacts, catalog, http)
    for outcome in found.outcomes:
        if outcome.status == "error":
            context.log.warning(f"feed {outcome.feed}: {outcome.error}")
        elif outcome.status == "new":
            context.log.info(
                f"feed {outcome.feed}: {len(outcome.requested)} new episodes requested, "
                f"{len(outcome.backfill)} older ones added for backfill"
                + (f", {outcome.deferred} deferred to the next tick" if outcome.deferred else "")
            )
        for skipped in outcome.skipped:
            context.log.warning(f"feed {outcome.feed}: skipped {skipped}")
    skip_reason = None
    if not found.requests:
        failed = len(found.errors)
        skip_reason = f"no new episodes in {len(found.outcomes)} feeds" + (
            f" ({failed} failed: {', '.join(o.feed for o in found.errors)})" if failed else ""
        )
    return dg.SensorResult(
        run_requests=[run_request(r) for r in found.requests],
        dynamic_partitions_requests=(
            [EPISODES.build_add_request(found.add_keys)] if found.add_keys else []
        ),
        cursor=json.dumps(found.cursor, sort_keys=True),
        skip_reason=skip_reason,
    )
