"""The weekly digest's partitions and schedule."""

import datetime as dt

import dagster as dg

from partitions import WEEKS
from podcast_assets.definitions import defs
from podcast_assets.runner import resolve_week
from podcast_core.weekly import week_for_partition


def test_weeks_start_on_monday_and_map_to_iso_weeks():
    keys = WEEKS.get_partition_keys(current_time=dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    assert keys[0] == "2025-01-06"
    assert all(dt.date.fromisoformat(k).weekday() == 0 for k in keys)
    # Wednesday of W48: the last finished week is W47, which started on Monday 16 November.
    assert keys[-1] == "2026-11-16"
    assert week_for_partition("2026-11-16") == "2026-W47"
    assert week_for_partition("2026-12-28") == "2026-W53"


def test_monday_schedule_requests_the_week_that_just_ended():
    schedule = defs.resolve_schedule_def("weekly_digest_job_schedule")
    assert schedule.cron_schedule == "0 6 * * 1"
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)
    )
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-11-16"


def test_since_picks_the_week_of_that_day():
    today = dt.date(2026, 11, 23)
    assert resolve_week(None, "7d", today) == "2026-W47"
    assert resolve_week(None, "0d", today) == "2026-W48"
    assert resolve_week("2026-W01", None, today) == "2026-W01"
