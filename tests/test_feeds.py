from __future__ import annotations

from pathlib import Path

import pytest

from podcast_core.feeds import FeedParseError, parse_date, parse_duration, parse_feed
from podcast_core.keys import InvalidKeyError, episode_identity, episode_key
from podcast_core.models import Person, TranscriptLink

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EXAMPLE2 = DATA / "podcast-namespace-example2.xml"

PODCAST_NS = "https://podcastindex.org/namespace/1.0"
LEGACY_PODCAST_NS = "https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md"


def rss(items: str, channel: str = "", podcast_ns: str = PODCAST_NS) -> str:
    """A minimal RSS 2.0 document around the given channel elements and items."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"
     xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"
     xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:podcast="{podcast_ns}">
  <channel>
    <title>Test Show</title>
    {channel}
    {items}
  </channel>
</rss>"""


def by_title(parsed):
    return {e.title: e for e in parsed.episodes}


# --- the real Podcasting 2.0 example feed --------------------------------------------------


@pytest.fixture(scope="module")
def example2():
    if not EXAMPLE2.exists():
        pytest.skip(f"{EXAMPLE2} not available")
    return parse_feed(EXAMPLE2.read_bytes(), feed_slug="pc20", base_url="https://example.com/rss")


def test_example2_channel(example2):
    feed = example2.feed
    assert feed.title == "Podcasting 2.0 Namespace Example"
    # Not https://example.com/podcast/live, the link of the <podcast:liveItem>.
    assert feed.link == "https://example.com/podcast"
    assert feed.language == "en-US"
    assert feed.image == "https://example.com/images/pci_avatar-massive.jpg"
    assert feed.description == (
        'This is a fake show that exists only as an example of the "podcast" namespace tag usage.'
    )


def test_example2_items_newest_first_without_live_item(example2):
    assert [e.title for e in example2.episodes] == [
        "Episode 3 - The Future",
        "Episode 2 - The Present",
        "Episode 1 - The Past",
    ]
    assert [e.published for e in example2.episodes] == [
        "2020-10-09T04:30:38Z",
        "2020-10-08T04:30:38Z",
        "2020-10-07T04:30:38Z",
    ]


def test_example2_episode3(example2):
    ep = example2.episodes[0]
    assert ep.guid == "https://example.com/ep0003"
    assert ep.key == episode_key("pc20", "guid:https://example.com/ep0003")
    assert ep.audio_url == "https://example.com/file-03.mp3"
    assert ep.audio_type == "audio/mpeg"
    assert ep.audio_bytes == 43200000
    assert ep.transcripts == (
        TranscriptLink(url="https://example.com/ep3/transcript.txt", type="text/plain"),
        TranscriptLink(
            url="https://example.com/episode1/transcript.vtt",
            type="text/vtt",
            language="es",
            rel="captions",
        ),
    )
    assert ep.chapters_url == "https://example.com/ep3_chapters.json"
    assert ep.persons == (
        Person("Adam Curry", "host"),
        Person("Dave Jones", "guest"),
        Person("Becky Smith", "cover art designer"),
    )
    assert ep.season == 1
    assert ep.number == 3
    assert ep.episode_type is None
    assert ep.duration_seconds is None
    assert ep.description == (
        "A look into the future of podcasting and how we get to Podcasting 2.0!"
    )


def test_example2_other_episodes(example2):
    ep2, ep1 = example2.episodes[1:]
    assert ep2.transcripts == (
        TranscriptLink(url="https://example.com/ep2/transcript.txt", type="text/plain"),
    )
    assert ep2.audio_bytes == 43113000
    assert ep2.number == 2
    assert Person("Marcus Brown", "cover art designer") in ep2.persons
    assert ep1.audio_url == "https://example.com/file-01.mp3"
    assert ep1.audio_bytes == 43111403
    assert ep1.chapters_url == "https://example.com/ep1_chapters.json"
    assert (ep1.season, ep1.number) == (1, 1)


def test_keys_are_reproducible_from_episode_fields(example2):
    for ep in example2.episodes:
        identity = episode_identity(ep.guid, ep.audio_url, ep.title, ep.published)
        assert ep.key == episode_key("pc20", identity)


def test_example2_as_str_gives_same_result(example2):
    again = parse_feed(
        EXAMPLE2.read_text(encoding="utf-8"), feed_slug="pc20", base_url="https://example.com/rss"
    )
    assert again == example2


def test_example2_broken_xml_falls_back_to_feedparser(example2):
    # A stray unclosed tag makes the document unparseable for ElementTree.
    broken = EXAMPLE2.read_bytes().replace(b"</item>", b"<oops></item>", 1)
    parsed = parse_feed(broken, feed_slug="pc20", base_url="https://example.com/rss")
    assert [e.key for e in parsed.episodes] == [e.key for e in example2.episodes]
    assert [e.audio_url for e in parsed.episodes] == [e.audio_url for e in example2.episodes]
    assert parsed.feed.link == "https://example.com/podcast"
    assert parsed.episodes[0].chapters_url == "https://example.com/ep3_chapters.json"


# --- iTunes and Podcasting 2.0 tags in small inline feeds ----------------------------------


def test_itunes_tags():
    xml = rss(
        channel="""<itunes:image href="https://cdn.example.com/show.jpg"/>
        <itunes:summary>Show summary</itunes:summary>
        <description>Show description</description>
        <language>de</language>
        <link>https://example.com/</link>""",
        items="""<item>
          <title>Trailer</title>
          <guid isPermaLink="false">t-1</guid>
          <itunes:duration>1:02:03</itunes:duration>
          <itunes:season>2</itunes:season>
          <itunes:episode>7</itunes:episode>
          <itunes:episodeType>Trailer</itunes:episodeType>
          <itunes:summary>Summary wins</itunes:summary>
          <description>Description loses</description>
          <enclosure url="https://cdn.example.com/t.m4a" type="audio/x-m4a" length="1234"/>
        </item>""",
    )
    parsed = parse_feed(xml, feed_slug="show")
    assert parsed.feed.image == "https://cdn.example.com/show.jpg"
    assert parsed.feed.description == "Show summary"
    assert parsed.feed.language == "de"
    assert parsed.feed.link == "https://example.com/"
    (ep,) = parsed.episodes
    assert ep.duration_seconds == 3723.0
    assert (ep.season, ep.number) == (2, 7)
    assert ep.episode_type == "trailer"
    assert ep.description == "Summary wins"
    assert (ep.audio_url, ep.audio_type, ep.audio_bytes) == (
        "https://cdn.example.com/t.m4a",
        "audio/x-m4a",
        1234,
    )
    assert ep.key == episode_key("show", "guid:t-1")


def test_channel_image_falls_back_to_rss_image():
    xml = rss(
        channel="<image><url>https://example.com/a.png</url><title>x</title></image>", items=""
    )
    assert parse_feed(xml, feed_slug="show").feed.image == "https://example.com/a.png"


def test_podcast_tags_win_over_itunes_and_bad_numbers_are_none():
    xml = rss(
        """<item><title>A</title><guid>a</guid>
             <podcast:season>4</podcast:season><itunes:season>9</itunes:season>
             <podcast:episode>3.5</podcast:episode>
             <itunes:episodeType>special</itunes:episodeType>
           </item>"""
    )
    (ep,) = parse_feed(xml, feed_slug="show").episodes
    assert ep.season == 4
    assert ep.number is None
    assert ep.episode_type is None


def test_persons_dedup_roles_and_channel_inheritance():
    xml = rss(
        channel="""<podcast:person>Host Person</podcast:person>
                   <podcast:person role="Producer">Pro Ducer</podcast:person>""",
        items="""<item><title>Own</title><guid>own</guid>
                   <podcast:person role="Guest">Gia Guest</podcast:person>
                   <podcast:person role="guest">Gia Guest</podcast:person>
                   <podcast:person>Gia Guest</podcast:person>
                 </item>
                 <item><title>Inherits</title><guid>inh</guid></item>""",
    )
    eps = by_title(parse_feed(xml, feed_slug="show"))
    assert eps["Own"].persons == (Person("Gia Guest", "guest"), Person("Gia Guest", "host"))
    assert eps["Inherits"].persons == (
        Person("Host Person", "host"),
        Person("Pro Ducer", "producer"),
    )


def test_legacy_podcast_namespace_uri():
    xml = rss(
        """<item><title>A</title><guid>a</guid>
             <podcast:transcript url="https://example.com/a.srt" type="application/srt"/>
             <podcast:chapters url="https://example.com/a.json" type="application/json+chapters"/>
           </item>""",
        podcast_ns=LEGACY_PODCAST_NS,
    )
    (ep,) = parse_feed(xml, feed_slug="show").episodes
    assert ep.transcripts == (TranscriptLink("https://example.com/a.srt", "application/srt"),)
    assert ep.chapters_url == "https://example.com/a.json"


def test_unescaped_ampersand_still_gives_episodes_and_transcripts():
    xml = rss(
        """<item><title>Q & A</title><guid>qa</guid>
             <enclosure url="https://example.com/qa.mp3?a=1&b=2" type="audio/mpeg"/>
             <podcast:transcript url="https://example.com/qa.vtt" type="text/vtt"/>
           </item>"""
    )
    (ep,) = parse_feed(xml, feed_slug="show").episodes
    assert ep.title == "Q & A"
    assert ep.audio_url == "https://example.com/qa.mp3?a=1&b=2"
    assert ep.transcripts == (TranscriptLink("https://example.com/qa.vtt", "text/vtt"),)


def test_atom_feed_goes_through_feedparser():
    atom = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Atom Show</title>
  <id>urn:show</id>
  <updated>2021-03-04T05:06:07Z</updated>
  <entry>
    <title>Atom Episode</title>
    <id>urn:ep:1</id>
    <updated>2021-03-04T05:06:07+01:00</updated>
    <link rel="enclosure" href="https://example.com/atom.mp3" type="audio/mpeg" length="99"/>
    <summary>Atom summary</summary>
  </entry>
</feed>"""
    parsed = parse_feed(atom, feed_slug="atom")
    assert parsed.feed.title == "Atom Show"
    (ep,) = parsed.episodes
    assert ep.key == episode_key("atom", "guid:urn:ep:1")
    assert ep.published == "2021-03-04T04:06:07Z"
    assert (ep.audio_url, ep.audio_bytes) == ("https://example.com/atom.mp3", 99)
    assert ep.description == "Atom summary"


def test_str_input_with_non_utf8_declaration():
    xml = """<?xml version="1.0" encoding="ISO-8859-1"?>
<rss version="2.0"><channel><title>Caf\u00e9 Talk</title>
<item><title>\u00c9pisode un</title><guid>e1</guid></item></channel></rss>"""
    parsed = parse_feed(xml, feed_slug="cafe")
    assert parsed.feed.title == "Caf\u00e9 Talk"
    assert parsed.episodes[0].title == "\u00c9pisode un"


def test_latin1_bytes():
    xml = (
        b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<rss version="2.0"><channel>'
        b"<title>Caf\xe9</title><item><title>x</title><guid>x</guid></item></channel></rss>"
    )
    assert parse_feed(xml, feed_slug="cafe").feed.title == "Caf\u00e9"


# --- identity and keys ---------------------------------------------------------------------

NO_GUID = rss(
    """<item><title>One</title>
         <enclosure url="https://cdn.example.com/one.mp3" type="audio/mpeg"/></item>
       <item><title>Two</title>
         <enclosure url="https://cdn.example.com/two.mp3" type="audio/mpeg"/></item>
       <item><title>Only a title</title><pubDate>Tue, 05 Jan 2021 10:00:00 GMT</pubDate></item>"""
)


def test_missing_guid_falls_back_to_enclosure_then_title():
    eps = by_title(parse_feed(NO_GUID, feed_slug="show"))
    assert eps["One"].guid is None
    assert eps["One"].key == episode_key("show", "enclosure:https://cdn.example.com/one.mp3")
    assert eps["Two"].key == episode_key("show", "enclosure:https://cdn.example.com/two.mp3")
    assert eps["One"].key != eps["Two"].key
    assert eps["Only a title"].key == episode_key("show", "title:Only a title|2021-01-05T10:00:00Z")


def test_same_feed_parsed_twice_gives_same_keys():
    first = parse_feed(NO_GUID, feed_slug="show")
    second = parse_feed(NO_GUID.encode(), feed_slug="show")
    assert [e.key for e in first.episodes] == [e.key for e in second.episodes]
    assert len({e.key for e in first.episodes}) == 3


def test_guid_is_used_verbatim_whatever_the_base_url():
    # feedparser would turn a permalink guid "ep-1" into "https://a.example/ep-1".
    xml = rss("<item><title>A</title><guid>ep-1</guid></item>")
    a = parse_feed(xml, feed_slug="show", base_url="https://a.example/feed")
    b = parse_feed(xml, feed_slug="show", base_url="https://b.example/other/feed")
    assert a.episodes[0].guid == b.episodes[0].guid == "ep-1"
    assert a.episodes[0].key == b.episodes[0].key == episode_key("show", "guid:ep-1")


def test_guid_is_used_verbatim_in_broken_xml_too():
    # The unclosed <b> sends this feed through the feedparser fallback.
    xml = rss("<item><title>A <b>bold</title><guid>ep-1</guid></item>")
    a = parse_feed(xml, feed_slug="show", base_url="https://a.example/feed")
    b = parse_feed(xml, feed_slug="show", base_url="https://b.example/other/feed")
    assert a.episodes[0].guid == b.episodes[0].guid == "ep-1"
    assert a.episodes[0].key == b.episodes[0].key == episode_key("show", "guid:ep-1")


def test_duplicate_guids_keep_first():
    xml = rss(
        """<item><title>First</title><guid>same</guid>
             <pubDate>Mon, 01 Feb 2021 00:00:00 GMT</pubDate></item>
           <item><title>Second</title><guid>same</guid>
             <pubDate>Wed, 03 Feb 2021 00:00:00 GMT</pubDate></item>
           <item><title>Other</title><guid>other</guid></item>"""
    )
    parsed = parse_feed(xml, feed_slug="show")
    assert [e.title for e in parsed.episodes] == ["First", "Other"]
    assert parsed.episodes[0].key == episode_key("show", "guid:same")


def test_item_without_any_identity_is_skipped():
    xml = rss("<item><description>nothing to go by</description></item><item><guid>g</guid></item>")
    parsed = parse_feed(xml, feed_slug="show")
    assert [e.guid for e in parsed.episodes] == ["g"]


def test_invalid_feed_slug():
    with pytest.raises(InvalidKeyError):
        parse_feed(rss(""), feed_slug="Not A Slug")


# --- enclosures and URLs -------------------------------------------------------------------


def test_missing_enclosure_keeps_item():
    xml = rss("<item><title>No audio</title><guid>na</guid></item>")
    (ep,) = parse_feed(xml, feed_slug="show").episodes
    assert ep.title == "No audio"
    assert (ep.audio_url, ep.audio_type, ep.audio_bytes) == (None, None, None)


def test_first_audio_enclosure_wins_and_bad_lengths_are_none():
    xml = rss(
        """<item><title>Cover first</title><guid>c</guid>
             <enclosure url="https://example.com/cover.jpg" type="image/jpeg" length="10"/>
             <enclosure url="https://example.com/ep.mp3" type="audio/mpeg" length="abc"/>
             <enclosure url="https://example.com/ep.ogg" type="audio/ogg" length="20"/>
           </item>
           <item><title>Only a pdf</title><guid>p</guid>
             <enclosure url="https://example.com/notes.pdf" type="application/pdf" length="0"/>
           </item>
           <item><title>Video</title><guid>v</guid>
             <enclosure url="https://example.com/ep.mp4" type="video/mp4" length="300"/>
           </item>"""
    )
    eps = by_title(parse_feed(xml, feed_slug="show"))
    cover = eps["Cover first"]
    assert (cover.audio_url, cover.audio_type, cover.audio_bytes) == (
        "https://example.com/ep.mp3",
        "audio/mpeg",
        None,
    )
    pdf = eps["Only a pdf"]
    assert (pdf.audio_url, pdf.audio_type, pdf.audio_bytes) == (
        "https://example.com/notes.pdf",
        "application/pdf",
        None,
    )
    assert eps["Video"].audio_bytes == 300


RELATIVE = rss(
    channel="""<link>/</link><itunes:image href="art/cover.jpg"/>""",
    items="""<item><title>Rel</title><guid>rel</guid>
               <enclosure url="media/ep1.mp3" type="audio/mpeg" length="5"/>
               <podcast:transcript url="/transcripts/ep1.vtt" type="text/vtt"/>
               <podcast:chapters url="../chapters/ep1.json" type="application/json"/>
             </item>""",
)


def test_relative_urls_resolved_against_base_url():
    parsed = parse_feed(RELATIVE, feed_slug="show", base_url="https://example.org/shows/feed.xml")
    assert parsed.feed.link == "https://example.org/"
    assert parsed.feed.image == "https://example.org/shows/art/cover.jpg"
    (ep,) = parsed.episodes
    assert ep.audio_url == "https://example.org/shows/media/ep1.mp3"
    assert ep.transcripts[0].url == "https://example.org/transcripts/ep1.vtt"
    assert ep.chapters_url == "https://example.org/chapters/ep1.json"


def test_relative_urls_left_alone_without_base_url():
    parsed = parse_feed(RELATIVE, feed_slug="show")
    assert parsed.feed.image == "art/cover.jpg"
    (ep,) = parsed.episodes
    assert ep.audio_url == "media/ep1.mp3"
    assert ep.transcripts[0].url == "/transcripts/ep1.vtt"
    assert ep.chapters_url == "../chapters/ep1.json"


# --- descriptions --------------------------------------------------------------------------


def test_html_description_is_stripped_to_text():
    xml = rss(
        """<item><title>H</title><guid>h</guid>
             <description><![CDATA[<p>Hello &amp; <b>welcome</b></p><p>to   the<br/>show
               at the Caf&eacute;</p><script>var x = "<b>no</b>";</script>]]></description>
           </item>"""
    )
    (ep,) = parse_feed(xml, feed_slug="show").episodes
    assert ep.description == "Hello & welcome to the show at the Caf\u00e9"


def test_escaped_html_description_and_content_encoded_fallback():
    xml = rss(
        """<item><title>Escaped</title><guid>e</guid>
             <description>&lt;i&gt;Tom &amp;amp; Jerry&lt;/i&gt;</description></item>
           <item><title>Content only</title><guid>c</guid>
             <content:encoded><![CDATA[<ul><li>one</li><li>two</li></ul>]]></content:encoded>
           </item>
           <item><title>Empty</title><guid>x</guid><description>  </description></item>"""
    )
    eps = by_title(parse_feed(xml, feed_slug="show"))
    assert eps["Escaped"].description == "Tom & Jerry"
    assert eps["Content only"].description == "one two"
    assert eps["Empty"].description is None


# --- ordering ------------------------------------------------------------------------------


def test_newest_first_with_undated_after_in_document_order():
    xml = rss(
        """
        <item><title>B</title><guid>b</guid><pubDate>Fri, 01 Jan 2021 12:00:00 GMT</pubDate></item>
        <item><title>X</title><guid>x</guid></item>
        <item><title>A</title><guid>a</guid><pubDate>2022-06-01T08:00:00+02:00</pubDate></item>
        <item><title>Y</title><guid>y</guid><pubDate>not a date</pubDate></item>
        <item><title>C</title><guid>c</guid><pubDate>Fri, 01 Jan 2021 06:00:00 EST</pubDate></item>
        """
    )
    # C is 11:00 UTC, one hour before B.
    parsed = parse_feed(xml, feed_slug="show")
    assert [e.title for e in parsed.episodes] == ["A", "B", "C", "X", "Y"]
    assert [e.published for e in parsed.episodes] == [
        "2022-06-01T06:00:00Z",
        "2021-01-01T12:00:00Z",
        "2021-01-01T11:00:00Z",
        None,
        None,
    ]


# --- dates and durations -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Fri, 09 Oct 2020 04:30:38 GMT", "2020-10-09T04:30:38Z"),
        ("Fri, 09 Oct 2020 04:30:38 UT", "2020-10-09T04:30:38Z"),
        ("Thu, 01 Apr 2021 08:00:00 EST", "2021-04-01T13:00:00Z"),
        ("Thu, 01 Apr 2021 08:00:00 PDT", "2021-04-01T15:00:00Z"),
        ("Wed, 21 Jan 2026 14:38:48 +0100", "2026-01-21T13:38:48Z"),
        ("Wed, 21 Jan 2026 14:38:48 -0600", "2026-01-21T20:38:48Z"),
        ("Wed, 21 Jan 2026 14:38:48 CET", "2026-01-21T13:38:48Z"),
        ("Fri, 09 Oct 20 04:30:38 GMT", "2020-10-09T04:30:38Z"),
        ("09 Oct 2020 04:30:38 GMT", "2020-10-09T04:30:38Z"),
        ("Mon, 09 Oct 2020 04:30:38 GMT", "2020-10-09T04:30:38Z"),  # 9 Oct 2020 was a Friday
        ("Fri,09 Oct 2020 04:30:38 GMT", "2020-10-09T04:30:38Z"),
        ("Fri, 9 Oct 2020 4:30 +0000", "2020-10-09T04:30:00Z"),
        ("Fri, 09 Oct 2020 04:30:38", "2020-10-09T04:30:38Z"),
        ("  Fri, 09 Oct 2020\n 04:30:38 GMT ", "2020-10-09T04:30:38Z"),
        ("2020-10-09T04:30:38Z", "2020-10-09T04:30:38Z"),
        ("2020-10-09T06:30:38+02:00", "2020-10-09T04:30:38Z"),
        ("2021-09-26T07:30:00.000-0600", "2021-09-26T13:30:00Z"),
        ("2020-10-09T04:30:38.750Z", "2020-10-09T04:30:38Z"),
        ("2020-10-09T04:30:38", "2020-10-09T04:30:38Z"),
        ("2020-10-09", "2020-10-09T00:00:00Z"),
        ("2024-01-05 10:00:00", "2024-01-05T10:00:00Z"),
        ("2024-01-05 10:00:00 GMT", "2024-01-05T10:00:00Z"),
        ("2024-01-05T23:30:00-02:00", "2024-01-06T01:30:00Z"),
    ],
)
def test_parse_date(raw, expected):
    assert parse_date(raw) == expected


@pytest.mark.parametrize(
    "raw", [None, "", "   ", "not a date", "5", "2020-13-45", "Sat, 31 Feb 2020 00:00:00 GMT"]
)
def test_parse_date_rejects(raw):
    assert parse_date(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3600", 3600.0),
        ("3600.5", 3600.5),
        ("59:30", 3570.0),
        ("1:02:03", 3723.0),
        ("01:02:03.5", 3723.5),
        ("00:00", 0.0),
        (" 45 ", 45.0),
        ("1h 2m 3s", 3723.0),
        ("1h2m", 3720.0),
        ("45 min", 2700.0),
        ("PT1H2M3S", 3723.0),
        ("PT90M", 5400.0),
        (1800, 1800.0),
        (12.5, 12.5),
    ],
)
def test_parse_duration(raw, expected):
    assert parse_duration(raw) == expected


@pytest.mark.parametrize(
    "raw", [None, "", "   ", "abc", "-5", -5, "-1:00", "1:2:3:4", "nan", "inf", "PT", "12 parsecs"]
)
def test_parse_duration_rejects(raw):
    assert parse_duration(raw) is None


def test_duration_from_feed():
    xml = rss(
        """<item><title>D</title><guid>d</guid><itunes:duration> 59:30 </itunes:duration></item>"""
    )
    assert parse_feed(xml, feed_slug="show").episodes[0].duration_seconds == 3570.0


# --- not a feed / empty feed ---------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"   \n",
        b"this is not xml \x00\xff at all",
        b"<!DOCTYPE html><html><head><title>Oops</title></head><body><p>Hi</p></body></html>",
        '{"json": "feed"}',
        b"<?xml version='1.0'?><config><value>1</value></config>",
    ],
)
def test_garbage_raises_naming_the_source(content):
    with pytest.raises(FeedParseError) as info:
        parse_feed(content, feed_slug="show", base_url="https://bad.example/feed.xml")
    assert "https://bad.example/feed.xml" in str(info.value)
    assert info.value.source == "https://bad.example/feed.xml"
    assert info.value.cause


def test_garbage_without_base_url_names_placeholder():
    with pytest.raises(FeedParseError, match="<feed>"):
        parse_feed(b"<html><body>nope</body></html>", feed_slug="show")


def test_feed_parse_error_is_a_value_error():
    with pytest.raises(ValueError):
        parse_feed(b"garbage", feed_slug="show")


def test_feed_with_zero_items():
    xml = rss("", channel="<description>Nothing yet</description><language>en</language>").encode()
    parsed = parse_feed(xml, feed_slug="show")
    assert parsed.episodes == ()
    assert parsed.feed.title == "Test Show"
    assert parsed.feed.description == "Nothing yet"
    assert parsed.feed.language == "en"


def test_malformed_enclosure_url_drops_only_that_link():
    xml = (
        '<rss version="2.0"><channel><title>T</title>'
        "<item><title>Bad</title><guid>b</guid>"
        '<enclosure url="http://[::1" type="audio/mpeg"/></item>'
        '<item><title>Good</title><guid>g</guid><enclosure url="/a.mp3" type="audio/mpeg"/></item>'
        "</channel></rss>"
    )
    parsed = parse_feed(xml, feed_slug="t", base_url="https://example.com/feed.xml")
    by_title = {e.title: e for e in parsed.episodes}
    assert by_title["Bad"].audio_url is None
    assert by_title["Good"].audio_url == "https://example.com/a.mp3"


def test_guidless_relative_enclosure_key_does_not_depend_on_the_host():
    xml = (
        '<rss version="2.0"><channel><title>T</title>'
        '<item><title>No guid</title><enclosure url="../audio/a.mp3" type="audio/mpeg"/></item>'
        "</channel></rss>"
    )
    one = parse_feed(xml, feed_slug="t", base_url="http://127.0.0.1:8765/feeds/t.xml")
    two = parse_feed(xml, feed_slug="t", base_url="http://127.0.0.1:9999/feeds/t.xml")
    assert one.episodes[0].key == two.episodes[0].key
    assert one.episodes[0].audio_url != two.episodes[0].audio_url
