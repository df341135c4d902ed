"""Publisher-supplied transcripts: pick a ``<podcast:transcript>`` link and parse it.

Podcasting 2.0 feeds may link transcripts in five formats (see ``FORMAT_PREFERENCE``). Each parser
turns a document into a :class:`~podcast_core.models.Transcript` whose ``source`` is
``published:<format>``. Parsers follow the real files published by hosts and tolerate the usual
sloppiness (BOMs, CRLF, missing cue numbers, cp1252 bytes); a document that cannot be read raises
:class:`TranscriptFormatError` naming the source, the cause and, where known, the line.

Behaviour worth knowing:

* Segment texts have tags stripped, entities unescaped (not in plain text) and whitespace
  collapsed; segments whose text ends up empty are dropped.
* A cue whose end precedes its start is kept with ``end == start`` rather than rejected.
* HTML and plain text carry no (or only coarse) timing: plain text and untimed HTML paragraphs
  get ``start == end == 0.0``.
* Word-level JSON (at least 80% one-word segments) is merged into sentence-like segments; JSON
  with phrase or sentence segments is kept as published.
* Speaker prefixes (``"Name: "``) are recognised in SubRip and plain text only; WebVTT uses voice
  tags, JSON and HTML have explicit speaker fields.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from podcast_core.models import Segment, Transcript, TranscriptLink

# Best first. JSON carries explicit speaker and timing fields (often word-level); WebVTT has cue
# timing and structured voice tags; SubRip has cue timing but speakers only as a text-prefix
# heuristic; HTML has speakers but only second-resolution paragraph starts; plain text has no
# timing at all.
FORMAT_PREFERENCE: tuple[str, ...] = ("json", "vtt", "srt", "html", "text")

_MIME_FORMATS: dict[str, str] = {
    "application/json": "json",
    "text/json": "json",
    "text/vtt": "vtt",
    "text/webvtt": "vtt",
    "text/x-vtt": "vtt",
    "application/x-subrip": "srt",
    "application/srt": "srt",
    "application/x-srt": "srt",
    "text/srt": "srt",
    "text/x-srt": "srt",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "text",
}

_EXTENSION_FORMATS: dict[str, str] = {
    "json": "json",
    "vtt": "vtt",
    "webvtt": "vtt",
    "srt": "srt",
    "html": "html",
    "htm": "html",
    "txt": "text",
}

# Word-level JSON merging (see _merge_words).
_MAX_MERGE_GAP = 2.0
_MAX_MERGED_SECONDS = 30.0
_WORD_LEVEL_SHARE = 0.8

# [[h:]m:]s with an optional fraction; "." or "," so both VTT and SRT forms parse.
_CLOCK_RE = re.compile(r"(?:(\d+):)?(\d+):(\d{1,2})(?:[.,](\d+))?")
_CLOCK_START_RE = re.compile(r"\s*\d+:\d")
_SECONDS_RE = re.compile(r"\d+(?:\.\d+)?")
# Markup tags (<i>, </b>, <font color=..>, <c.x>, <00:00:01.000>) but not a bare "<" in text.
_TAG_RE = re.compile(r"<(?:/?[A-Za-z][^<>]*|\d[\d:.]*)>")
_ASS_OVERRIDE_RE = re.compile(r"\{\\[^{}]*\}")
_VOICE_RE = re.compile(r"<v(?:\.[^\s<>]*)?(?:[ \t]+([^<>]*))?>")
_SPEAKER_PREFIX_RE = re.compile(
    r"(?P<name>[^\W\d_][\w'\u2019.\-]*(?:[ \t]+[\w'\u2019.\-]+){0,3}):(?:\s+|$)(?P<rest>.*)", re.S
)
_SENTENCE_END_RE = re.compile(r"[.?!\u2026][\"'\u201d\u2019)\]]*$")
_ATTACHED_PUNCT_RE = re.compile(r"[.,!?;:\u2026)\]\"\u201d\u2019]+")


class TranscriptFormatError(ValueError):
    """A transcript document that cannot be parsed; the message names the source and the cause.

    Attributes:
        source: The URL (or a description) of the document.
        line: The 1-based line of the problem, where known.
    """

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None):
        super().__init__(message)
        self.source = source
        self.line = line


def _fail(source: str, cause: str, line: int | None = None) -> TranscriptFormatError:
    where = f"{source}: line {line}" if line is not None else source
    return TranscriptFormatError(f"{where}: {cause}", source=source, line=line)


def transcript_format(mime_type: str | None, url: str | None = None) -> str | None:
    """The parser format for a ``<podcast:transcript>`` link.

    The MIME type decides (case and parameters such as ``; charset=utf-8`` are ignored); when it is
    missing or unknown (``application/octet-stream`` is common), the URL's file extension does.

    Args:
        mime_type: The link's ``type`` attribute.
        url: The link's ``url``, used as a fallback.

    Returns:
        One of ``FORMAT_PREFERENCE``, or None if neither names a supported format.
    """
    if mime_type:
        essence = mime_type.split(";", 1)[0].strip().lower()
        if essence in _MIME_FORMATS:
            return _MIME_FORMATS[essence]
    if url:
        path = urlsplit(url.strip()).path
        name = path.rsplit("/", 1)[-1]
        if "." in name:
            return _EXTENSION_FORMATS.get(name.rsplit(".", 1)[-1].lower())
    return None


def _primary_subtag(language: str) -> str:
    return re.split(r"[-_]", language.strip(), maxsplit=1)[0].lower()


def choose_transcript(
    links: Sequence[TranscriptLink], language: str | None = None
) -> TranscriptLink | None:
    """The best supported transcript link.

    Links in the wanted language come first (primary subtags are compared, so ``en-US`` matches
    ``en``; a link without a language counts as matching), then formats by
    ``FORMAT_PREFERENCE``; ties keep document order. Links in another language are only chosen
    when no matching one is supported.

    Args:
        links: The episode's transcript links, in document order.
        language: The wanted language (BCP 47), or None for any.

    Returns:
        The chosen link, or None if no link has a supported format.
    """
    wanted = _primary_subtag(language) if language and language.strip() else None
    best: tuple[tuple[int, int, int], TranscriptLink] | None = None
    for index, link in enumerate(links):
        fmt = transcript_format(link.type, link.url)
        if fmt is None:
            continue
        matches = (
            wanted is None
            or not link.language
            or not link.language.strip()
            or _primary_subtag(link.language) == wanted
        )
        rank = (0 if matches else 1, FORMAT_PREFERENCE.index(fmt), index)
        if best is None or rank < best[0]:
            best = (rank, link)
    return best[1] if best else None


def parse_transcript(
    content: bytes | str, fmt: str, *, source_url: str | None = None
) -> Transcript:
    """Parse a published transcript document.

    Args:
        content: The document; bytes are decoded as UTF-8 (BOM allowed), else cp1252, else latin-1.
        fmt: One of ``FORMAT_PREFERENCE`` (a MIME type such as ``text/vtt`` is accepted too).
        source_url: Where the document came from; kept on the transcript and named in errors.

    Returns:
        The transcript, ``source="published:<fmt>"``; ``text`` is the segment texts joined by
        single spaces.

    Raises:
        TranscriptFormatError: For an unsupported format, a malformed document (naming the line
            where possible) or a document without any transcript text.
    """
    name = fmt.strip().lower()
    canonical = name if name in FORMAT_PREFERENCE else transcript_format(name)
    source = source_url or f"<{canonical or name} transcript>"
    if canonical is None:
        raise _fail(source, f"unsupported transcript format {fmt!r}")
    text = _decode(content)
    segments = _PARSERS[canonical](text, source)
    if not segments:
        raise _fail(source, "contains no transcript text")
    return Transcript(
        text=" ".join(s.text for s in segments),
        segments=segments,
        source=f"published:{canonical}",
        language=None,
        model=None,
        source_url=source_url,
    )


def _decode(content: bytes | str) -> str:
    if isinstance(content, bytes):
        if content.startswith((b"\xff\xfe", b"\xfe\xff")):
            text = content.decode("utf-16", errors="replace")
        else:
            try:
                text = content.decode("utf-8-sig")
            except UnicodeDecodeError:
                # Hosts still publish Windows-encoded SRT; cp1252 leaves a few bytes undefined.
                try:
                    text = content.decode("cp1252")
                except UnicodeDecodeError:
                    text = content.decode("latin-1")
    else:
        text = content
    text = text.removeprefix("\ufeff")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _clean_markup(text: str) -> str:
    # Strip tags before unescaping so an escaped "&lt;i&gt;" survives as literal text.
    return _collapse(html.unescape(_TAG_RE.sub("", text)))


def _parse_clock(value: str) -> float | None:
    match = _CLOCK_RE.fullmatch(value.strip())
    if not match:
        return None
    hours, minutes, seconds, fraction = match.groups()
    if int(seconds) >= 60 or (hours is not None and int(minutes) >= 60):
        return None
    whole = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
    # Via the decimal string, so "00:00:13,109" gives exactly 13.109.
    return float(f"{whole}.{fraction or 0}")


def _parse_timing(line: str, lineno: int, source: str) -> tuple[float, float]:
    left, _, right = line.partition("-->")
    right_parts = right.split()
    start = _parse_clock(left)
    end = _parse_clock(right_parts[0]) if right_parts else None
    if start is None or end is None:
        raise _fail(source, f"malformed cue timing {line.strip()!r}", lineno)
    return start, max(start, end)


def _blocks(text: str) -> list[list[tuple[int, str]]]:
    """Runs of non-blank lines, each line with its 1-based number."""
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            current.append((lineno, line))
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _timing_index(block: list[tuple[int, str]]) -> int | None:
    """Where the ``-->`` line is: first, or second after a cue identifier / number."""
    for index in range(min(2, len(block))):
        if "-->" in block[index][1]:
            return index
    return None


def _split_speaker(text: str) -> tuple[str | None, str]:
    """Split a leading ``Name: `` (1-4 capitalised words, or numbers as in "Speaker 2")."""
    match = _SPEAKER_PREFIX_RE.match(text)
    if not match:
        return None, text
    words = match["name"].split()
    if not words[0][0].isupper() or not all(w[0].isupper() or w.isdigit() for w in words[1:]):
        return None, text
    return " ".join(words), match["rest"].strip()


def _parse_vtt(text: str, source: str) -> list[Segment]:
    blocks = _blocks(text)
    if not blocks or not blocks[0][0][1].lstrip().startswith("WEBVTT"):
        raise _fail(source, "not WebVTT: the 'WEBVTT' header is missing", 1)
    header = blocks[0]
    cue_blocks = blocks[1:]
    for index, (_, line) in enumerate(header[1:], start=1):
        if "-->" in line:
            # Sloppy file without the blank line after the header.
            cue_blocks.insert(0, header[index:])
            break
    segments: list[Segment] = []
    for block in cue_blocks:
        first = block[0][1].strip()
        if "-->" not in first and first.split(" ", 1)[0].split("\t", 1)[0] in {
            "NOTE",
            "STYLE",
            "REGION",
        }:
            continue
        timing = _timing_index(block)
        if timing is None:
            continue  # Not a cue; WebVTT parsers drop such blocks too.
        lineno, line = block[timing]
        start, end = _parse_timing(line, lineno, source)
        payload = " ".join(line for _, line in block[timing + 1 :])
        segments.extend(
            Segment(start, end, body, speaker) for speaker, body in _vtt_voices(payload)
        )
    return segments


def _vtt_voices(payload: str) -> list[tuple[str | None, str]]:
    """Split cue text by ``<v Speaker>`` spans; a cue with two voices gives two parts."""
    pieces = _VOICE_RE.split(payload)
    spans: list[tuple[str | None, str]] = [(None, pieces[0])]
    for name, body in zip(pieces[1::2], pieces[2::2], strict=True):
        speaker = _collapse(html.unescape(name)) if name else None
        spans.append((speaker or None, body))
    parts: list[tuple[str | None, str]] = []
    for speaker, body in spans:
        cleaned = _clean_markup(body)
        if not cleaned:
            continue
        if parts and parts[-1][0] == speaker:
            parts[-1] = (speaker, f"{parts[-1][1]} {cleaned}")
        else:
            parts.append((speaker, cleaned))
    return parts


def _parse_srt(text: str, source: str) -> list[Segment]:
    cues: list[tuple[float, float, list[str]]] = []
    for block in _blocks(text):
        timing = _timing_index(block)
        if timing is None:
            if (
                len(block) > 1
                and block[0][1].strip().isdigit()
                and _CLOCK_START_RE.match(block[1][1])
            ):
                raise _fail(source, f"malformed cue timing {block[1][1].strip()!r}", block[1][0])
            # A blank line inside cue text (common in hand-edited files) splits a cue in two.
            if cues and not all(line.strip().isdigit() for _, line in block):
                cues[-1][2].extend(line for _, line in block)
            continue
        lineno, line = block[timing]
        start, end = _parse_timing(line, lineno, source)
        cues.append((start, end, [line for _, line in block[timing + 1 :]]))
    segments: list[Segment] = []
    speaker: str | None = None
    for start, end, lines in cues:
        body = _clean_markup(_ASS_OVERRIDE_RE.sub("", " ".join(lines)))
        named, rest = _split_speaker(body)
        if named:
            speaker, body = named, rest
        if body:
            segments.append(Segment(start, end, body, speaker))
    return segments


def _json_seconds(value: Any, field: str, index: int, source: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        stripped = value.strip()
        if _SECONDS_RE.fullmatch(stripped):
            return float(stripped)
        clock = _parse_clock(stripped)
        if clock is not None:
            return clock
    raise _fail(source, f"segment {index}: malformed {field} {value!r}")


def _parse_json(text: str, source: str) -> list[Segment]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise _fail(source, f"invalid JSON: {error.msg}", error.lineno) from error
    raw = document.get("segments") if isinstance(document, dict) else document
    if not isinstance(raw, list):
        raise _fail(source, "not Podcast Index JSON: no 'segments' list")
    entries: list[tuple[float | None, float | None, str, str | None]] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise _fail(source, f"segment {index}: expected an object, got {type(item).__name__}")
        body = item.get("body", item.get("text"))
        speaker = item.get("speaker")
        entries.append(
            (
                _json_seconds(item.get("startTime"), "startTime", index, source),
                _json_seconds(item.get("endTime"), "endTime", index, source),
                _collapse(html.unescape(str(body))) if body is not None else "",
                (_collapse(str(speaker)) or None) if speaker is not None else None,
            )
        )
    segments: list[Segment] = []
    previous_end = 0.0
    for index, (start, end, body, speaker) in enumerate(entries):
        begin = start if start is not None else previous_end
        if end is None:
            following = next((e[0] for e in entries[index + 1 :] if e[0] is not None), None)
            end = following if following is not None else begin
        end = max(begin, end)
        previous_end = end
        if body:
            segments.append(Segment(begin, end, body, speaker))
    if segments and _is_word_level(segments):
        return _merge_words(segments)
    return segments


def _is_word_level(segments: list[Segment]) -> bool:
    single = sum(1 for s in segments if len(s.text.split()) == 1)
    return single >= _WORD_LEVEL_SHARE * len(segments)


def _merge_words(words: list[Segment]) -> list[Segment]:
    """Merge one-word segments into sentence-like ones.

    A run of the same speaker grows until its text ends a sentence, the next word starts more than
    2 s after it, or it would last more than 30 s.
    """
    merged: list[Segment] = []
    for word in words:
        if merged:
            last = merged[-1]
            if (
                last.speaker == word.speaker
                and not _SENTENCE_END_RE.search(last.text)
                and word.start - last.end <= _MAX_MERGE_GAP
                and word.end - last.start <= _MAX_MERGED_SECONDS
            ):
                glue = "" if _ATTACHED_PUNCT_RE.fullmatch(word.text) else " "
                merged[-1] = Segment(
                    last.start, max(last.end, word.end), last.text + glue + word.text, last.speaker
                )
                continue
        merged.append(word)
    return merged


class _PodcastHtmlParser(HTMLParser):
    """Collects ``<cite>``/``<time>``/``<p>`` runs of a podcast-namespace HTML transcript."""

    _SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self.source = source
        self.paragraphs: list[tuple[float | None, str | None, str]] = []
        self._speaker: str | None = None
        self._time: float | None = None
        self._element: str | None = None
        self._element_line = 0
        self._buffer: list[str] = []
        self._skip_depth = 0
        self._time_attr: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip_depth += 1
        elif tag in {"cite", "time", "p"}:
            self._finish()
            self._element = tag
            self._element_line = self.getpos()[0]
            self._time_attr = dict(attrs).get("datetime") if tag == "time" else None
        elif tag == "br" and self._element:
            self._buffer.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag == self._element:
            self._finish()

    def handle_data(self, data: str) -> None:
        if self._element and not self._skip_depth:
            self._buffer.append(data)

    def close(self) -> None:
        super().close()
        self._finish()

    def _finish(self) -> None:
        element, text = self._element, _collapse("".join(self._buffer))
        self._element, self._buffer = None, []
        if element == "cite":
            self._speaker = text.removesuffix(":").strip() or None
        elif element == "time":
            seconds = self._clock(text)
            if seconds is None and self._time_attr:
                seconds = self._clock(self._time_attr)
            if seconds is None:
                raise _fail(self.source, f"malformed time {text!r}", self._element_line)
            self._time = seconds
        elif element == "p" and text:
            self.paragraphs.append((self._time, self._speaker, text))

    @staticmethod
    def _clock(value: str) -> float | None:
        value = value.strip()
        return float(value) if _SECONDS_RE.fullmatch(value) else _parse_clock(value)


def _parse_html(text: str, source: str) -> list[Segment]:
    parser = _PodcastHtmlParser(source)
    parser.feed(text)
    parser.close()
    paragraphs = parser.paragraphs
    starts = [start or 0.0 for start, _, _ in paragraphs]
    segments: list[Segment] = []
    for index, (_, speaker, body) in enumerate(paragraphs):
        start = starts[index]
        # A paragraph lasts until the next one starts; the last one has no known end.
        end = starts[index + 1] if index + 1 < len(starts) else start
        segments.append(Segment(start, max(start, end), body, speaker))
    return segments


def _parse_text(text: str, source: str) -> list[Segment]:
    segments: list[Segment] = []
    speaker: str | None = None
    lines: list[str] = []

    def flush() -> None:
        body = _collapse(" ".join(lines))
        if body:
            segments.append(Segment(0.0, 0.0, body, speaker))
        lines.clear()

    for line in text.split("\n"):
        if not line.strip():
            flush()
            continue
        named, rest = _split_speaker(line.strip())
        if named:
            flush()
            speaker = named
            lines.append(rest)
        else:
            lines.append(line)
    flush()
    return segments


_PARSERS = {
    "vtt": _parse_vtt,
    "srt": _parse_srt,
    "json": _parse_json,
    "html": _parse_html,
    "text": _parse_text,
}
