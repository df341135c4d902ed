"""The weekly digest as a spoken episode: a script, pluggable text-to-speech, one MP3 with chapters.

:func:`digest_script` turns a weekly digest dict into a list of :class:`Section`, in this order:

1. ``Intro``: the week, how many episodes from which shows, what is coming up.
2. One section per cluster (a story several episodes covered), in the digest's order.
3. One section per notable insight (highest ``support_score`` first), with its quote.
4. ``Also new``: episodes not mentioned by a story or an insight, with their leads.
5. ``Listen list``: the items of the time-budgeted listen list with their reasons.
6. ``Trends``: people, organizations and topics mentioned more or less than last week.
7. ``Outro``.

Sections with nothing to say are left out; a week without episodes is an intro that says so and
an outro.

:func:`render_digest_audio` speaks each section with a :class:`TTSBackend`, joins them with short
silences into one mono MP3 and returns Podcasting 2.0 JSON chapters at the section boundaries.
Backends: :class:`EspeakBackend` (the ``espeak-ng`` binary, the default) and
:class:`CommandBackend`, any command line that turns a text file into a WAV (piper, macOS
``say``, ...), chosen by configuration.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import av
import numpy as np

CHAPTERS_VERSION = "1.2.0"
DEFAULT_SAMPLE_RATE = 22050
DEFAULT_BITRATE = 48_000
DEFAULT_GAP_SECONDS = 0.6
MAX_INSIGHTS = 5
MAX_TRENDS = 5
MAX_ALSO_NEW = 8


class SpeechError(RuntimeError):
    """Raised when text-to-speech or the digest audio cannot be produced; says which and why."""


@dataclass(frozen=True)
class Section:
    """One part of the spoken digest; it becomes one chapter.

    Attributes:
        title: the chapter title.
        text: what is spoken, plain text.
    """

    title: str
    text: str


# --------------------------------------------------------------------------------------------
# The script

_URL_RE = re.compile(r"https?://\S+")
_TAG_RE = re.compile(r"<[^>]+>")
_MARKDOWN_RE = re.compile(r"[*_#`>|]+")


def _speakable(text: Any) -> str:
    """Plain text fit for a speech synthesizer: no markup, no URLs, collapsed whitespace."""
    value = str(text or "")
    value = _TAG_RE.sub(" ", value)
    value = _URL_RE.sub(" ", value)
    value = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", value)  # markdown links keep their text
    value = _MARKDOWN_RE.sub(" ", value)
    return " ".join(value.split())


def _sentence(text: Any) -> str:
    """``text`` made speakable and ending with punctuation (so sentences do not run together)."""
    value = _speakable(text)
    if value and value[-1] not in ".!?\"'":
        value += "."
    return value


def _join_names(names: Sequence[str]) -> str:
    names = [n for n in names if n]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _parse_when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _spoken_week(digest: dict[str, Any]) -> str:
    start = _parse_when(digest.get("start"))
    if start is not None:
        return f"the week of {start.strftime('%A, %B')} {start.day}, {start.year}"
    match = re.fullmatch(r"(\d{4})-W(\d{1,2})", str(digest.get("week") or ""))
    if match:
        return f"week {int(match[2])} of {match[1]}"
    return "this week"


def _spoken_minutes(minutes: Any) -> str:
    try:
        value = round(float(minutes))
    except (TypeError, ValueError):
        return ""
    return "under a minute" if value < 1 else _plural(value, "minute")


def _spoken_offset(seconds: Any) -> str:
    """``"about 12 minutes in"`` for a quote's start time."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return ""
    if value < 60:
        return "in the first minute"
    hours, minutes = divmod(int(value // 60), 60)
    if hours:
        rest = f" {_plural(minutes, 'minute')}" if minutes else ""
        return f"about {_plural(hours, 'hour')}{rest} in"
    return f"about {_plural(minutes, 'minute')} in"


class _Episodes:
    """Look-ups into the digest's ``episodes`` block."""

    def __init__(self, digest: dict[str, Any]) -> None:
        self.by_key: dict[str, dict[str, Any]] = {}
        self.feed_titles: dict[str, str] = {}
        self.feeds: list[str] = []
        for block in digest.get("episodes") or []:
            feed = str(block.get("feed") or "")
            title = _speakable(block.get("feed_title")) or feed
            if feed:
                self.feed_titles[feed] = title
            if block.get("episodes"):
                self.feeds.append(title)
            for episode in block.get("episodes") or []:
                self.by_key[str(episode.get("key"))] = {**episode, "feed": feed}

    def feed_title(self, feed: Any) -> str:
        return self.feed_titles.get(str(feed or ""), _speakable(feed))

    def __len__(self) -> int:
        return len(self.by_key)


def _intro(digest: dict[str, Any], episodes: _Episodes, coming_up: list[str]) -> Section:
    when = _spoken_week(digest)
    if not len(episodes):
        return Section(
            "Intro",
            f"This is your podcast digest for {when}. No new episodes arrived from the shows you "
            "follow this week, so there are no stories, insights or trends to report.",
        )
    text = (
        f"Welcome to your podcast digest for {when}. "
        f"{_plural(len(episodes), 'new episode')} arrived from "
        f"{_plural(len(episodes.feeds), 'show')}: {_join_names(episodes.feeds)}."
    )
    if coming_up:
        text += f" Coming up: {_join_names(coming_up)}."
    return Section("Intro", text)


def _cluster_section(number: int, cluster: dict[str, Any], episodes: _Episodes) -> Section:
    members: list[tuple[str, str, str]] = []  # (feed title, episode title, lead)
    keys = list(cluster.get("episodes") or [])
    titles = list(cluster.get("titles") or [])
    feeds = list(cluster.get("feeds") or [])
    for index, key in enumerate(keys):
        episode = episodes.by_key.get(str(key), {})
        title = episode.get("title") or (titles[index] if index < len(titles) else "")
        feed = episode.get("feed") or (feeds[index] if index < len(feeds) else "")
        members.append((episodes.feed_title(feed), _speakable(title), episode.get("lead") or ""))
    if not members:  # a cluster given by titles only
        members = [
            (episodes.feed_title(feeds[i] if i < len(feeds) else ""), _speakable(t), "")
            for i, t in enumerate(titles)
        ]
    shows = {feed for feed, _, _ in members if feed}
    headline = members[0][1] if members and members[0][1] else f"Story {number}"
    if len(shows) > 1:
        opening = f"Story {number}. {_plural(len(shows), 'show')} covered related ground."
    else:
        opening = f"Story {number}. {_plural(len(members), 'episode')} took up the same story."
    parts = [opening]
    parts += [f'On {feed}: "{title}".' if feed else f'"{title}".' for feed, title, _ in members]
    lead = next((lead for _, _, lead in members if _speakable(lead)), "")
    if lead:
        parts.append(f"In short: {_sentence(lead)}")
    return Section(f"Story {number}: {headline}", " ".join(parts))


def _insight_section(insight: dict[str, Any], episodes: _Episodes) -> Section:
    feed = episodes.feed_title(insight.get("feed"))
    episode = episodes.by_key.get(str(insight.get("key")), {})
    title = _speakable(insight.get("title") or episode.get("title"))
    source = f'{feed}, in "{title}"' if feed and title else (feed or f'"{title}"')
    parts = [f"From {source}: {_sentence(insight.get('text'))}"]
    quote = insight.get("quote") or {}
    quote_text = _speakable(quote.get("text"))
    if quote_text:
        speaker = _speakable(quote.get("speaker"))
        when = _spoken_offset(quote.get("start_seconds"))
        who = f"{speaker} put it this way" if speaker else "In the episode's own words"
        parts.append(f'{who}{", " + when if when else ""}: "{_sentence(quote_text)}"')
    chapter = f"{feed}: {title}" if feed and title else (title or feed or "Insight")
    return Section(f"Insight: {chapter}", " ".join(parts))


def _also_new_section(keys: list[str], episodes: _Episodes) -> Section:
    parts = ["Also new this week."]
    for key in keys[:MAX_ALSO_NEW]:
        episode = episodes.by_key[key]
        line = f'On {episodes.feed_title(episode["feed"])}: "{_speakable(episode.get("title"))}".'
        if _speakable(episode.get("lead")):
            line += f" {_sentence(episode['lead'])}"
        parts.append(line)
    if len(keys) > MAX_ALSO_NEW:
        parts.append(f"And {_plural(len(keys) - MAX_ALSO_NEW, 'more episode')}.")
    return Section("Also new", " ".join(parts))


def _listen_list_section(listen: dict[str, Any], episodes: _Episodes) -> Section:
    items = listen.get("items") or []
    budget = _spoken_minutes(listen.get("budget_minutes"))
    total = _spoken_minutes(listen.get("total_minutes"))
    opening = f"Your listen list: {_plural(len(items), 'episode')}"
    opening += f", {total} in all" if total else ""
    opening += f", picked to fit a budget of {budget}." if budget else "."
    parts = [opening]
    for index, item in enumerate(items, start=1):
        feed = episodes.feed_title(item.get("feed"))
        minutes = _spoken_minutes(item.get("minutes"))
        line = f'{index}. "{_speakable(item.get("title"))}"'
        line += f" from {feed}" if feed else ""
        line += f", {minutes}." if minutes else "."
        if _speakable(item.get("reason")):
            line += f" {_sentence(item['reason'])}"
        parts.append(line)
    return Section("Listen list", " ".join(parts))


def _count(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _trends_section(trends: list[dict[str, Any]]) -> Section:
    parts = ["Trends across your shows."]
    for trend in trends[:MAX_TRENDS]:
        name = _speakable(trend.get("name")) or _speakable(trend.get("entity_id"))
        if name.islower():  # topics are lowercase keyphrases; they open a sentence here
            name = name[0].upper() + name[1:]
        now, before = _count(trend.get("this_week")), _count(trend.get("previous_week"))
        mentioned = f"{name} came up in {_plural(now, 'episode')}"
        if before == 0 and now > 0:
            parts.append(f"{mentioned}, new this week.")
        elif now > before:
            parts.append(f"{mentioned}, up from {before}.")
        elif now < before:
            parts.append(f"{mentioned}, down from {before}.")
        else:
            parts.append(f"{mentioned}, as many as last week.")
    return Section("Trends", " ".join(parts))


def digest_script(digest: dict[str, Any]) -> list[Section]:
    """The spoken script of a weekly digest.

    Sections come in the order described in the module docstring: intro, stories (clusters),
    notable insights with their quotes, other new episodes, the listen list, trends, outro.

    Args:
        digest: a weekly digest dict (``schema_version`` 1).

    Returns:
        The sections, each a future chapter. A week without episodes gives a short intro saying
        so and an outro.
    """
    episodes = _Episodes(digest)
    when = _spoken_week(digest)
    if not len(episodes):
        outro = Section("Outro", "That is all for this week. Thanks for listening.")
        return [_intro(digest, episodes, []), outro]

    stories = [
        _cluster_section(n, cluster, episodes)
        for n, cluster in enumerate(digest.get("clusters") or [], start=1)
    ]
    ranked = sorted(
        (i for i in digest.get("insights") or [] if _speakable(i.get("text"))),
        key=lambda i: -float(i.get("support_score") or 0.0),
    )[:MAX_INSIGHTS]
    insights = [_insight_section(insight, episodes) for insight in ranked]
    mentioned = {str(k) for c in digest.get("clusters") or [] for k in c.get("episodes") or []}
    mentioned |= {str(i.get("key")) for i in ranked}
    others = [key for key in episodes.by_key if key not in mentioned]
    also_new = [_also_new_section(others, episodes)] if others else []
    listen = digest.get("listen_list") or {}
    listen_list = [_listen_list_section(listen, episodes)] if listen.get("items") else []
    trend_rows = digest.get("trends") or []
    trends = [_trends_section(trend_rows)] if trend_rows else []

    coming_up = []
    if stories:
        noun = "one story" if len(stories) == 1 else f"{len(stories)} stories"
        coming_up.append(f"{noun} that more than one episode covered")
    if insights:
        coming_up.append(_plural(len(insights), "notable insight"))
    if listen_list:
        coming_up.append("your listen list")
    if trends:
        coming_up.append("what is trending")
    outro = Section(
        "Outro",
        f"That was your podcast digest for {when}. The written digest has every quote with a "
        "link to the moment it was said. Thanks for listening.",
    )
    return [
        _intro(digest, episodes, coming_up),
        *stories,
        *insights,
        *also_new,
        *listen_list,
        *trends,
        outro,
    ]


# --------------------------------------------------------------------------------------------
# Text-to-speech backends


class TTSBackend(Protocol):
    """Something that speaks text into a WAV file (any rate, mono or stereo, PCM or float)."""

    name: str

    def synthesize(self, text: str, wav_path: Path) -> None:
        """Speak ``text`` into ``wav_path``; raise with the cause if it cannot."""
        ...


def _run(argv: list[str], what: str, timeout: float) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise SpeechError(f"{what}: binary {argv[0]!r} not found ({exc})") from exc
    except subprocess.TimeoutExpired as exc:
        raise SpeechError(f"{what}: {argv[0]} timed out after {timeout:g} s") from exc
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace").strip()[-500:]
        raise SpeechError(f"{what}: {argv[0]} exited with {result.returncode}: {stderr}")


def _check_wav(wav_path: Path, what: str) -> None:
    if not wav_path.is_file() or wav_path.stat().st_size <= 44:  # 44 = a bare WAV header
        raise SpeechError(f"{what}: produced no audio in {wav_path}")


@contextlib.contextmanager
def _text_file(text: str, near: Path) -> Iterator[Path]:
    # Text goes through a file, not argv: no length limit and a leading "-" is not an option.
    fd, name = tempfile.mkstemp(prefix=".tts-", suffix=".txt", dir=near.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


class EspeakBackend:
    """Text-to-speech with the ``espeak-ng`` binary (Debian package ``espeak-ng``).

    Args:
        voice: an espeak-ng voice (``espeak-ng --voices`` lists them).
        speed: words per minute.
        binary: the program name or path; the default is looked up on ``PATH``.
        timeout: seconds allowed per section.
    """

    name = "espeak-ng"

    def __init__(
        self,
        voice: str = "en-us",
        speed: int = 165,
        *,
        binary: str = "espeak-ng",
        timeout: float = 300.0,
    ) -> None:
        self.voice = voice
        self.speed = speed
        self.binary = binary
        self.timeout = timeout

    def resolve_binary(self) -> str:
        """The full path of the binary.

        Raises:
            SpeechError: naming the binary, if it is not installed.
        """
        path = shutil.which(self.binary)
        if path is None:
            raise SpeechError(
                f"text-to-speech backend espeak-ng: binary {self.binary!r} not found; install "
                "espeak-ng (Debian/Ubuntu: apt-get install espeak-ng) or configure another "
                "backend"
            )
        return path

    def synthesize(self, text: str, wav_path: Path) -> None:
        """Speak ``text`` into ``wav_path`` (22.05 kHz mono 16-bit WAV).

        Raises:
            SpeechError: if the binary is missing, fails, or writes no audio.
        """
        binary = self.resolve_binary()
        what = f"text-to-speech backend espeak-ng ({binary})"
        with _text_file(text, wav_path) as text_path:
            argv = [binary, "-v", self.voice, "-s", str(self.speed), "-b", "1"]
            _run([*argv, "-w", str(wav_path), "-f", str(text_path)], what, self.timeout)
        _check_wav(wav_path, what)


class CommandBackend:
    """Text-to-speech by any command that reads a text file and writes a WAV file.

    Each argument of ``template`` may contain ``{text_file}`` (a UTF-8 file holding the text) and
    ``{wav}`` (where to write the WAV); both are required. A string template is split like a shell
    would split it, but no shell runs: wrap it in ``sh -c '...'`` to use redirections. Examples::

        say -f {text_file} -o {wav} --data-format=LEI16@22050
        sh -c 'piper --model en_US-lessac-medium.onnx --output_file {wav} < {text_file}'

    Args:
        template: the command line, as a string or an argument list.
        name: a name for logs and errors; defaults to the program name.
        timeout: seconds allowed per section.

    Raises:
        ValueError: if the template lacks a placeholder.
    """

    def __init__(
        self, template: str | Sequence[str], *, name: str | None = None, timeout: float = 300.0
    ) -> None:
        argv = shlex.split(template) if isinstance(template, str) else [str(a) for a in template]
        joined = " ".join(argv)
        missing = [p for p in ("{text_file}", "{wav}") if p not in joined]
        if not argv or missing:
            raise ValueError(
                f"TTS command template {template!r} needs the placeholders "
                f"{' and '.join(missing) or '{text_file} and {wav}'}"
            )
        self.argv = argv
        self.name = name or f"command:{Path(argv[0]).name}"
        self.timeout = timeout

    def synthesize(self, text: str, wav_path: Path) -> None:
        """Run the command for ``text``.

        Raises:
            SpeechError: if the program is missing, fails, or writes no audio.
        """
        what = f"text-to-speech backend {self.name}"
        with _text_file(text, wav_path) as text_path:
            argv = [
                arg.replace("{text_file}", str(text_path)).replace("{wav}", str(wav_path))
                for arg in self.argv
            ]
            if os.sep not in argv[0] and shutil.which(argv[0]) is None:
                raise SpeechError(f"{what}: binary {argv[0]!r} not found on PATH")
            _run(argv, what, self.timeout)
        _check_wav(wav_path, what)


# --------------------------------------------------------------------------------------------
# Audio


def _decode_mono(path: Path, rate: int) -> np.ndarray:
    """The audio of ``path`` as mono int16 samples at ``rate``."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
    chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)


def render_digest_audio(
    sections: Sequence[Section],
    backend: TTSBackend,
    out_mp3: Path,
    *,
    gap_seconds: float = DEFAULT_GAP_SECONDS,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    bitrate: int = DEFAULT_BITRATE,
    title: str | None = None,
) -> dict[str, Any]:
    """Speak ``sections`` into one MP3 with a chapter per section.

    Every section is synthesized to WAV first, decoded and resampled to ``sample_rate`` mono; the
    sections are joined with ``gap_seconds`` of silence between them and encoded with libmp3lame.
    The MP3 is written to a temporary file beside ``out_mp3`` and renamed into place, so a failure
    at any point leaves ``out_mp3`` as it was (absent, or the previous version).

    Args:
        sections: the script, e.g. from :func:`digest_script`.
        backend: the text-to-speech backend.
        out_mp3: where to write the MP3.
        gap_seconds: silence between sections.
        sample_rate: output sample rate (22050 or 24000 suit speech).
        bitrate: MP3 bit rate in bits per second.
        title: an ID3 title for the file.

    Returns:
        ``{"path", "duration_seconds", "bytes", "sample_rate", "bitrate", "backend",
        "chapters": {"version": "1.2.0", "chapters": [{"startTime", "title"}]},
        "sections": [{"title", "start_seconds", "duration_seconds"}]}``; ``chapters`` is a
        Podcasting 2.0 JSON chapters document, ready to be written as ``chapters.json``.

    Raises:
        ValueError: if there are no sections or one has no text.
        SpeechError: naming the section and the backend, if synthesis or encoding fails.
    """
    if not sections:
        raise ValueError("render_digest_audio needs at least one section")
    for index, section in enumerate(sections, start=1):
        if not section.text.strip():
            raise ValueError(f"section {index} ({section.title!r}) has no text to speak")
    out_mp3 = Path(out_mp3)
    out_mp3.parent.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="digest-tts-") as work:
        samples: list[np.ndarray] = []
        for index, section in enumerate(sections, start=1):
            wav = Path(work) / f"section-{index:03d}.wav"
            where = f"section {index}/{len(sections)} ({section.title!r})"
            try:
                backend.synthesize(section.text, wav)
                audio = _decode_mono(wav, sample_rate)
            except Exception as exc:
                raise SpeechError(f"{backend.name} failed on {where}: {exc}") from exc
            if not audio.size:
                raise SpeechError(f"{backend.name} produced no audio for {where}")
            samples.append(audio)

    gap = np.zeros(round(gap_seconds * sample_rate), dtype=np.int16)
    timeline: list[dict[str, Any]] = []
    position = 0
    for index, (section, audio) in enumerate(zip(sections, samples, strict=True)):
        if index:
            position += gap.size
        timeline.append(
            {
                "title": section.title,
                "start_seconds": round(position / sample_rate, 3),
                "duration_seconds": round(audio.size / sample_rate, 3),
            }
        )
        position += audio.size

    fd, name = tempfile.mkstemp(prefix=f".{out_mp3.name}.", suffix=".tmp", dir=out_mp3.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        _encode_mp3(samples, gap, tmp, sample_rate=sample_rate, bitrate=bitrate, title=title)
        os.replace(tmp, out_mp3)
    except Exception as exc:
        if isinstance(exc, SpeechError):
            raise
        raise SpeechError(f"encoding the digest MP3 {out_mp3} failed: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)

    return {
        "path": str(out_mp3),
        "duration_seconds": round(position / sample_rate, 3),
        "bytes": out_mp3.stat().st_size,
        "sample_rate": sample_rate,
        "bitrate": bitrate,
        "backend": backend.name,
        "chapters": {
            "version": CHAPTERS_VERSION,
            "chapters": [{"startTime": s["start_seconds"], "title": s["title"]} for s in timeline],
        },
        "sections": timeline,
    }


def _encode_mp3(
    samples: Sequence[np.ndarray],
    gap: np.ndarray,
    path: Path,
    *,
    sample_rate: int,
    bitrate: int,
    title: str | None,
) -> None:
    with av.open(str(path), mode="w", format="mp3") as container:
        if title:
            container.metadata["title"] = title
        stream = container.add_stream("libmp3lame", rate=sample_rate, layout="mono")
        stream.bit_rate = bitrate
        pts = 0
        for index, audio in enumerate(samples):
            for chunk in ([gap] if index and gap.size else []) + [audio]:
                # PyAV re-chunks frames to the encoder's frame size.
                frame = av.AudioFrame.from_ndarray(
                    chunk.reshape(1, -1), format="s16p", layout="mono"
                )
                frame.sample_rate = sample_rate
                frame.pts = pts
                pts += chunk.size
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
