"""Running a stage over every episode partition of a run (one, or a backfill's batch)."""

from collections.abc import Callable
from typing import Any

import dagster as dg


def each_episode(
    context: dg.AssetExecutionContext,
    stage: Callable[[str], dict[str, Any]],
    describe: Callable[[str, dict[str, Any]], dict[str, Any]],
) -> dg.MaterializeResult:
    """Run ``stage`` for every partition of the run; one failure does not stop the others."""
    keys = context.partition_keys
    records: dict[str, dict[str, Any]] = {}
    failures: dict[str, Exception] = {}
    for done, key in enumerate(keys, start=1):
        try:
            records[key] = stage(key)
        except Exception as exc:
            failures[key] = exc
            context.log.error(f"{key}: {exc}")
        except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt) as exc:
            # The run was cancelled or went over its maximum runtime, or Ctrl-C. Dagster applies
            # an asset's RetryPolicy to interrupts too: it would start the step again in a run
            # already marked failed, holding the machine (for Whisper, the GPU) after the queue
            # gave the slot away. Without a policy the interrupt stops the run as it should.
            if context.op_def.retry_policy is None:
                raise
            raise dg.Failure(
                description=f"{key}: interrupted (run cancelled or over its maximum runtime, or "
                "the process stopped); not retried",
                metadata={"interrupted_episode": key, "succeeded_episodes": list(records)},
                allow_retries=False,
            ) from exc
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
    outcomes: dict[str, int] = {}
    for record in records.values():
        outcomes[record.get("outcome", "ok")] = outcomes.get(record.get("outcome", "ok"), 0) + 1
    return dg.MaterializeResult(metadata={"episodes": len(keys), "outcomes": outcomes})
