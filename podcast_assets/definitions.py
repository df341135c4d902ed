"""The code location: ``dagster dev`` and the ``podcast`` CLI load ``defs`` from here."""

import dagster as dg

from podcast_assets.api import feed_intake_job
from podcast_assets.corpus import corpus
from podcast_assets.digest import (
    DIGEST_ASSETS,
    digest_feed_job,
    digest_feed_sensor,
    weekly_digest_job,
    weekly_digest_schedule,
)
from podcast_assets.enrichment import ENRICHMENT_ASSETS, ENRICHMENT_CHECKS, corpus_graph
from podcast_assets.ingestion import INGESTION_ASSETS
from podcast_assets.jobs import (
    corpus_graph_job,
    corpus_graph_schedule,
    enrichment_job,
    episode_job,
)
from podcast_core.settings import Settings, load_settings
from resources import build_resources
from sensors import enrichment_sensor, rss_sensor


def build_definitions(settings: Settings) -> dg.Definitions:
    """The asset graph, jobs and sensors with resources for ``settings``."""
    return dg.Definitions(
        assets=[*INGESTION_ASSETS, *ENRICHMENT_ASSETS, corpus_graph, corpus, *DIGEST_ASSETS],
        asset_checks=ENRICHMENT_CHECKS,
        jobs=[
            episode_job,
            enrichment_job,
            corpus_graph_job,
            weekly_digest_job,
            digest_feed_job,
            feed_intake_job,
        ],
        schedules=[corpus_graph_schedule, weekly_digest_schedule],
        sensors=[rss_sensor, enrichment_sensor, digest_feed_sensor],
        resources=build_resources(settings),
    )


defs = build_definitions(load_settings())
