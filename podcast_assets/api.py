"""``feed_intake_job``: the server side of ``podcast ingest --remote``.

A client that only speaks Dagster's GraphQL API cannot write the server's catalog, feed snapshots
or partitions. This job does it on the server, as ``podcast ingest`` does locally: it follows the
feed (adding it to the catalog if new), runs the RSS sensor's discovery for it (new episodes become
partitions, the feed snapshot that ``episode_metadata`` reads is stored), and returns the plan as
the output's ``plan`` metadata: which episodes need ``episode_job``, which only the enrichment
chain, and which are up to date. The client then launches those runs through GraphQL.
"""

import dagster as dg

from partitions import EPISODES
from podcast_assets.runner import IngestError, add_feed
from podcast_core.catalog import CatalogError
from podcast_core.discovery import FEED_SNAPSHOT, EpisodeRequest, needs_whisper
from podcast_core.models import Episode
from podcast_core.storage import episode_path, feed_path
from resources import ArtifactStoreResource, CatalogResource, HttpResource
from sensors.enrichment import TRANSCRIPT, enriched_since
from sensors.rss import SENSOR_NAME, poll_catalog, run_request

INTAKE_JOB = "feed_intake_job"
INTAKE_OP = "intake_feed"
PLAN_LABEL = "plan"
INGEST, ENRICH, UP_TO_DATE = "ingest", "enrich", "up-to-date"


class FeedIntakeConfig(dg.Config):
    """What ``podcast ingest`` takes: the feed URL and its options."""

    url: str
    limit: int | None = None
    name: str | None = None
    whisper_model: str | None = None


def plan_intake(
    instance: dg.DagsterInstance,
    config: FeedIntakeConfig,
    artifacts: ArtifactStoreResource,
    catalog: CatalogResource,
    http: HttpResource,
) -> dict:
    """Follow the feed, discover its episodes and decide what each of the newest needs.

    Returns:
        ``{"feed", "url", "followed", "episodes": [{"key", "title", "action", "tags",
        "transcript_source"}], "targets"}``: episodes in the order runs should be launched, and
        the newest ``limit`` keys, newest first (the report lists them first, in that order).
    """
    cat = catalog.catalog()
    feed = cat.find_url(config.url)
    followed = feed is None
    if feed is None:
        overrides = {
            "name": config.name,
            "initial_episodes": config.limit,
            "whisper_model": config.whisper_model,
        }
        feed = add_feed(
            cat, http, config.url, **{k: v for k, v in overrides.items() if v is not None}
        )
    elif config.whisper_model and config.whisper_model != feed.whisper_model:
        feed = cat.update(feed.name, whisper_model=config.whisper_model)

    found = poll_catalog(instance, None, artifacts, catalog, http, {feed.name})
    if found.errors:
        raise IngestError(f"feed {feed.name} ({feed.url}): {found.errors[0].error}")
    if found.add_keys:
        instance.add_dynamic_partitions(EPISODES.name, found.add_keys)
    requests = {r.key: r for r in found.requests}

    store = artifacts.store()
    snapshot = store.read_json(feed_path(feed.name, FEED_SNAPSHOT))
    known = set(instance.get_dynamic_partitions(EPISODES.name))
    episodes = [Episode.from_dict(e) for e in snapshot["episodes"].values()]
    episodes = sorted(
        (e for e in episodes if e.key in known), key=lambda e: e.published or "", reverse=True
    )
    take = (
        config.limit
        if config.limit is not None
        else (feed.initial_episodes or catalog.initial_episodes)
    )
    targets = [e.key for e in episodes[: max(take, 0)]]
    done = instance.get_materialized_partitions(TRANSCRIPT)
    for episode in episodes[: max(take, 0)]:
        if episode.key not in requests and episode.key not in done:
            requests[episode.key] = EpisodeRequest(
                episode.key, needs_whisper(episode, feed.language), episode.title
            )
    titles = {e.key: e.title for e in episodes}

    plan = []
    for key in list(requests) + [k for k in targets if k not in requests]:
        tags: dict[str, str] = {}
        if key in requests:
            action = INGEST
            tags = dict(run_request(requests[key]).tags) | {"podcast/sensor": SENSOR_NAME}
        else:
            latest = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=TRANSCRIPT, asset_partitions=[key]), limit=1
            ).records
            pending = latest and not enriched_since(instance, key, latest[0].storage_id)
            action = ENRICH if pending else UP_TO_DATE
        transcript = episode_path(key, "transcript.json")
        plan.append(
            {
                "key": key,
                "title": titles.get(key),
                "action": action,
                "tags": tags,
                "transcript_source": (
                    store.read_json(transcript)["source"] if store.exists(transcript) else None
                ),
            }
        )
    return {
        "feed": feed.name,
        "url": feed.url,
        "followed": followed,
        "episodes": plan,
        "targets": targets,
    }


@dg.op(name=INTAKE_OP, out=dg.Out(dict))
def intake_feed(
    context: dg.OpExecutionContext,
    config: FeedIntakeConfig,
    artifacts: ArtifactStoreResource,
    catalog: CatalogResource,
    http: HttpResource,
) -> dg.Output:
    """Follow a feed and plan its episode runs; the plan is the output's ``plan`` metadata."""
    try:
        plan = plan_intake(context.instance, config, artifacts, catalog, http)
    except (IngestError, CatalogError, ValueError) as exc:
        # The cause as the run's failure description, not a stack of Dagster wrappers.
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    counts: dict[str, int] = {}
    for item in plan["episodes"]:
        counts[item["action"]] = counts.get(item["action"], 0) + 1
    context.log.info(f"feed {plan['feed']} ({plan['url']}): {counts or 'no episodes'}")
    return dg.Output(plan, metadata={PLAN_LABEL: dg.MetadataValue.json(plan)})


@dg.job(
    name=INTAKE_JOB,
    description="Follow a feed and add its new episodes as partitions (podcast ingest --remote).",
    executor_def=dg.in_process_executor,
    tags={"podcast/launched_by": "podcast-ingest-remote"},
)
def feed_intake_job() -> None:
    """Runs ``intake_feed`` once, configured with the feed URL and options."""
    intake_feed()
