"""Running a stage over every episode partition of a run (one, or a backfill's batch)."""

from collections.abc import Callable
from typing import Any

import dagster as dg


class EpisodeInterrupted(dg.DagsterError, dg.DagsterExecutionInterruptedError):
    """The run was interrupted (cancelled, over its maximum runtime, Ctrl-C) during an episode.

    Dagster's step boundary turns a plain interrupt into a retry when the asset has a
    ``RetryPolicy``: the step would start again inside a run already marked failed, holding the
    machine (for Whisper, the GPU) after the queue gave its slot away. The boundary passes its
    own errors (``DagsterError``) through untouched, and as an execution interrupt this one then
    ends the run the way Dagster ends any interrupted run: cancelled if it was being terminated,
    otherwise failed, with no further steps.
    """


def each_episode(
    context: dg.AssetExecutionContext,
    stage: Callable[[str], dict[str, Any]],
    describe: Callable[[str, dict[str, Any]], dict[str, Any]],
) -> dg.MaterializeResult:
    """Run ``stage`` for every partition of the run; one failure does not stop the others."""
    keys = context.partition_keys
    records: dict[str, dict[str, Any]] = {}
    failures: dict[str, Exception] = {}
    key = keys[0]
    try:
        for done, key in enumerate(keys, start=1):
            try:
                records[key] = stage(key)
            except Exception as exc:
                failures[key] = exc
                context.log.error(f"{key}: {exc}")
            if len(keys) > 1:
                context.log.info(f"{done}/{len(keys)} episodes processed, {len(failures)} failed")
        if failures:
            raise dg.Failure(
                description="; ".join(str(exc) for exc in failures.values()),
                metadata={"failed_episodes": list(failures), "succeeded_episodes": list(records)},
                allow_retries=any(getattr(e, "retryable", True) for e in failures.values()),
            )
        if len(keys) == 1:
            return dg.MaterializeResult(metadata=describe(keys[0], records[keys[0]]))
    except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt) as exc:
        raise EpisodeInterrupted(
            f"{key}: interrupted after {len(records)} of {len(keys)} episodes (run cancelled or "
            "over its maximum runtime, or Ctrl-C); not retried"
        ) from exc
    outcomes: dict[str, int] = {}
    for record in records.values():
        outcomes[record.get("outcome", "ok")] = outcomes.get(record.get("outcome", "ok"), 0) + 1
    return dg.MaterializeResult(metadata={"episodes": len(keys), "outcomes": outcomes})
