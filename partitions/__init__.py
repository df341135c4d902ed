"""Partition definitions shared by the asset graph."""

import dagster as dg

EPISODES = dg.DynamicPartitionsDefinition(name="episodes")
"""One partition per episode, keyed ``{feed}--{12 hex}`` (see ``podcast_core.keys``)."""

WEEKS = dg.WeeklyPartitionsDefinition(start_date="2025-01-06", day_offset=1, timezone="UTC")
"""ISO weeks, Monday to Monday (UTC); the key is the Monday, ``YYYY-MM-DD``."""
