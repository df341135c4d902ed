"""Run tags that route runs through the run queue, and the run coordinator that reads them.

Kept free of asset imports: ``dagster.yaml`` names :class:`PodcastRunCoordinator`, so the
webserver and the daemon import this module when they load the instance.
"""

import dagster as dg
from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext

from podcast_assets.k8s import WHISPER_K8S_TAGS

QUEUE_TAG = "podcast/queue"
"""Run tag read by ``dagster.yaml``'s tag concurrency limits."""
WHISPER_QUEUE = "whisper"
"""Runs that may run Whisper; at most N in progress (one per GPU)."""
PUBLISHED_QUEUE = "published"
"""Runs that only fetch a publisher transcript; not held by the Whisper limit."""
ENRICHMENT_QUEUE = "enrichment"
"""Runs of the enrichment chain, the corpus and the digest; never held by the Whisper limit."""

BACKFILL_TAG = "dagster/backfill"
"""Set by Dagster on every run a backfill launches (its value is the backfill id)."""
PRIORITY_TAG = "dagster/priority"
"""Read by the queued run coordinator: higher first, ties first in, first out; default 0."""
BACKFILL_PRIORITY = -1
"""Backfill runs yield to runs the sensors request when both wait for the same slot."""
TRANSCRIPT = dg.AssetKey("transcript")


def queue_tags(run: dg.DagsterRun) -> dict[str, str]:
    """The routing tags a run lacks, by what it materializes.

    Jobs defined here carry their queue tag, but a materialization launched from the UI (asset
    graph, *Materialize*) or an asset backfill runs Dagster's implicit asset job, with no queue
    tag. A run that selects ``transcript`` may run Whisper: it joins the Whisper queue and, under
    ``K8sRunLauncher``, goes to a GPU node; any other asset run is enrichment work, not held by
    the Whisper limit. Every backfill run gets ``dagster/priority=-1`` unless it was given one.
    """
    tags: dict[str, str] = {}
    selection = run.asset_selection or frozenset()
    if QUEUE_TAG not in run.tags and selection:
        if TRANSCRIPT in selection:
            tags[QUEUE_TAG] = WHISPER_QUEUE
            tags |= {k: v for k, v in WHISPER_K8S_TAGS.items() if k not in run.tags}
        else:
            tags[QUEUE_TAG] = ENRICHMENT_QUEUE
    if BACKFILL_TAG in run.tags and PRIORITY_TAG not in run.tags:
        tags[PRIORITY_TAG] = str(BACKFILL_PRIORITY)
    return tags


class PodcastRunCoordinator(QueuedRunCoordinator):
    """The queued run coordinator, with every run routed through the right queue.

    A materialization launched from the UI or by a backfill runs Dagster's implicit asset job:
    its runs carry no queue tag, so the Whisper limit would not hold them. Before such a run is
    queued it gets the tags of :func:`queue_tags`; ``dagster.yaml`` adds a limit of its own on
    ``dagster/backfill``.
    """

    def submit_run(self, context: SubmitRunContext) -> dg.DagsterRun:
        """Tag a run by what it materializes, then queue it like any other."""
        run = context.dagster_run
        missing = queue_tags(run)
        if missing:
            self._instance.add_run_tags(run.run_id, missing)
            run = run.with_tags({**run.tags, **missing})
            context = SubmitRunContext(run, context.workspace)
        return super().submit_run(context)
