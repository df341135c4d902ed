"""Text utilities shared by the enrichment stages.

Sentences with character offsets, chunking on sentence boundaries, mapping character offsets to
time, and resolving a candidate quote onto an exact span of the transcript.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sr",
    "jr",
    "st",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "a.m",
    "p.m",
    "inc",
    "ltd",
    "co",
    "corp",
    "u.s",
    "u.k",
    "no",
    "vol",
    "approx",
    "mt",
    "ft",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
}
_BOUNDARY = re.compile("[.!?\u2026]+[\"'\u201d\u2019)\\]]*\\s+")
_TOKEN = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class Sentence:
    """A sentence and its ``[start, end)`` character range in the source text."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Chunk:
    """A run of whole sentences for retrieval, with its character range."""

    idx: int
    text: str
    start: int
    end: int
    tokens: int


def count_tokens(text: str) -> int:
    """Approximate subword tokens: words plus punctuation marks.

    Close to WordPiece counts for English speech, without loading a tokenizer.
    """
    return len(_TOKEN.findall(text))


def split_sentences(text: str) -> list[Sentence]:
    """Split ``text`` into sentences, keeping exact character offsets.

    Boundaries are sentence-final punctuation followed by whitespace, except after common
    abbreviations and single initials. Text without punctuation (some ASR output) falls back to
    one sentence per ~40 words so downstream stages never receive one giant sentence.
    """
    sentences: list[Sentence] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        before = text[start : match.start()].rsplit(None, 1)
        last_word = before[-1].lower().rstrip(".") if before else ""
        if text[match.start()] == "." and (last_word in _ABBREVIATIONS or len(last_word) == 1):
            continue
        _append(sentences, text, start, end)
        start = end
    _append(sentences, text, start, len(text))
    return [piece for s in sentences for piece in _split_long(text, s)]


def _append(sentences: list[Sentence], text: str, start: int, end: int) -> None:
    raw = text[start:end]
    stripped = raw.strip()
    if stripped:
        offset = start + raw.index(stripped)
        sentences.append(Sentence(stripped, offset, offset + len(stripped)))


def _split_long(text: str, sentence: Sentence, max_words: int = 60) -> list[Sentence]:
    words = list(re.finditer(r"\S+", sentence.text))
    if len(words) <= max_words:
        return [sentence]
    pieces = []
    for i in range(0, len(words), 40):
        group = words[i : i + 40]
        s, e = sentence.start + group[0].start(), sentence.start + group[-1].end()
        pieces.append(Sentence(text[s:e], s, e))
    return pieces


def chunk_sentences(
    text: str, sentences: Sequence[Sentence], target_tokens: int = 300, overlap_tokens: int = 50
) -> list[Chunk]:
    """Group consecutive sentences into chunks of about ``target_tokens`` tokens.

    Each chunk starts with the last ``overlap_tokens`` or so of the previous one; chunks always
    hold whole sentences.
    """
    if not sentences:
        return []
    sizes = [count_tokens(s.text) for s in sentences]
    chunks: list[Chunk] = []
    first = 0
    while first < len(sentences):
        last, total = first, sizes[first]
        while last + 1 < len(sentences) and total + sizes[last + 1] <= target_tokens:
            last += 1
            total += sizes[last]
        start, end = sentences[first].start, sentences[last].end
        chunks.append(Chunk(len(chunks), text[start:end], start, end, total))
        if last + 1 >= len(sentences):
            break
        # Step back over whole sentences worth about overlap_tokens, but always move forward.
        nxt, carried = last + 1, 0
        while nxt - 1 > first and carried + sizes[nxt - 1] <= overlap_tokens:
            nxt -= 1
            carried += sizes[nxt]
        first = nxt
    return chunks


class TimeMap:
    """Maps character offsets of a transcript's text to seconds and speakers via its segments.

    Segment texts are located in order inside the full text; inside a segment, word timings are
    used when present, otherwise time is interpolated linearly over the segment's characters.
    """

    def __init__(self, text: str, segments: Sequence[dict[str, Any]]):
        self.text = text
        self._spans: list[tuple[int, int, dict[str, Any]]] = []
        cursor = 0
        for segment in segments:
            seg_text = (segment.get("text") or "").strip()
            if not seg_text:
                continue
            found = text.find(seg_text, cursor)
            if found < 0:
                continue
            self._spans.append((found, found + len(seg_text), segment))
            cursor = found + len(seg_text)
        self._starts = [s for s, _, _ in self._spans]

    def _segment_at(self, offset: int) -> tuple[int, int, dict[str, Any]] | None:
        if not self._spans:
            return None
        i = max(bisect.bisect_right(self._starts, offset) - 1, 0)
        return self._spans[i]

    def time_at(self, offset: int) -> float:
        """Seconds into the audio at character ``offset``."""
        found = self._segment_at(offset)
        if found is None:
            return 0.0
        start, end, segment = found
        t0, t1 = float(segment.get("start") or 0.0), float(segment.get("end") or 0.0)
        words = segment.get("words")
        if words:
            position, local = 0, offset - start
            seg_text = self.text[start:end]
            for word in words:
                token = word["word"].strip()
                at = seg_text.find(token, position) if token else -1
                if at < 0:
                    continue
                if local < at + len(token):
                    return float(word["start"])
                position = at + len(token)
            return float(words[-1]["end"])
        share = min(max((offset - start) / max(end - start, 1), 0.0), 1.0)
        return t0 + share * max(t1 - t0, 0.0)

    def span_times(self, char_start: int, char_end: int) -> tuple[float, float]:
        """(start, end) seconds of a character span."""
        t0 = self.time_at(char_start)
        found = self._segment_at(max(char_end - 1, char_start))
        t1 = self.time_at(max(char_end - 1, char_start))
        if found is not None and not found[2].get("words"):
            t1 = max(t1, self.time_at(char_end))
        elif found is not None:
            words = found[2]["words"]
            # The end of the word that contains the span's last character.
            t1 = next((float(w["end"]) for w in words if float(w["start"]) >= t1), t1)
        return t0, max(t1, t0)

    def speaker_at(self, offset: int) -> str | None:
        """The speaker of the segment containing ``offset``, if the source names one."""
        found = self._segment_at(offset)
        return found[2].get("speaker") if found else None

    def segment_index_at(self, offset: int) -> int | None:
        """Index (among non-empty segments) of the segment containing ``offset``."""
        if not self._spans:
            return None
        return max(bisect.bisect_right(self._starts, offset) - 1, 0)


_QUOTES = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u02bc": "'", "`": "'", "\u201c": '"', "\u201d": '"'}
)


def _normalized_with_map(text: str) -> tuple[str, list[int]]:
    """Lowercase ``text``, unify apostrophes and collapse whitespace.

    Returns the normalized text and, for each of its characters, the index of the original
    character it came from.
    """
    out: list[str] = []
    index: list[int] = []
    previous_space = True
    for i, ch in enumerate(unicodedata.normalize("NFC", text)):
        ch = ch.translate(_QUOTES).lower()
        if ch.isspace():
            if previous_space:
                continue
            ch, previous_space = " ", True
        else:
            previous_space = False
        out.append(ch)
        index.append(i)
    if out and out[-1] == " ":
        out.pop()
        index.pop()
    return "".join(out), index


@dataclass(frozen=True)
class Span:
    """A resolved quote: ``text == transcript[start:end]``; ``method`` says how it was found."""

    start: int
    end: int
    text: str
    method: str


def resolve_span(candidate: str, transcript: str, min_words: int = 3) -> Span | None:
    """Map a candidate quote onto an exact span of ``transcript``.

    Tries, in order: the exact string; the string with whitespace, case and apostrophes
    normalized; the longest run of at least ``min_words`` consecutive candidate words that occurs
    (normalized) in the transcript. Returns None when nothing matches.
    """
    candidate = candidate.strip()
    if not candidate:
        return None
    at = transcript.find(candidate)
    if at >= 0:
        return Span(at, at + len(candidate), candidate, "exact")
    norm_text, index = _normalized_with_map(transcript)
    norm_candidate, _ = _normalized_with_map(candidate)
    norm_candidate = norm_candidate.strip(" .,;:!?\"'")
    at = norm_text.find(norm_candidate) if norm_candidate else -1
    if at >= 0:
        return _span_from(transcript, index, at, at + len(norm_candidate), "normalized")
    words = norm_candidate.split()
    for size in range(len(words) - 1, min_words - 1, -1):
        for first in range(len(words) - size + 1):
            phrase = " ".join(words[first : first + size]).strip(" .,;:!?\"'")
            if len(phrase.split()) < min_words:
                continue
            at = norm_text.find(phrase)
            if at >= 0:
                return _span_from(transcript, index, at, at + len(phrase), "sub-phrase")
    return None


def _span_from(transcript: str, index: list[int], start: int, end: int, method: str) -> Span:
    s, e = index[start], index[end - 1] + 1
    return Span(s, e, transcript[s:e], method)
