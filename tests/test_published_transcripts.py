"""Published (Podcasting 2.0) transcripts: format detection, link choice and the five parsers.

Expectations are read off the example files and the inline inputs by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from podcast_core.models import Segment, TranscriptLink
from podcast_core.published import (
    FORMAT_PREFERENCE,
    TranscriptFormatError,
    choose_transcript,
    parse_transcript,
    transcript_format,
)

EXAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "transcripts"


def _example(name: str) -> bytes:
    path = EXAMPLES / name
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path.read_bytes()


# --- real example files ---------------------------------------------------------------------


def test_example_vtt_voices_timing_and_entities():
    t = parse_transcript(_example("example.vtt"), "vtt", source_url="https://x.test/ep.vtt")
    assert t.source == "published:vtt"
    assert t.source_url == "https://x.test/ep.vtt"
    assert t.language is None and t.model is None
    assert len(t.segments) == 7
    assert t.segments[0] == Segment(
        0.0, 2.76, "In today's episode, you'll learn whether or not you", "Sarah"
    )
    assert t.segments[2].start == 6.09 and t.segments[2].end == 11.61
    assert "Welcome to Podcasting Q&A, where you learn" in t.segments[2].text
    assert "&amp;" not in t.text
    assert t.segments[4].speaker == "Sarah"
    assert t.segments[4].text == "podcast. This week's question comes from Gillian."
    assert t.segments[5] == Segment(
        19.08, 21.45, "Hi Buzzsprout, Gillian here from breaking through", "Gillian"
    )
    assert [s.speaker for s in t.segments] == ["Sarah"] * 5 + ["Gillian"] * 2
    assert t.segments[-1].end == 25.35
    assert t.text.startswith("In today's episode, you'll learn whether or not you should have")
    assert "\r" not in t.text and "<v" not in t.text


def test_example_srt_speaker_carries_over():
    t = parse_transcript(_example("example.srt"), "srt")
    assert t.source == "published:srt"
    assert len(t.segments) == 222
    first, second, third = t.segments[:3]
    assert first == Segment(
        0.179, 2.399, "When you first get started in podcasting, it's", "Travis"
    )
    assert second.speaker == "Travis"
    assert second.text == "almost guaranteed that you're going to make a handful of rookie"
    assert (third.start, third.end) == (4.801, 7.98)
    assert third.speaker == "Travis"
    # Cue 17 is still Travis; cue 18 starts with "Sarah:" and cue 19 continues her.
    assert t.segments[16] == Segment(48.99, 50.34, "your goals, that much faster", "Travis")
    assert t.segments[17] == Segment(
        53.03, 57.77, "Creating good audio is really key to keeping your", "Sarah"
    )
    assert t.segments[18].speaker == "Sarah"
    assert t.segments[-1] == Segment(
        752.671, 754.769, "best thing to do is to batch your episodes.", "Travis"
    )
    assert not any(s.text.startswith(("Travis:", "Sarah:", "Gilon:")) for s in t.segments)
    assert {s.speaker for s in t.segments} == {"Travis", "Sarah", "Gilon"}


def test_example_json_words_merged_into_sentences():
    t = parse_transcript(_example("example.json"), "json")
    assert t.source == "published:json"
    assert t.segments == [
        Segment(0.5, 2.5, "I am your father.", "Darth Vader"),
        Segment(2.75, 3.0, "Nooooo", "Luke"),
    ]
    assert t.text == "I am your father. Nooooo"


def test_example_html_cite_time_p():
    t = parse_transcript(_example("example.html"), "html")
    assert t.source == "published:html"
    assert [s.speaker for s in t.segments] == [
        "Travis",
        "Sarah",
        "Travis",
        "Gilon",
        "Travis",
        "Gilon",
        "Travis",
        "Sarah",
        "Gilon",
        "Travis",
    ]
    first, sarah = t.segments[:2]
    assert (first.start, first.end) == (0.0, 53.0)
    assert first.text.startswith("When you first get started in podcasting, it's almost")
    assert (sarah.start, sarah.end) == (53.0, 102.0)  # 0:53 to the next <time>1:42
    assert sarah.text.startswith("Creating good audio is really key")
    assert (t.segments[3].start, t.segments[3].end) == (219.0, 263.0)  # 3:39 to 4:23
    last = t.segments[-1]
    assert (last.start, last.end) == (691.0, 691.0)  # 11:31, no following time
    assert last.text.endswith("the next best thing to do is to batch your episodes.")
    assert "&#39;" not in t.text


# --- WebVTT ---------------------------------------------------------------------------------


def test_vtt_without_header_is_an_error():
    content = "00:00:01.000 --> 00:00:02.000\nHello\n"
    with pytest.raises(TranscriptFormatError, match=r"https://x\.test/a\.vtt.*WEBVTT"):
        parse_transcript(content, "vtt", source_url="https://x.test/a.vtt")


def test_vtt_blocks_ids_settings_and_tags():
    content = (
        "\ufeffWEBVTT - an episode\n"
        "Kind: captions\n"
        "\n"
        "STYLE\n"
        "::cue { color: red }\n"
        "\n"
        "NOTE this block is a comment\n"
        "00:00:09.000 is mentioned here but it is not a cue\n"
        "\n"
        "NOTE\n"
        "00:00:30.000 --> 00:00:31.000\n"
        "a commented-out cue (sloppy: NOTE must not hold an arrow)\n"
        "\n"
        "intro-1\n"
        "00:01.500 --> 00:04.250 align:start position:10%\n"
        "<v.loud Ann Lee>Hello <i>and</i>\n"
        "welcome</v>\n"
        "\n"
        "00:01:02.003 --> 01:00:00.000 line:0\n"
        "<c.yellow>Tom</c> <00:01:03.000>&amp; <b>Jerry</b> &lt;3\n"
        "\n"
        "3\n"
        "00:01:05.000 --> 00:01:06.000\n"
        "<v Bob>Hi</v> <v Bob>there</v> <v Ann Lee>Hello again\n"
    )
    t = parse_transcript(content, "vtt")
    assert t.segments == [
        Segment(1.5, 4.25, "Hello and welcome", "Ann Lee"),
        Segment(62.003, 3600.0, "Tom & Jerry <3", None),
        Segment(65.0, 66.0, "Hi there", "Bob"),
        Segment(65.0, 66.0, "Hello again", "Ann Lee"),
    ]
    assert t.text == "Hello and welcome Tom & Jerry <3 Hi there Hello again"


def test_vtt_bad_timestamp_names_line():
    content = (
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nfine\n\n00:00:0x.000 --> 00:00:03.000\nbad\n"
    )
    with pytest.raises(TranscriptFormatError, match=r"ep\.vtt: line 6") as info:
        parse_transcript(content, "vtt", source_url="ep.vtt")
    assert info.value.line == 6


def test_vtt_seconds_out_of_range_is_an_error():
    content = "WEBVTT\n\n00:00:61.000 --> 00:01:02.000\ntext\n"
    with pytest.raises(TranscriptFormatError, match="line 3"):
        parse_transcript(content, "vtt")


def test_vtt_header_only_has_no_text():
    with pytest.raises(TranscriptFormatError, match="contains no transcript text"):
        parse_transcript("WEBVTT\n\nNOTE nothing here\n", "vtt", source_url="empty.vtt")


# --- SubRip ---------------------------------------------------------------------------------


def test_srt_crlf_tags_and_speakers():
    content = (
        "1\r\n"
        "00:00:01,000 --> 00:00:02,500\r\n"
        "<i>Mary Jane Watson:</i> Hi\r\n"
        "there\r\n"
        "\r\n"
        "2\r\n"
        "00:00:02.500 --> 00:00:04,000\r\n"
        '<font color="#ffff00">still</font> me\r\n'
        "\r\n"
        "3\r\n"
        "00:00:04,000 --> 00:00:05,000\r\n"
        "Speaker 2: the plan: go\r\n"
        "\r\n"
        "4\r\n"
        "00:00:05,000 --> 00:00:06,000\r\n"
        "the answer is: no\r\n"
    )
    t = parse_transcript(content.encode("utf-8"), "srt")
    assert t.segments == [
        Segment(1.0, 2.5, "Hi there", "Mary Jane Watson"),
        Segment(2.5, 4.0, "still me", "Mary Jane Watson"),
        Segment(4.0, 5.0, "the plan: go", "Speaker 2"),
        Segment(5.0, 6.0, "the answer is: no", "Speaker 2"),
    ]


def test_srt_without_speakers_and_missing_numbers():
    content = (
        "00:00:00,000 --> 00:00:01,000\nOne\n\n\n\n7\n00:00:01,000 --> 00:00:02,000\nTwo\n\n"
        "8\n00:00:03,000 --> 00:00:02,000\nThree\n\nwraps after a stray blank line\n"
    )
    t = parse_transcript(content, "srt")
    assert t.segments == [
        Segment(0.0, 1.0, "One"),
        Segment(1.0, 2.0, "Two"),
        Segment(3.0, 3.0, "Three wraps after a stray blank line"),  # end before start: clamped
    ]


def test_srt_bad_timestamp_names_line():
    content = "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:02,000 -> 00:00:03,000\nbad\n"
    with pytest.raises(TranscriptFormatError, match=r"line 6: malformed cue timing"):
        parse_transcript(content, "srt")
    content = "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:02;000 --> 00:00:03,000\nbad\n"
    with pytest.raises(TranscriptFormatError, match=r"ep\.srt: line 6: malformed") as info:
        parse_transcript(content, "srt", source_url="ep.srt")
    assert info.value.source == "ep.srt"


# --- Podcast Index JSON ---------------------------------------------------------------------


def test_json_missing_end_time_uses_next_start():
    content = (
        '{"version": "1.0.0", "segments": ['
        '{"speaker": "A", "startTime": 1.0, "body": "First phrase here"},'
        '{"speaker": "B", "startTime": 4.0, "endTime": 5.0, "body": "Second phrase now"},'
        '{"startTime": 6.5, "body": "Third one"}]}'
    )
    t = parse_transcript(content, "json")
    # Multi-word segments are not word-level, so they are kept as published.
    assert t.segments == [
        Segment(1.0, 4.0, "First phrase here", "A"),
        Segment(4.0, 5.0, "Second phrase now", "B"),
        Segment(6.5, 6.5, "Third one", None),
    ]


def test_json_word_merge_breaks_on_gap_speaker_and_length():
    words = [
        ("A", 0.0, 0.5, "Hello"),
        ("A", 0.6, 1.0, "there"),
        ("A", 3.5, 4.0, "after"),  # 2.5 s gap
        ("A", 4.1, 4.4, "pause"),
        ("B", 4.5, 4.9, "other"),
        ("B", 5.0, 5.5, "voice"),
        ("B", 5.6, 5.8, "?"),
        ("B", 6.0, 6.5, "new"),
    ]
    # A long run: 40 words one second apart, one speaker, no punctuation.
    words += [("C", 10.0 + i, 10.5 + i, f"w{i}") for i in range(40)]
    segments = ",".join(
        f'{{"speaker": "{s}", "startTime": {a}, "endTime": {b}, "body": "{w}"}}'
        for s, a, b, w in words
    )
    t = parse_transcript(f'{{"segments": [{segments}]}}', "json")
    assert t.segments[:5] == [
        Segment(0.0, 1.0, "Hello there", "A"),
        Segment(3.5, 4.4, "after pause", "A"),
        Segment(4.5, 5.8, "other voice?", "B"),
        Segment(6.0, 6.5, "new", "B"),
        # 10.0 .. 39.5 is 29.5 s (30 words); the 31st word would end at 40.5.
        Segment(10.0, 39.5, " ".join(f"w{i}" for i in range(30)), "C"),
    ]
    assert t.segments[5] == Segment(40.0, 49.5, " ".join(f"w{i}" for i in range(30, 40)), "C")
    assert len(t.segments) == 6


def test_json_errors_name_the_cause():
    with pytest.raises(TranscriptFormatError, match=r"t\.json: line 1: invalid JSON"):
        parse_transcript('{"segments": [', "json", source_url="t.json")
    with pytest.raises(TranscriptFormatError, match="no 'segments' list"):
        parse_transcript('{"version": "1.0.0"}', "json")
    with pytest.raises(TranscriptFormatError, match="segment 0: malformed startTime"):
        parse_transcript('{"segments": [{"startTime": "soon", "body": "x"}]}', "json")
    with pytest.raises(TranscriptFormatError, match="contains no transcript text"):
        parse_transcript('{"segments": []}', "json")


# --- HTML -----------------------------------------------------------------------------------


def test_html_hours_entities_and_speaker_carry():
    content = (
        "<html><head><title>Not text</title></head><body>\n"
        "<cite>Dr. Who:</cite><time>1:00:05</time><p>Rock &amp; roll<br>again</p>\n"
        "<time>1:00:01</time><p>Earlier <b>time</b></p>\n"
        "<cite>Amy</cite><time>1:00:10</time><p>Last &#8212; one</p>\n"
        "</body></html>"
    )
    t = parse_transcript(content, "html")
    assert t.segments == [
        Segment(3605.0, 3605.0, "Rock & roll again", "Dr. Who"),  # next start is earlier
        Segment(3601.0, 3610.0, "Earlier time", "Dr. Who"),
        Segment(3610.0, 3610.0, "Last \u2014 one", "Amy"),
    ]


def test_html_without_times_gives_zero_times():
    t = parse_transcript("<p>One</p>\n<p>Two  words</p>", "html")
    assert t.segments == [Segment(0.0, 0.0, "One"), Segment(0.0, 0.0, "Two words")]


def test_html_malformed_time_names_line():
    content = "<cite>A:</cite>\n<time>0:10</time>\n<p>x</p>\n<time>ten</time>\n<p>y</p>"
    with pytest.raises(TranscriptFormatError, match=r"t\.html: line 4: malformed time 'ten'"):
        parse_transcript(content, "html", source_url="t.html")


# --- plain text and decoding ----------------------------------------------------------------


def test_plain_text_paragraphs_and_speakers():
    content = (
        "Intro paragraph\nspans two lines.\n\n"
        "Alice: Hi Bob.\nBob: Hello\nAlice.\n\n"
        "Still Bob here.\n\n\n"
        "note: lowercase is not a speaker\n"
    )
    t = parse_transcript(content, "text")
    assert t.source == "published:text"
    assert t.segments == [
        Segment(0.0, 0.0, "Intro paragraph spans two lines."),
        Segment(0.0, 0.0, "Hi Bob.", "Alice"),
        Segment(0.0, 0.0, "Hello Alice.", "Bob"),
        Segment(0.0, 0.0, "Still Bob here.", "Bob"),
        Segment(0.0, 0.0, "note: lowercase is not a speaker", "Bob"),
    ]
    assert t.text == (
        "Intro paragraph spans two lines. Hi Bob. Hello Alice. Still Bob here. "
        "note: lowercase is not a speaker"
    )


def test_plain_text_keeps_entities_literal():
    assert parse_transcript("Q&amp;A", "text").text == "Q&amp;A"


def test_bytes_decoding_bom_and_cp1252():
    assert parse_transcript("\ufeffCafé".encode(), "text").text == "Café"
    assert parse_transcript(b"caf\xe9 \x93quoted\x94", "text").text == "café \u201cquoted\u201d"
    assert parse_transcript(b"\x81\x8d", "text").text == "\x81\x8d"  # undefined in cp1252
    vtt = "WEBVTT\n\n00:00.000 --> 00:01.000\nhé\n".encode("utf-16")
    assert parse_transcript(vtt, "vtt").text == "hé"


def test_empty_and_unsupported_inputs():
    with pytest.raises(TranscriptFormatError, match=r"u\.txt: contains no transcript text"):
        parse_transcript(" \n\n \n", "text", source_url="u.txt")
    with pytest.raises(TranscriptFormatError, match="unsupported transcript format 'pdf'"):
        parse_transcript("x", "pdf")
    assert issubclass(TranscriptFormatError, ValueError)


def test_fmt_may_be_a_mime_type():
    t = parse_transcript("WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n", "Text/VTT; charset=utf-8")
    assert t.source == "published:vtt"
    assert t.segments == [Segment(1.0, 2.0, "hi")]


# --- transcript_format ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mime", "expected"),
    [
        ("text/vtt", "vtt"),
        ("application/x-subrip", "srt"),
        ("application/srt", "srt"),
        ("text/srt", "srt"),
        ("application/json", "json"),
        ("text/html", "html"),
        ("text/plain", "text"),
        ("TEXT/VTT; charset=utf-8", "vtt"),
        (" Application/JSON ;charset=UTF-8", "json"),
        ("application/pdf", None),
        (None, None),
        ("", None),
    ],
)
def test_transcript_format_by_mime(mime, expected):
    assert transcript_format(mime) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h.test/ep/transcript.vtt", "vtt"),
        ("https://h.test/ep/transcript.SRT?token=1", "srt"),
        ("https://h.test/ep/transcript.json#x", "json"),
        ("https://h.test/ep/transcript.html", "html"),
        ("https://h.test/ep/transcript.htm", "html"),
        ("https://h.test/ep/transcript.txt", "text"),
        ("https://h.test/ep/transcript.pdf", None),
        ("https://h.test/ep/transcript", None),
        ("https://h.vtt/ep/", None),
    ],
)
def test_transcript_format_by_extension(url, expected):
    assert transcript_format(None, url) == expected
    assert transcript_format("application/octet-stream", url) == expected


def test_transcript_format_mime_wins_over_extension():
    assert transcript_format("text/vtt", "https://h.test/t.txt") == "vtt"


def test_format_preference_covers_every_format():
    assert FORMAT_PREFERENCE == ("json", "vtt", "srt", "html", "text")


# --- choose_transcript ----------------------------------------------------------------------


def _link(url: str, type_: str, language: str | None = None) -> TranscriptLink:
    return TranscriptLink(url=url, type=type_, language=language)


def test_choose_prefers_format_order():
    links = [
        _link("a.txt", "text/plain"),
        _link("a.html", "text/html"),
        _link("a.srt", "application/x-subrip"),
        _link("a.vtt", "text/vtt"),
        _link("a.pdf", "application/pdf"),
    ]
    assert choose_transcript(links).url == "a.vtt"
    assert choose_transcript([*links, _link("a.json", "application/json")]).url == "a.json"
    assert choose_transcript(links[:3]).url == "a.srt"


def test_choose_ties_keep_document_order():
    links = [_link("first.srt", "text/srt"), _link("second.srt", "application/srt")]
    assert choose_transcript(links).url == "first.srt"


def test_choose_matches_language_primary_subtag():
    links = [
        _link("de.json", "application/json", "de"),
        _link("en.html", "text/html", "en"),
        _link("en.srt", "application/srt", "EN-gb"),
    ]
    assert choose_transcript(links, "en-US").url == "en.srt"
    assert choose_transcript(links, "de-AT").url == "de.json"
    assert choose_transcript(links).url == "de.json"
    # No link in the wanted language: the best other one rather than nothing.
    assert choose_transcript(links, "fr").url == "de.json"


def test_choose_link_without_language_counts_as_matching():
    links = [
        _link("de.json", "application/json", "de"),
        _link("any.vtt", "text/vtt"),
        _link("en.srt", "application/srt", "en"),
    ]
    assert choose_transcript(links, "en").url == "any.vtt"


def test_choose_none_when_nothing_supported():
    assert choose_transcript([]) is None
    assert choose_transcript([_link("a.pdf", "application/pdf")]) is None
    assert choose_transcript([_link("https://h.test/t.vtt", "application/octet-stream")]).url == (
        "https://h.test/t.vtt"
    )
