"""The records that flow through the pipeline, with their JSON forms."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TranscriptLink:
    """A ``<podcast:transcript>`` link of an RSS item."""

    url: str
    type: str
    language: str | None = None
    rel: str | None = None


@dataclass(frozen=True)
class Person:
    """A ``<podcast:person>`` of a feed or item."""

    name: str
    role: str = "host"


@dataclass(frozen=True)
class FeedInfo:
    """Channel-level facts of a feed."""

    title: str | None
    link: str | None
    description: str | None
    language: str | None
    image: str | None


@dataclass(frozen=True)
class Episode:
    """One normalized RSS item. ``published`` is ISO-8601 UTC or None."""

    key: str
    guid: str | None
    title: str | None
    published: str | None
    audio_url: str | None
    audio_type: str | None
    audio_bytes: int | None
    duration_seconds: float | None
    transcripts: tuple[TranscriptLink, ...] = ()
    chapters_url: str | None = None
    persons: tuple[Person, ...] = ()
    season: int | None = None
    number: int | None = None
    episode_type: str | None = None
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the ``podcast feeds parse`` contract)."""
        return dataclasses.asdict(self) | {
            "transcripts": [dataclasses.asdict(t) for t in self.transcripts],
            "persons": [dataclasses.asdict(p) for p in self.persons],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Episode:
        """Inverse of :meth:`to_dict`."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["transcripts"] = tuple(TranscriptLink(**t) for t in data.get("transcripts", ()))
        values["persons"] = tuple(Person(**p) for p in data.get("persons", ()))
        return cls(**values)


@dataclass(frozen=True)
class ParsedFeed:
    """A parsed feed: channel facts plus its items, newest first."""

    feed: FeedInfo
    episodes: tuple[Episode, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``podcast feeds parse``."""
        return {
            "feed": dataclasses.asdict(self.feed),
            "episodes": [e.to_dict() for e in self.episodes],
        }


@dataclass(frozen=True)
class Segment:
    """A timed span of a transcript.

    ``speaker`` is set where the source names one; ``words`` (``{"start", "end", "word"}``) where
    the source has word timings (Whisper with word timestamps).
    """

    start: float
    end: float
    text: str
    speaker: str | None = None
    words: list[dict[str, Any]] | None = None


@dataclass
class Transcript:
    """A transcript with its provenance.

    ``source`` is ``published:<format>`` (vtt, srt, json, html, text) or ``whisper``.
    """

    text: str
    segments: list[Segment]
    source: str
    language: str | None = None
    model: str | None = None
    duration_seconds: float | None = None
    processing_seconds: float | None = None
    source_url: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form of ``transcript.json``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        values["segments"] = [Segment(**s) for s in data.get("segments", [])]
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in fields})
