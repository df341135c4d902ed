"""Run tags that route runs through the run queue, and the run coordinator that reads them.

Kept free of asset imports: ``dagster.yaml`` names :class:`PodcastRunCoordinator`, so the
webserver and the daemon import this module when they load the instance.
"""

import dagster as dg
from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext

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


def backfill_tags(run: dg.DagsterRun) -> dict[str, str]:
    """The queue tags a backfill's run lacks: its queue by what it materializes, and low priority.

    A run that selects ``transcript`` (or selects nothing explicitly, as ``episode_job`` runs do)
    may run Whisper; any other run (an enrichment or digest backfill) is not held by that limit.
    """
    if BACKFILL_TAG not in run.tags:
        return {}
    selection = run.asset_selection
    queue = WHISPER_QUEUE if not selection or TRANSCRIPT in selection else ENRICHMENT_QUEUE
    defaults = {QUEUE_TAG: queue, PRIORITY_TAG: str(BACKFILL_PRIORITY)}
    return {k: v for k, v in defaults.items() if k not in run.tags}


class PodcastRunCoordinator(QueuedRunCoordinator):
    """The queued run coordinator, with backfill runs routed through the right queue.

    An asset backfill launched from the UI runs Dagster's implicit asset job: its runs carry only
    ``dagster/backfill`` and the tags typed into the launch dialog, not ``episode_job``'s queue
    tag, so the Whisper limit would not hold them. Before such a run is queued it gets the queue
    tag for what it materializes and ``dagster/priority=-1`` (unless given); ``dagster.yaml`` adds
    a limit of its own on ``dagster/backfill``.
    """

    def submit_run(self, context: SubmitRunContext) -> dg.DagsterRun:
        """Tag a backfill's run, then queue it like any other."""
        run = context.dagster_run
        missing = backfill_tags(run)
        if missing:
            self._instance.add_run_tags(run.run_id, missing)
            run = run.with_tags({**run.tags, **missing})
            context = SubmitRunContext(run, context.workspace)
        return super().submit_run(context)
