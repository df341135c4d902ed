"""The per-episode stages behind the Dagster assets: metadata, raw audio, transcript.

Each stage reads its inputs from the artifact store, writes its artifact atomically, and returns a
record of what it did (outcome, provenance, timings) that the asset attaches as metadata.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from podcast_core.catalog import FeedConfig
from podcast_core.discovery import FEED_SNAPSHOT
from podcast_core.feeds import parse_feed
from podcast_core.http import FetchError, HttpClient
from podcast_core.keys import parse_episode_key
from podcast_core.models import Episode, Transcript
from podcast_core.published import choose_transcript, parse_transcript, transcript_format
from podcast_core.settings import WhisperSettings
from podcast_core.storage import ArtifactStore, episode_path, feed_path
from podcast_core.transcribe import transcribe

# Bump when a stage's output changes for the same inputs; Dagster then shows the data as stale.
METADATA_VERSION = "1"
AUDIO_VERSION = "1"
TRANSCRIPT_VERSION = "1"

log = logging.getLogger(__name__)


class EpisodeError(RuntimeError):
    """A stage failed for one episode; the message names the episode and the cause.

    ``retryable`` tells whether trying again later may succeed (network trouble) or not.
    """

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# -- episode_metadata -------------------------------------------------------------------------


def materialize_metadata(
    store: ArtifactStore, key: str, feed: FeedConfig | None, client: HttpClient
) -> dict[str, Any]:
    """Write ``metadata.json``: the RSS item of ``key`` plus its feed's facts.

    The item comes from the snapshot the RSS sensor saved; when it is not there (a key added by
    hand), the feed is fetched again.

    Raises:
        EpisodeError: when the item cannot be found.
    """
    feed_name = parse_episode_key(key).feed
    snapshot_rel = feed_path(feed_name, FEED_SNAPSHOT)
    snapshot = store.read_json(snapshot_rel) if store.exists(snapshot_rel) else None
    item = snapshot["episodes"].get(key) if snapshot else None
    feed_info = snapshot["feed"] if snapshot else None
    url = (snapshot or {}).get("url") or (feed.url if feed else None)
    if item is None:
        if feed is None:
            raise EpisodeError(f"episode {key}: feed {feed_name!r} is not in the catalog")
        content = client.fetch(feed.url)
        parsed = parse_feed(content, feed_slug=feed.name, base_url=feed.url)
        match = next((e for e in parsed.episodes if e.key == key), None)
        if match is None:
            raise EpisodeError(f"episode {key}: no item with this key in feed {feed.url}")
        item, feed_info = match.to_dict(), parsed.to_dict()["feed"]
    record = {
        "key": key,
        "feed": feed_name,
        "feed_url": url,
        "feed_info": feed_info,
        "episode": item,
        "code_version": METADATA_VERSION,
        "created_at": _now(),
    }
    store.write_json(episode_path(key, "metadata.json"), record)
    return record


def load_metadata(store: ArtifactStore, key: str) -> tuple[Episode, dict[str, Any]]:
    """The episode and its full metadata record, as ``episode_metadata`` stored them."""
    rel = episode_path(key, "metadata.json")
    if not store.exists(rel):
        raise EpisodeError(f"episode {key}: metadata.json missing; materialize episode_metadata")
    record = store.read_json(rel)
    return Episode.from_dict(record["episode"]), record


# -- raw_audio --------------------------------------------------------------------------------

_EXTENSIONS = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mp4": "m4a",
    "audio/x-m4a": "m4a",
    "audio/aac": "aac",
    "audio/ogg": "ogg",
    "audio/opus": "opus",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "video/mp4": "mp4",
    "audio/webm": "webm",
}
_KNOWN_SUFFIXES = {"mp3", "m4a", "aac", "ogg", "oga", "opus", "wav", "flac", "mp4", "webm"}


def audio_extension(content_type: str | None, url: str) -> str:
    """File extension for downloaded audio, from its content type, else its URL."""
    if content_type and content_type in _EXTENSIONS:
        return _EXTENSIONS[content_type]
    suffix = Path(urlparse(url).path).suffix.lower().lstrip(".")
    return suffix if suffix in _KNOWN_SUFFIXES else "bin"


def probe_duration(path: Path) -> float | None:
    """Audio duration in seconds read from the container, or None if it cannot be read."""
    import av  # PyAV ships with faster-whisper; light compared with the model stack

    try:
        with av.open(str(path)) as container:
            if container.duration is not None:
                return round(container.duration / 1_000_000, 3)
            stream = container.streams.audio[0]
            if stream.duration and stream.time_base:
                return round(float(stream.duration * stream.time_base), 3)
    except (av.error.FFmpegError, IndexError):
        return None
    return None


def materialize_audio(
    store: ArtifactStore,
    key: str,
    client: HttpClient,
    progress: Callable[[int, int | None], None] | None = None,
) -> dict[str, Any]:
    """Download the enclosure to ``audio.{ext}`` and describe it in ``audio.json``.

    A conditional GET (ETag / Last-Modified of the stored copy) and a checksum comparison skip
    rewriting audio that has not changed.

    Raises:
        EpisodeError: naming the episode and the cause (no enclosure, HTTP error, not audio, too
            large, too slow, undecodable).
    """
    episode, _ = load_metadata(store, key)
    if not episode.audio_url:
        raise EpisodeError(f"episode {key} ({episode.title!r}) has no audio enclosure")
    manifest_rel = episode_path(key, "audio.json")
    previous = store.read_json(manifest_rel) if store.exists(manifest_rel) else None
    if previous and (
        previous.get("url") != episode.audio_url
        or not store.exists(episode_path(key, previous["file"]))
    ):
        previous = None

    with tempfile.NamedTemporaryFile(
        dir=store.scratch_dir(), prefix=f"{key}.", suffix=".part", delete=False
    ) as handle:
        tmp = Path(handle.name)
    try:
        try:
            result = client.download(
                episode.audio_url,
                tmp,
                progress=progress,
                etag=previous.get("etag") if previous else None,
                last_modified=previous.get("last_modified") if previous else None,
            )
        except FetchError as exc:
            raise EpisodeError(
                f"episode {key}: audio download failed: {exc}", retryable=exc.retryable
            ) from exc
        if result is None or (previous and previous["sha256"] == result.sha256):
            return previous | {"outcome": "unchanged", "checked_at": _now()}
        duration = probe_duration(tmp)
        if duration is None:
            raise EpisodeError(
                f"episode {key}: {episode.audio_url} is not decodable audio "
                f"({result.content_type}, {result.bytes} bytes)"
            )
        name = f"audio.{audio_extension(result.content_type, result.final_url)}"
        store.move_in(episode_path(key, name), tmp)
        if previous and previous["file"] != name:
            store.delete(episode_path(key, previous["file"]))
        manifest = {
            "key": key,
            "file": name,
            "url": episode.audio_url,
            "final_url": result.final_url,
            "bytes": result.bytes,
            "sha256": result.sha256,
            "content_type": result.content_type,
            "etag": result.etag,
            "last_modified": result.last_modified,
            "duration_seconds": duration,
            "download_seconds": round(result.seconds, 3),
            "code_version": AUDIO_VERSION,
            "created_at": _now(),
        }
        store.write_json(manifest_rel, manifest)
        return manifest | {"outcome": "downloaded"}
    finally:
        tmp.unlink(missing_ok=True)


# -- transcript -------------------------------------------------------------------------------


def _primary_language(*candidates: str | None) -> str | None:
    for value in candidates:
        if value:
            return value.split("-")[0].split("_")[0].lower()
    return None


def materialize_transcript(
    store: ArtifactStore,
    key: str,
    feed: FeedConfig | None,
    client: HttpClient,
    whisper: WhisperSettings,
    *,
    progress: Callable[[float, float, float], None] | None = None,
    retry_transient: bool = False,
) -> dict[str, Any]:
    """Write ``transcript.json``: the publisher's transcript when linked, else Whisper's.

    Publisher links are chosen by ``published.FORMAT_PREFERENCE`` (and the feed's language). When
    the linked transcript cannot be fetched or parsed, Whisper runs instead and the reason is kept
    in ``fallback_reason``; with ``retry_transient``, a transient fetch failure (5xx, timeout)
    raises a retryable error instead, so a retry can still get the publisher's transcript. A
    transcript whose inputs (audio checksum, source, settings, code
    version) are unchanged is reused rather than recomputed.

    Raises:
        EpisodeError: naming the episode and the cause.
    """
    episode, record = load_metadata(store, key)
    audio_manifest_rel = episode_path(key, "audio.json")
    if not store.exists(audio_manifest_rel):
        raise EpisodeError(f"episode {key}: audio.json missing; materialize raw_audio first")
    audio = store.read_json(audio_manifest_rel)
    feed_language = _primary_language(
        feed.language if feed else None, (record.get("feed_info") or {}).get("language")
    )
    if feed and feed.whisper_model:
        whisper = dataclasses.replace(whisper, model=feed.whisper_model)
    link = choose_transcript(episode.transcripts, feed_language)
    fingerprint = "|".join(
        [
            TRANSCRIPT_VERSION,
            audio["sha256"],
            link.url if link else "whisper",
            "" if link else whisper.fingerprint(),
            (feed.language if feed else None) or "",
        ]
    )
    out_rel = episode_path(key, "transcript.json")
    if store.exists(out_rel):
        existing = store.read_json(out_rel)
        if existing.get("input_fingerprint") == fingerprint:
            return existing | {"outcome": "reused"}

    fallback_reason = None
    transcript: Transcript | None = None
    if link is not None:
        started = time.perf_counter()
        fmt = transcript_format(link.type, link.url)
        try:
            content = client.fetch(link.url)
            transcript = parse_transcript(content, fmt, source_url=link.url)
            transcript.language = _primary_language(link.language, feed_language)
            transcript.duration_seconds = audio.get("duration_seconds")
            transcript.processing_seconds = round(time.perf_counter() - started, 3)
        except Exception as exc:
            if retry_transient and isinstance(exc, FetchError) and exc.retryable:
                raise EpisodeError(
                    f"episode {key}: publisher transcript {link.url} failed: {exc}",
                    retryable=True,
                ) from exc
            fallback_reason = f"publisher transcript {link.url} failed: {exc}"
            log.warning("episode %s: %s; falling back to Whisper", key, fallback_reason)
    if transcript is None:
        with store.local_copy(episode_path(key, audio["file"])) as audio_file:
            try:
                transcript = transcribe(
                    audio_file,
                    whisper,
                    language=feed.language if feed else None,
                    progress=progress,
                )
            except Exception as exc:
                raise EpisodeError(f"episode {key}: transcription failed: {exc}") from exc

    document = {
        "key": key,
        "feed": record["feed"],
        "title": episode.title,
        **transcript.to_dict(),
        "fallback_reason": fallback_reason,
        "whisper_settings": None if transcript.source != "whisper" else whisper.__dict__,
        "audio_sha256": audio["sha256"],
        "input_fingerprint": fingerprint,
        "code_version": TRANSCRIPT_VERSION,
        "created_at": _now(),
    }
    store.write_json(out_rel, document)
    return document | {"outcome": "created"}
