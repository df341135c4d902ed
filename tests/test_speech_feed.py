"""The spoken weekly digest (script, TTS backends, MP3 with chapters) and its RSS feed."""

from __future__ import annotations

import copy
import itertools
import shutil
import sys
import wave
import xml.etree.ElementTree as ET
from pathlib import Path

import av
import feedparser
import pytest

from podcast_core.digest_feed import (
    DIGEST_FEED_MARKER,
    build_digest_feed,
    is_digest_feed,
    podcast_guid,
)
from podcast_core.feeds import parse_feed
from podcast_core.speech import (
    CommandBackend,
    EspeakBackend,
    Section,
    SpeechError,
    digest_script,
    render_digest_audio,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
GAP = 0.6


def _digest() -> dict:
    return {
        "schema_version": "1",
        "week": "2026-W47",
        "start": "2026-11-16T00:00:00+00:00",
        "end": "2026-11-23T00:00:00+00:00",
        "generated_at": "2026-11-23T06:00:00+00:00",
        "episodes": [
            {
                "feed": "speeches",
                "feed_title": "Great Speeches",
                "episodes": [
                    {
                        "key": "speeches--aaaaaaaaaaaa",
                        "title": "Ask Not",
                        "published": "2026-11-17T10:00:00Z",
                        "audio_url": "http://x/ask.mp3",
                        "duration_seconds": 660.0,
                        "lead": "A president urges citizens to serve the nation.",
                    },
                    {
                        "key": "speeches--bbbbbbbbbbbb",
                        "title": "Moon Shot",
                        "published": "2026-11-18T10:00:00Z",
                        "audio_url": "http://x/moon.mp3",
                        "duration_seconds": 1200.0,
                        "lead": "Why go to the moon.",
                    },
                ],
            },
            {
                "feed": "civics",
                "feed_title": "Civics Weekly",
                "episodes": [
                    {
                        "key": "civics--cccccccccccc",
                        "title": "Public Service Today",
                        "published": "2026-11-19T10:00:00Z",
                        "audio_url": "http://x/svc.mp3",
                        "duration_seconds": 1800.0,
                        "lead": "Volunteering is back.",
                    },
                    {
                        "key": "civics--dddddddddddd",
                        "title": "Budget Hearings Recap",
                        "published": "2026-11-20T10:00:00Z",
                        "audio_url": "http://x/budget.mp3",
                        "duration_seconds": 900.0,
                        "lead": "The committee met twice.",
                    },
                ],
            },
        ],
        "insights": [
            {
                "key": "civics--cccccccccccc",
                "feed": "civics",
                "title": "Public Service Today",
                "text": "Volunteer numbers rose for the first time in a decade.",
                "insight_type": "claim",
                "support_score": 0.71,
                "quote": {
                    "text": "we saw the first rise in volunteers in ten years",
                    "start_seconds": 754.2,
                    "end_seconds": 758.9,
                    "speaker": "Dana Smith",
                },
                "link": "http://x/svc.mp3#t=754",
            },
            {
                "key": "speeches--bbbbbbbbbbbb",
                "feed": "speeches",
                "title": "Moon Shot",
                "text": "Hard goals organize our energies.",
                "insight_type": "observation",
                "support_score": 0.93,
                "quote": {
                    "text": "because that goal will serve to organize the best of our energies",
                    "start_seconds": 31.0,
                    "end_seconds": 35.5,
                    "speaker": None,
                },
                "link": "http://x/moon.mp3#t=31",
            },
        ],
        "clusters": [
            {
                "id": "c1",
                "episodes": ["speeches--aaaaaaaaaaaa", "civics--cccccccccccc"],
                "feeds": ["speeches", "civics"],
                "titles": ["Ask Not", "Public Service Today"],
                "similarity": 0.82,
            }
        ],
        "trends": [
            {
                "entity_id": "topic:public-service",
                "name": "public service",
                "type": "topic",
                "this_week": 3,
                "previous_week": 1,
                "change": 2,
            },
            {
                "entity_id": "person:john-f-kennedy",
                "name": "John F. Kennedy",
                "type": "person",
                "this_week": 2,
                "previous_week": 0,
                "change": 2,
            },
        ],
        "listen_list": {
            "budget_minutes": 60,
            "total_minutes": 41,
            "items": [
                {
                    "key": "civics--cccccccccccc",
                    "title": "Public Service Today",
                    "feed": "civics",
                    "minutes": 30,
                    "reason": "Best grounded insight of the week",
                },
                {
                    "key": "speeches--aaaaaaaaaaaa",
                    "title": "Ask Not",
                    "feed": "speeches",
                    "minutes": 11,
                    "reason": "Part of the biggest story",
                },
            ],
        },
        "stats": {"episodes": 4, "feeds": 2},
    }


def _empty_digest() -> dict:
    digest = _digest()
    for name in ("episodes", "insights", "clusters", "trends"):
        digest[name] = []
    digest["listen_list"] = {"budget_minutes": 60, "total_minutes": 0, "items": []}
    digest["stats"] = {"episodes": 0, "feeds": 0}
    return digest


# --------------------------------------------------------------------------------------------
# Script


def test_digest_script_order_and_content():
    sections = digest_script(_digest())
    titles = [s.title for s in sections]
    assert titles[0] == "Intro" and titles[-1] == "Outro"
    kinds = [t.split(":")[0] for t in titles]
    # intro, stories, insights (best supported first), other episodes, listen list, trends, outro
    assert kinds == [
        "Intro",
        "Story 1",
        "Insight",
        "Insight",
        "Also new",
        "Listen list",
        "Trends",
        "Outro",
    ]
    text = {s.title: s.text for s in sections}
    story = sections[1].text
    assert "Ask Not" in story and "Public Service Today" in story
    assert "Great Speeches" in story and "Civics Weekly" in story
    assert titles[2] == "Insight: Great Speeches: Moon Shot"  # support 0.93 before 0.71
    assert "organize the best of our energies" in sections[2].text
    assert "we saw the first rise in volunteers in ten years" in sections[3].text
    assert "Dana Smith" in sections[3].text and "12 minutes" in sections[3].text
    # The budget hearings were in no story and no insight: mentioned once, under "Also new".
    assert "Budget Hearings Recap" in text["Also new"]
    assert "Ask Not" not in text["Also new"]
    assert "60 minutes" in text["Listen list"] and "Best grounded insight" in text["Listen list"]
    assert "Public service came up in 3 episodes, up from 1" in text["Trends"]
    assert "John F. Kennedy came up in 2 episodes, new this week" in text["Trends"]
    assert "4 new episodes" in text["Intro"] and "November 16, 2026" in text["Intro"]
    for section in sections:
        assert section.text.strip() and "http" not in section.text


def test_digest_script_empty_week_is_short_and_honest():
    sections = digest_script(_empty_digest())
    spoken = " ".join(s.text for s in sections)
    assert [s.title for s in sections] == ["Intro", "Outro"]
    assert "No new episodes" in spoken
    assert len(spoken.split()) < 60
    assert not any(word in spoken for word in ("Story", "listen list", "came up"))


# --------------------------------------------------------------------------------------------
# Audio


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as handle:
        return handle.getnframes() / handle.getframerate()


class Recording:
    """Wraps a backend and records the duration of every WAV it writes."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.durations: list[float] = []

    def synthesize(self, text: str, wav_path: Path) -> None:
        self.inner.synthesize(text, wav_path)
        self.durations.append(_wav_seconds(wav_path))


class FailsOnSecond:
    name = "flaky"

    def __init__(self, inner):
        self.inner = inner
        self.calls = 0

    def synthesize(self, text: str, wav_path: Path) -> None:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("synthesizer crashed")
        self.inner.synthesize(text, wav_path)


def _decoded_seconds(path: Path) -> tuple[float, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.sample_rate, stream.sample_rate, stream.codec_context.channels


def _expected_starts(durations: list[float]) -> list[float]:
    starts, position = [], 0.0
    for index, duration in enumerate(durations):
        position += GAP if index else 0.0
        starts.append(position)
        position += duration
    return starts


def _check_render(result: dict, out: Path, sections: list[Section], durations: list[float]):
    assert out.is_file() and result["bytes"] == out.stat().st_size > 0
    assert not [p for p in out.parent.iterdir() if p.name != out.name]  # no temp files left
    decoded, rate, channels = _decoded_seconds(out)
    assert rate in (22050, 24000) and channels == 1
    expected_total = sum(durations) + GAP * (len(durations) - 1)
    assert decoded == pytest.approx(expected_total, abs=0.3)
    assert result["duration_seconds"] == pytest.approx(expected_total, abs=0.3)
    chapters = result["chapters"]
    assert chapters["version"] == "1.2.0"
    assert [c["title"] for c in chapters["chapters"]] == [s.title for s in sections]
    starts = [c["startTime"] for c in chapters["chapters"]]
    assert starts[0] == 0
    assert all(b > a for a, b in itertools.pairwise(starts))
    for start, expected in zip(starts, _expected_starts(durations), strict=True):
        assert start == pytest.approx(expected, abs=0.1)
    assert starts[-1] < decoded


def test_render_digest_audio_with_espeak(tmp_path):
    sections = digest_script(_digest())[:4]
    backend = Recording(EspeakBackend())
    out = tmp_path / "out" / "digest.mp3"
    result = render_digest_audio(sections, backend, out, gap_seconds=GAP, title="Digest 2026-W47")
    assert len(backend.durations) == len(sections) and min(backend.durations) > 1.0
    _check_render(result, out, sections, backend.durations)
    assert 24_000 <= result["bytes"] * 8 / result["duration_seconds"] <= 72_000  # ~48 kbps


def test_render_failure_midway_leaves_nothing(tmp_path):
    sections = [Section("One", "First part."), Section("Two", "Second part.")]
    sections.append(Section("Three", "Third part."))
    out = tmp_path / "digest.mp3"
    backend = FailsOnSecond(EspeakBackend())
    with pytest.raises(SpeechError, match=r"section 2/3 \('Two'\).*synthesizer crashed"):
        render_digest_audio(sections, backend, out)
    assert backend.calls == 2
    assert list(tmp_path.iterdir()) == []
    # A previous digest survives a failed rebuild untouched.
    out.write_bytes(b"previous")
    with pytest.raises(SpeechError):
        render_digest_audio(sections, FailsOnSecond(EspeakBackend()), out)
    assert out.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == [out.name]


def test_missing_espeak_binary_is_named(tmp_path):
    backend = EspeakBackend(binary=str(tmp_path / "no-such-espeak-ng"))
    with pytest.raises(SpeechError, match=r"espeak-ng.*no-such-espeak-ng.*not found"):
        backend.synthesize("hello", tmp_path / "x.wav")
    with pytest.raises(SpeechError, match="no-such-espeak-ng"):
        render_digest_audio([Section("Intro", "hello")], backend, tmp_path / "d.mp3")
    assert not (tmp_path / "d.mp3").exists()


def test_espeak_is_installed():
    # CI installs the Debian package; without it the digest has no voice.
    assert shutil.which("espeak-ng"), "install espeak-ng (apt-get install espeak-ng)"


SINE_SCRIPT = """
import math, struct, sys, wave
text = open(sys.argv[1], encoding="utf-8").read()
rate = 16000
frames = int(rate * (0.5 + 0.02 * len(text)))
with wave.open(sys.argv[2], "wb") as out:
    out.setnchannels(1)
    out.setsampwidth(2)
    out.setframerate(rate)
    out.writeframes(b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
        for i in range(frames)
    ))
"""


def test_command_backend_is_pluggable(tmp_path):
    script = tmp_path / "sine_tts.py"
    script.write_text(SINE_SCRIPT)
    backend = CommandBackend([sys.executable, str(script), "{text_file}", "{wav}"], name="sine")
    sections = [Section("A", "short"), Section("B", "a somewhat longer line of text")]
    sections.append(Section("C", "x" * 100))
    expected = [0.5 + 0.02 * len(s.text) for s in sections]  # 16 kHz, resampled to 22.05 kHz
    out = tmp_path / "out" / "digest.mp3"
    result = render_digest_audio(sections, backend, out, gap_seconds=GAP)
    assert result["backend"] == "sine"
    _check_render(result, out, sections, expected)
    # A string template works the same way.
    assert CommandBackend(f"{sys.executable} {script} {{text_file}} {{wav}}").argv[-1] == "{wav}"
    with pytest.raises(ValueError, match="wav"):
        CommandBackend("say -f {text_file}")
    failing = CommandBackend([sys.executable, "-c", "raise SystemExit(3)", "{text_file}", "{wav}"])
    with pytest.raises(SpeechError, match="exited with 3"):
        failing.synthesize("hi", tmp_path / "f.wav")


# --------------------------------------------------------------------------------------------
# Feed

BASE = "https://digest.example.com/files/"


def _entries() -> list[dict]:
    def entry(week: str, day: int, size: int, seconds: float) -> dict:
        return {
            "week": week,
            "title": f"Digest {week}: stories & quotes <weekly>",
            "published": f"2026-11-{day:02d}T06:00:00Z",
            "audio_path_url": f"{week}/digest.mp3",
            "audio_bytes": size,
            "duration_seconds": seconds,
            "chapters_url": f"{week}/chapters.json",
            "html_url": f"{week}/digest.html",
            "summary": f"<h1>{week}</h1><p>Four episodes &amp; one story ]]> done.</p>",
        }

    # Deliberately not in date order.
    return [
        entry("2026-W46", 16, 900_000, 150.4),
        entry("2026-W47", 23, 1_200_000, 201.0),
        entry("2026-W45", 9, 700_000, 99.6),
    ]


def _feed(entries: list[dict]) -> bytes:
    return build_digest_feed(
        entries,
        title="Weekly Digest",
        link="https://digest.example.com/",
        base_url=BASE,
        description="Your shows, summarized & spoken",
        image="https://digest.example.com/cover.png",
    )


def test_digest_feed_is_valid_rss_with_podcasting20_tags():
    xml = _feed(_entries())
    root = ET.fromstring(xml)
    ns = {
        "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
        "podcast": "https://podcastindex.org/namespace/1.0",
    }
    channel = root.find("channel")
    assert root.tag == "rss" and root.get("version") == "2.0"
    for tag in ("title", "link", "description", "language", "itunes:author", "itunes:explicit"):
        assert channel.findtext(tag, namespaces=ns), tag
    assert channel.find("itunes:category", ns).get("text")
    assert channel.find("itunes:image", ns).get("href") == "https://digest.example.com/cover.png"
    assert channel.findtext("podcast:guid", namespaces=ns) == podcast_guid(
        "https://digest.example.com/"
    )
    assert channel.findtext("generator") == DIGEST_FEED_MARKER
    items = channel.findall("item")
    assert [i.find("guid").text for i in items] == [
        f"podcast-intelligence-digest-2026-W{w}" for w in (47, 46, 45)
    ]
    assert all(i.find("guid").get("isPermaLink") == "false" for i in items)
    assert items[0].findtext("pubDate") == "Mon, 23 Nov 2026 06:00:00 GMT"
    assert items[0].findtext("itunes:episodeType", namespaces=ns) == "full"
    assert "]]> done." in items[0].findtext("description")  # CDATA split correctly
    assert b"<![CDATA[" in xml


def test_digest_feed_through_our_parser_and_feedparser():
    xml = _feed(_entries())
    parsed = parse_feed(xml, feed_slug="digest", base_url=BASE + "feed.xml")
    assert parsed.feed.title == "Weekly Digest"
    by_week = {entry["week"]: entry for entry in _entries()}
    assert [e.guid[-8:] for e in parsed.episodes] == ["2026-W47", "2026-W46", "2026-W45"]
    for episode in parsed.episodes:
        week = episode.guid[-8:]
        entry = by_week[week]
        assert episode.audio_url == BASE + f"{week}/digest.mp3"
        assert episode.audio_type == "audio/mpeg"
        assert episode.audio_bytes == entry["audio_bytes"]
        assert episode.duration_seconds == round(entry["duration_seconds"])
        assert episode.chapters_url == BASE + f"{week}/chapters.json"
        assert [(t.url, t.type) for t in episode.transcripts] == [
            (BASE + f"{week}/digest.html", "text/html")
        ]
        assert episode.title == entry["title"]
        assert episode.episode_type == "full"
    # Stable keys: a rebuild with a new week and edited entries keeps the old keys.
    edited = copy.deepcopy(_entries())
    edited[0]["title"] = "Renamed"
    edited[0]["audio_bytes"] = 1
    edited.append({**edited[1], "week": "2026-W48", "published": "2026-11-30T06:00:00Z"})
    again = parse_feed(_feed(edited), feed_slug="digest", base_url=BASE + "feed.xml")
    old = {e.guid: e.key for e in parsed.episodes}
    new = {e.guid: e.key for e in again.episodes}
    assert len(new) == 4 and all(new[guid] == key for guid, key in old.items())
    assert again.episodes[0].guid.endswith("2026-W48")
    assert _feed(_entries()) == xml  # deterministic bytes

    result = feedparser.parse(xml)
    assert result.bozo == 0, result.get("bozo_exception")
    assert len(result.entries) == 3
    assert result.entries[0].enclosures[0].href == BASE + "2026-W47/digest.mp3"


def test_is_digest_feed_refuses_only_our_feed():
    xml = _feed(_entries())
    assert is_digest_feed(xml) and is_digest_feed(xml.decode())
    parsed = parse_feed(xml, feed_slug="digest")
    assert is_digest_feed(parsed) and is_digest_feed(parsed.to_dict())
    assert is_digest_feed(feedparser.parse(xml))
    assert is_digest_feed(_feed([]))  # the generator marks even an empty feed

    other = (SHARED_DATA / "podcast-namespace-example2.xml").read_bytes()
    assert not is_digest_feed(other)
    assert not is_digest_feed(parse_feed(other, feed_slug="example"))
    assert not is_digest_feed(feedparser.parse(other))


def test_digest_feed_rejects_bad_entries():
    entries = _entries()
    with pytest.raises(ValueError, match="several entries for 2026-W47"):
        _feed([*entries, entries[1]])
    del entries[0]["audio_bytes"]
    with pytest.raises(ValueError, match="entry for 2026-W46 lacks audio_bytes"):
        _feed(entries)
