"""Finding new episodes, shared by the RSS sensor and ``podcast ingest``.

Poll every followed feed, then decide which episodes become partitions and which get runs.

The set of known episode keys (the ``episodes`` dynamic partitions) is the memory of what has been
seen; the cursor only keeps each feed's HTTP validators and when it was last polled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from podcast_core.catalog import FeedConfig
from podcast_core.digest_feed import is_digest_feed
from podcast_core.feeds import FeedParseError, parse_feed
from podcast_core.http import FeedRequest, FeedResponse
from podcast_core.keys import SEPARATOR
from podcast_core.models import Episode, ParsedFeed
from podcast_core.published import choose_transcript
from podcast_core.storage import ArtifactStore, feed_path

FEED_SNAPSHOT = "feed.json"

Poller = Callable[[Sequence[FeedRequest]], list[FeedResponse]]


@dataclass(frozen=True)
class EpisodeRequest:
    """A run to request for one episode."""

    key: str
    needs_whisper: bool
    title: str | None = None


@dataclass
class FeedOutcome:
    """What one feed's poll found. ``status``: new, unchanged, error."""

    feed: str
    status: str
    requested: list[str] = field(default_factory=list)
    backfill: list[str] = field(default_factory=list)
    deferred: int = 0
    skipped: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


@dataclass
class Discovery:
    """Everything a poll decided: partitions to add, runs to request, state to keep."""

    add_keys: list[str] = field(default_factory=list)
    requests: list[EpisodeRequest] = field(default_factory=list)
    snapshots: dict[str, tuple[FeedConfig, ParsedFeed]] = field(default_factory=dict)
    cursor: dict[str, dict[str, Any]] = field(default_factory=dict)
    outcomes: list[FeedOutcome] = field(default_factory=list)

    @property
    def errors(self) -> list[FeedOutcome]:
        """Feeds whose poll failed."""
        return [o for o in self.outcomes if o.status == "error"]


def needs_whisper(episode: Episode, language: str | None = None) -> bool:
    """Whether no publisher transcript in a supported format is linked."""
    return choose_transcript(episode.transcripts, language) is None


def _published_after(episode: Episode, since: str | None) -> bool:
    if not since or not episode.published:
        return True
    return episode.published[:10] >= since[:10]


def discover(
    feeds: Sequence[FeedConfig],
    cursor: dict[str, dict[str, Any]],
    known_keys: set[str],
    poll: Poller,
    *,
    initial_episodes: int,
    max_runs: int,
    now: dt.datetime | None = None,
) -> Discovery:
    """Poll ``feeds`` and decide what to add and request.

    Args:
        feeds: the catalog.
        cursor: per-feed state from the previous evaluation (``etag``, ``last_modified``,
            ``polled_at``); feeds polled longest ago go first.
        known_keys: episode keys that are already partitions.
        poll: fetches feeds with conditional GETs (``podcast_core.http.poll_feeds``).
        initial_episodes: default number of newest episodes processed on a feed's first sight.
        max_runs: cap on runs requested by this evaluation; the rest wait for the next one.
        now: the evaluation time.

    Returns:
        The decisions, with the new cursor. Failing feeds are reported in ``outcomes``.
    """
    now = now or dt.datetime.now(dt.UTC)
    # Microseconds: with whole seconds, evaluations within one second tie and fall back to
    # catalog order, which undoes the rotation below.
    stamp = now.isoformat(timespec="microseconds")
    result = Discovery(cursor={k: v for k, v in cursor.items() if k in {f.name for f in feeds}})
    order = sorted(feeds, key=lambda f: cursor.get(f.name, {}).get("polled_at", ""))
    requests = [
        FeedRequest(
            f.name,
            f.url,
            cursor.get(f.name, {}).get("etag"),
            cursor.get(f.name, {}).get("last_modified"),
        )
        for f in order
    ]
    budget = max_runs
    for feed, response in zip(order, poll(requests), strict=True):
        state = dict(cursor.get(feed.name, {}))
        if response.attempted:
            # A feed the poll's deadline never reached keeps its old stamp, so it goes first next
            # time instead of missing out on every evaluation behind the same slow feeds.
            state["polled_at"] = stamp
        outcome = FeedOutcome(feed.name, "unchanged", seconds=round(response.seconds, 3))
        result.outcomes.append(outcome)
        result.cursor[feed.name] = state
        if not response.ok:
            outcome.status, outcome.error = "error", response.error
            state["last_error"] = response.error
            continue
        state.pop("last_error", None)
        if response.status == 304:
            continue
        if is_digest_feed(response.content or b""):
            # Our own weekly digest feed: ingesting it would feed the digest back into itself.
            error = f"{feed.url} is this platform's own digest feed; it is not ingested"
            outcome.status, outcome.error = "error", error
            state["last_error"] = error
            continue
        try:
            parsed = parse_feed(response.content or b"", feed_slug=feed.name, base_url=feed.url)
        except FeedParseError as exc:
            outcome.status, outcome.error = "error", str(exc)
            state["last_error"] = str(exc)
            continue
        except Exception as exc:  # a parser bug on one feed must not fail every feed's poll
            error = f"cannot parse feed {feed.url}: {type(exc).__name__}: {exc}"
            outcome.status, outcome.error = "error", error
            state["last_error"] = error
            continue

        candidates = []
        for episode in parsed.episodes:
            if episode.key in known_keys or not _published_after(episode, feed.since):
                continue
            if not episode.audio_url:
                outcome.skipped.append(f"{episode.key} ({episode.title!r}): no audio enclosure")
                continue
            candidates.append(episode)
        first_sight = not any(k.startswith(feed.name + SEPARATOR) for k in known_keys)
        backfill: list[Episode] = []
        if first_sight:
            take = feed.initial_episodes if feed.initial_episodes is not None else initial_episodes
            candidates, backfill = candidates[:take], candidates[take:]
        if len(candidates) > budget:
            # Leave the rest for the next evaluation: not added now, and the validators are not
            # advanced, so the next poll sees the feed as changed and picks them up.
            outcome.deferred = len(candidates) - budget
            candidates = candidates[:budget]
        else:
            state["etag"], state["last_modified"] = response.etag, response.last_modified
        budget -= len(candidates)

        for episode in candidates:
            result.requests.append(
                EpisodeRequest(episode.key, needs_whisper(episode, feed.language), episode.title)
            )
        outcome.requested = [e.key for e in candidates]
        outcome.backfill = [e.key for e in backfill]
        new_keys = outcome.requested + outcome.backfill
        result.add_keys.extend(new_keys)
        if new_keys:
            outcome.status = "new"
            result.snapshots[feed.name] = (feed, parsed)
    return result


def save_feed_snapshot(
    store: ArtifactStore, feed: FeedConfig, parsed: ParsedFeed, fetched_at: str | None = None
) -> None:
    """Merge a parsed feed into ``{feed}/feed.json``.

    Items are kept after they drop out of the live feed, so an old episode can be backfilled from
    the UI even when the publisher only lists the newest items.
    """
    rel = feed_path(feed.name, FEED_SNAPSHOT)
    snapshot = store.read_json(rel) if store.exists(rel) else {"episodes": {}}
    snapshot["name"], snapshot["url"] = feed.name, feed.url
    snapshot["feed"] = parsed.to_dict()["feed"]
    snapshot["fetched_at"] = fetched_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for episode in parsed.episodes:
        snapshot["episodes"][episode.key] = episode.to_dict()
    store.write_json(rel, snapshot)
