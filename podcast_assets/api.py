"""``feed_intake_job``: the server side of ``podcast ingest --remote``.

A client that only speaks Dagster's GraphQL API cannot write the server's catalog, feed snapshots
or partitions. This job does it on the server, as ``podcast ingest`` does locally: it follows the
feed (adding it to the catalog if new), runs the RSS sensor's discovery for it (new episodes become
partitions, the feed snapshot that ``episode_metadata`` reads is stored), and returns the plan as
the output's ``plan`` metadata: which episodes need ``episode_job``, which only the enrichment
chain, and which are up to date. The client then launches those runs through GraphQL.
"""

import dagster as dg

from podcast_assets.runner import IngestError, plan_feed, transcript_source
from podcast_core.catalog import CatalogError
from resources import ArtifactStoreResource, CatalogResource, HttpResource
from sensors.enrichment import needs_enrichment

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
    found = plan_feed(
        instance,
        artifacts,
        catalog,
        http,
        config.url,
        limit=config.limit,
        name=config.name,
        whisper_model=config.whisper_model,
    )
    requests, store = found.requests, artifacts.store()

    plan = []
    for key in found.todo:
        tags: dict[str, str] = {}
        if key in requests:
            action, tags = INGEST, found.run_tags(key)
        else:
            action = ENRICH if needs_enrichment(instance, key) else UP_TO_DATE
        plan.append(
            {
                "key": key,
                "title": found.titles.get(key),
                "action": action,
                "tags": tags,
                "transcript_source": transcript_source(store, key),
            }
        )
    return {
        "feed": found.feed.name,
        "url": found.feed.url,
        "followed": found.followed,
        "episodes": plan,
        "targets": found.targets,
    }


@dg.op(name=INTAKE_OP, out=dg.Out(dg.Nothing))
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
    # Nothing-typed: the plan travels as output metadata, so no IO manager stores (pickles) it.
    return dg.Output(None, metadata={PLAN_LABEL: dg.MetadataValue.json(plan)})


@dg.job(
    name=INTAKE_JOB,
    description="Follow a feed and add its new episodes as partitions (podcast ingest --remote).",
    executor_def=dg.in_process_executor,
    tags={"podcast/launched_by": "podcast-ingest-remote"},
)
def feed_intake_job() -> None:
    """Runs ``intake_feed`` once, configured with the feed URL and options."""
    intake_feed()
