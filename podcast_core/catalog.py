"""The feed catalog: which feeds to follow and their per-feed overrides. Data, not code.

Stored as ``{data_dir}/catalog.json``; every change takes an exclusive lock and replaces the file
atomically, so concurrent ``podcast feeds add`` calls never lose each other's feeds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from podcast_core.keys import validate_feed_slug


class CatalogError(ValueError):
    """A catalog change that cannot be made (duplicate, unknown feed, bad value)."""


@dataclass(frozen=True)
class FeedConfig:
    """One followed feed.

    Attributes:
        name: the feed slug, unique in the catalog and the first half of its episode keys.
        url: the RSS URL.
        whisper_model: Whisper model for this feed, overriding the global setting.
        language: spoken language (ISO 639-1), skipping Whisper's detection; also used to pick
            among publisher transcripts in several languages.
        initial_episodes: how many of the newest episodes to process when the feed is first seen;
            older ones become partitions to backfill from the UI.
        since: ignore episodes published before this date (ISO-8601).
    """

    name: str
    url: str
    whisper_model: str | None = None
    language: str | None = None
    initial_episodes: int | None = None
    since: str | None = None
    added_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, omitting unset overrides."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def validate_url(url: str) -> str:
    """Return ``url`` if it is an absolute http(s) URL, else raise ``CatalogError``."""
    parsed = urlparse(url)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise CatalogError(f"feed URL {url!r} is not an absolute http(s) URL")
    return url


class Catalog:
    """Read and change the catalog file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def feeds(self) -> list[FeedConfig]:
        """Every feed, in the order they were added."""
        if not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text())
            return [FeedConfig(**entry) for entry in data.get("feeds", [])]
        except (json.JSONDecodeError, TypeError) as exc:
            raise CatalogError(f"catalog {self.path} is not valid: {exc}") from exc

    def get(self, name: str) -> FeedConfig:
        """The feed called ``name``."""
        for feed in self.feeds():
            if feed.name == name:
                return feed
        raise CatalogError(f"no feed named {name!r} in the catalog ({self.path})")

    def find_url(self, url: str) -> FeedConfig | None:
        """The feed with this URL, if followed."""
        return next((f for f in self.feeds() if f.url == url), None)

    def add(self, feed: FeedConfig) -> FeedConfig:
        """Add a feed; its name and URL must both be new."""
        validate_feed_slug(feed.name)
        validate_url(feed.url)
        if feed.initial_episodes is not None and feed.initial_episodes < 0:
            raise CatalogError(f"feed {feed.name}: initial_episodes must be >= 0")
        if feed.since is not None:
            try:
                dt.date.fromisoformat(feed.since[:10])
            except ValueError as exc:
                raise CatalogError(f"feed {feed.name}: since {feed.since!r} is not a date") from exc
        stamped = dataclasses.replace(
            feed, added_at=feed.added_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        )
        with self._locked() as feeds:
            for existing in feeds:
                if existing.name == feed.name:
                    raise CatalogError(f"a feed named {feed.name!r} exists ({existing.url})")
                if existing.url == feed.url:
                    raise CatalogError(f"{feed.url} is already followed as {existing.name!r}")
            feeds.append(stamped)
        return stamped

    def update(self, name: str, **changes: Any) -> FeedConfig:
        """Change fields of an existing feed."""
        with self._locked() as feeds:
            for i, existing in enumerate(feeds):
                if existing.name == name:
                    feeds[i] = dataclasses.replace(existing, **changes)
                    return feeds[i]
        raise CatalogError(f"no feed named {name!r} in the catalog ({self.path})")

    def remove(self, name: str) -> FeedConfig:
        """Stop following a feed. Its artifacts and partitions are kept."""
        with self._locked() as feeds:
            for i, existing in enumerate(feeds):
                if existing.name == name:
                    return feeds.pop(i)
        raise CatalogError(f"no feed named {name!r} in the catalog ({self.path})")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[FeedConfig]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            feeds = self.feeds()
            yield feeds
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            payload = {"version": 1, "feeds": [f.to_dict() for f in feeds]}
            tmp.write_text(json.dumps(payload, indent=2) + "\n")
            tmp.replace(self.path)
