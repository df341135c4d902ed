"""Sentences with offsets, chunking, the time map and span resolution."""

import itertools

import pytest

from podcast_core.text import (
    TimeMap,
    chunk_sentences,
    count_tokens,
    resolve_span,
    split_sentences,
)


def test_sentences_keep_exact_offsets_and_respect_abbreviations():
    text = "Dr. Smith arrived at 3.5 p.m. today.  Was it late? Yes!\nThe U.S. team won."
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == [
        "Dr. Smith arrived at 3.5 p.m. today.",
        "Was it late?",
        "Yes!",
        "The U.S. team won.",
    ]
    assert all(text[s.start : s.end] == s.text for s in sentences)


def test_unpunctuated_asr_text_is_still_split():
    text = " ".join(f"word{i}" for i in range(130))
    sentences = split_sentences(text)
    assert len(sentences) == 4
    assert all(len(s.text.split()) <= 40 for s in sentences)
    assert " ".join(s.text for s in sentences) == text


def test_chunks_are_whole_sentences_near_target_with_overlap():
    # 40 sentences of exactly 10 tokens each (9 words and a period).
    text = " ".join(f"s{i} aa bb cc dd ee ff gg hh." for i in range(40))
    sentences = split_sentences(text)
    assert all(count_tokens(s.text) == 10 for s in sentences)
    chunks = chunk_sentences(text, sentences, target_tokens=100, overlap_tokens=20)
    assert [c.tokens for c in chunks[:-1]] == [100] * (len(chunks) - 1)
    for a, b in itertools.pairwise(chunks):
        assert text[b.start : a.end].count(".") == 2  # two sentences (20 tokens) of overlap
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    assert all(text[c.start : c.end] == c.text for c in chunks)


@pytest.mark.parametrize(
    ("candidate", "expected", "method"),
    [
        ("We shipped it on Tuesday.", "We shipped it on Tuesday.", "exact"),
        ("we  shipped it\non tuesday", "We shipped it on Tuesday", "normalized"),
        ("It's the team's best release", "It\u2019s the team\u2019s best release", "normalized"),
        (
            "Honestly, it's the team's best release ever made by anyone",
            "It\u2019s the team\u2019s best release",
            "sub-phrase",
        ),
    ],
)
def test_resolve_span(candidate, expected, method):
    transcript = "So. We shipped it on Tuesday. It\u2019s the team\u2019s best release, I think."
    span = resolve_span(candidate, transcript)
    assert span is not None and span.method == method
    assert span.text == expected == transcript[span.start : span.end]


def test_resolve_span_needs_three_words_in_a_row():
    assert resolve_span("shipped release Tuesday", "We shipped it. A release on Tuesday.") is None
    assert resolve_span("", "anything") is None


def test_time_map_uses_word_timings_and_interpolates_without_them():
    segments = [
        {
            "start": 0.0,
            "end": 4.0,
            "text": "Hello there world.",
            "speaker": "A",
            "words": [
                {"start": 0.0, "end": 0.5, "word": " Hello"},
                {"start": 1.0, "end": 1.5, "word": " there"},
                {"start": 3.0, "end": 4.0, "word": " world."},
            ],
        },
        {"start": 10.0, "end": 20.0, "text": "0123456789", "speaker": "B"},
    ]
    text = "Hello there world. 0123456789"
    tm = TimeMap(text, segments)
    assert tm.time_at(text.index("there")) == 1.0
    assert tm.span_times(text.index("there"), text.index("world") + 6) == (1.0, 4.0)
    assert tm.time_at(text.index("5")) == pytest.approx(15.0)
    assert tm.speaker_at(text.index("0")) == "B" and tm.segment_index_at(0) == 0
