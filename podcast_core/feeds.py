"""RSS podcast feeds to normalized :class:`~podcast_core.models.ParsedFeed` records.

Two extractors feed one normalizer. Well-formed RSS 2.0 (the vast majority of podcast feeds) is
read with ElementTree, which sees every ``<podcast:*>`` element and each field exactly as written.
Anything else (Atom, RSS 1.0, XML too broken to repair) goes through feedparser's lenient parser,
which yields fewer Podcasting 2.0 details but still gives the episodes. Both produce raw strings
that :func:`_build_episode` normalizes the same way, so keys do not depend on the path taken.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_tz
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import feedparser
from feedparser.datetimes import _parse_date as _feedparser_parse_date

from podcast_core.keys import (
    InvalidKeyError,
    episode_identity,
    episode_key,
    validate_feed_slug,
)
from podcast_core.models import Episode, FeedInfo, ParsedFeed, Person, TranscriptLink

log = logging.getLogger(__name__)

_ITUNES_NS_MARK = "itunes.com/dtds/podcast"
_PODCAST_NS_MARK = "podcastindex"  # also matches the legacy github.com/Podcastindex-org/... URI
_CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
_DC_NS = "http://purl.org/dc/elements/1.1/"

_EPISODE_TYPES = frozenset({"full", "trailer", "bonus"})

# Transcript types by extension, for <podcast:transcript> elements that omit the type attribute.
_TRANSCRIPT_TYPES = {
    ".vtt": "text/vtt",
    ".srt": "application/srt",
    ".json": "application/json",
    ".html": "text/html",
    ".htm": "text/html",
    ".txt": "text/plain",
}


# A fixed table rather than the mimetypes module, whose answers depend on the host's mime.types.
_MEDIA_TYPES = {
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/opus",
    ".flac": "audio/flac",
    ".wav": "audio/wav",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
}


class FeedParseError(ValueError):
    """Raised when a document is not a feed at all (an HTML page, garbage, an empty body).

    Attributes:
        source: the feed's URL or path, or ``"<feed>"`` when unknown.
        cause: why the document was rejected.
    """

    def __init__(self, message: str, *, source: str | None = None, cause: str | None = None):
        super().__init__(message)
        self.source = source
        self.cause = cause


# --------------------------------------------------------------------------------------------
# Durations and dates


_NUMBER = r"\d+(?:\.\d+)?"
_UNITS_RE = re.compile(
    rf"^(?:(?P<h>{_NUMBER})\s*h(?:ours?|rs?)?\s*)?"
    rf"(?:(?P<m>{_NUMBER})\s*m(?:in(?:ute)?s?)?\s*)?"
    rf"(?:(?P<s>{_NUMBER})\s*s(?:ec(?:ond)?s?)?)?$",
    re.IGNORECASE,
)
_ISO_DURATION_RE = re.compile(
    rf"^P(?:(?P<d>{_NUMBER})D)?"
    rf"(?:T(?:(?P<h>{_NUMBER})H)?(?:(?P<m>{_NUMBER})M)?(?:(?P<s>{_NUMBER})S)?)?$",
    re.IGNORECASE,
)
_CLOCK_RE = re.compile(r"^(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)$")


def parse_duration(value: str | int | float | None) -> float | None:
    """Parse an ``itunes:duration`` into seconds.

    Accepts plain seconds (``"3600"``, ``"3600.5"``, ints, floats), clock forms (``"59:30"``,
    ``"1:02:03"``, ``"01:02:03.5"``), unit forms (``"1h 2m 3s"``, ``"1h2m"``, ``"45 min"``) and
    ISO-8601 durations (``"PT1H2M3S"``). Surrounding whitespace is ignored.

    Args:
        value: the raw duration.

    Returns:
        The duration in seconds, or None for empty, unparseable, negative or non-finite values.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    text = value.strip()
    if not text:
        return None
    if re.fullmatch(_NUMBER, text):
        return float(text)
    if match := _CLOCK_RE.match(text):
        hours = int(match["h"] or 0)
        return hours * 3600 + int(match["m"]) * 60 + float(match["s"])
    for pattern in (_ISO_DURATION_RE, _UNITS_RE):
        match = pattern.match(text)
        if match and any(match.groupdict().values()):
            parts = {k: float(v) for k, v in match.groupdict().items() if v}
            return (
                parts.get("d", 0.0) * 86400
                + parts.get("h", 0.0) * 3600
                + parts.get("m", 0.0) * 60
                + parts.get("s", 0.0)
            )
    return None


# Zone names feedparser does not know (it silently reads them as UTC).
_EXTRA_ZONES = {
    "CET": "+0100",
    "CEST": "+0200",
    "MET": "+0100",
    "MEST": "+0200",
    "BST": "+0100",
    "WET": "+0000",
    "WEST": "+0100",
    "EET": "+0200",
    "EEST": "+0300",
    "MSK": "+0300",
    "WAT": "+0100",
    "CAT": "+0200",
    "EAT": "+0300",
    "SAST": "+0200",
    "JST": "+0900",
    "KST": "+0900",
    "HKT": "+0800",
    "SGT": "+0800",
    "AWST": "+0800",
    "ACST": "+0930",
    "ACDT": "+1030",
    "AEST": "+1000",
    "AEDT": "+1100",
    "NZST": "+1200",
    "NZDT": "+1300",
    "HST": "-1000",
    "AKST": "-0900",
    "AKDT": "-0800",
    "AST": "-0400",
    "ADT": "-0300",
    "NST": "-0330",
    "NDT": "-0230",
    "BRT": "-0300",
    "ART": "-0300",
}
_EXTRA_TZINFOS = {
    name: timezone(timedelta(hours=int(off[:3]), minutes=int(off[0] + off[3:])))
    for name, off in _EXTRA_ZONES.items()
}
_TRAILING_ZONE_RE = re.compile(r"\s([A-Za-z]{2,5})$")
_ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_PLAUSIBLE_YEAR_RE = re.compile(r"\b(?:1[89]|2\d)\d\d\b")


def _format_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z"
    )


def _parse_with_dateutil(text: str) -> datetime | None:
    # dateutil guesses wildly (a bare "5" is the 5th of this month), so only try it on strings
    # that at least carry a year.
    if not _PLAUSIBLE_YEAR_RE.search(text):
        return None
    try:
        from dateutil import parser as dateutil_parser
    except ImportError:  # a transitive dependency only; the other parsers cover the common forms
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return dateutil_parser.parse(text, tzinfos=_EXTRA_TZINFOS)
        except (ValueError, OverflowError, TypeError):
            return None


def _parse_iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    normalized = re.sub(r"\s*(?:Z|UTC|GMT|UT)$", "+00:00", text, flags=re.IGNORECASE)
    normalized = re.sub(r"\s+(?=[+-]\d\d:?\d\d$)", "", normalized)
    try:
        return datetime.fromisoformat(normalized)
    except ValueError:
        return _parse_with_dateutil(text)


def parse_date(value: str | None) -> str | None:
    """Parse a feed date into ISO-8601 UTC (``"2020-10-09T04:30:38Z"``).

    Handles RFC 822 dates with named or numeric zones, two-digit years, a missing or wrong weekday,
    ISO-8601 dates with or without time and zone, and ``"2024-01-05 10:00:00"``. Times without a
    zone are taken as UTC; fractional seconds are dropped.

    Args:
        value: the raw date string.

    Returns:
        The date as ``YYYY-MM-DDTHH:MM:SSZ``, or None if it is empty or cannot be understood.
    """
    if value is None:
        return None
    text = " ".join(str(value).split())
    if not text:
        return None
    text = re.sub(r",(?=\S)", ", ", text)  # "Fri,09 Oct 2020"
    if (zone := _TRAILING_ZONE_RE.search(text)) and zone[1].upper() in _EXTRA_ZONES:
        text = f"{text[: zone.start()]} {_EXTRA_ZONES[zone[1].upper()]}"

    if _ISO_DATE_RE.match(text):
        # Not feedparser here: it rolls "2020-13-45" over into 2021 and drops the time of
        # "2020-10-09 04:30:38 GMT".
        moment = _parse_iso(text)
        return _format_utc(moment) if moment is not None else None
    try:
        parsed = _feedparser_parse_date(text)  # a UTC struct_time
    except (ValueError, OverflowError, TypeError, IndexError):
        parsed = None
    if parsed is not None:
        try:
            return _format_utc(datetime(*parsed[:6], tzinfo=UTC))
        except ValueError:
            return None
    # feedparser refuses RFC 822 dates without a zone and US-style "October 9, 2020".
    moment = _parse_with_dateutil(text)
    if moment is not None:
        return _format_utc(moment)
    rfc822 = parsedate_tz(text)
    if rfc822 is not None:
        try:
            moment = datetime(*rfc822[:6], tzinfo=UTC)
        except ValueError:
            return None
        return _format_utc(moment - timedelta(seconds=rfc822[9] or 0))
    return None


# --------------------------------------------------------------------------------------------
# Text helpers


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment, skipping scripts and styles."""

    _SKIP = frozenset({"script", "style"})
    # Block elements separate words: "<p>a</p><p>b</p>" is "a b", not "ab".
    _BREAKS = frozenset(
        {"br", "p", "div", "li", "ul", "ol", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5"}
        | {"h6", "blockquote", "pre", "section", "article", "header", "footer", "table", "hr"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BREAKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _html_to_text(value: str | None) -> str | None:
    """Plain text of an HTML fragment: tags stripped, entities decoded, spaces collapsed."""
    if not value or not value.strip():
        return None
    extractor = _TextExtractor()
    extractor.feed(value)
    extractor.close()
    return _clean("".join(extractor.parts))


def _clean(value: str | None) -> str | None:
    """Collapse whitespace; None for empty strings."""
    if value is None:
        return None
    text = " ".join(value.split())
    return text or None


def _resolve(url: str | None, base_url: str | None) -> str | None:
    url = (url or "").strip()
    if not url:
        return None
    try:
        return urljoin(base_url, url) if base_url else url
    except ValueError:
        # One malformed link (e.g. "http://[::1") must not make the whole feed unreadable.
        log.warning("dropping malformed URL %r", url)
        return None


def _parse_count(value: str | None) -> int | None:
    """A non-negative integer such as a season or episode number; None for "3.5" or garbage."""
    text = (value or "").strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    if re.fullmatch(r"\d+\.0+", text):
        return int(float(text))
    return None


# --------------------------------------------------------------------------------------------
# Raw records shared by both extractors


@dataclass
class _RawEnclosure:
    url: str | None
    type: str | None
    length: str | None


@dataclass
class _RawItem:
    guid: str | None = None
    title: str | None = None
    date: str | None = None
    enclosures: list[_RawEnclosure] = field(default_factory=list)
    descriptions: list[str | None] = field(default_factory=list)  # in order of preference
    duration: str | None = None
    seasons: list[str | None] = field(default_factory=list)  # podcast:season, itunes:season
    numbers: list[str | None] = field(default_factory=list)  # podcast:episode, itunes:episode
    episode_type: str | None = None
    transcripts: list[dict[str, str | None]] = field(default_factory=list)
    chapters_url: str | None = None
    persons: list[tuple[str | None, str | None]] = field(default_factory=list)  # (name, role)


@dataclass
class _RawChannel:
    title: str | None = None
    link: str | None = None
    descriptions: list[str | None] = field(default_factory=list)
    language: str | None = None
    image: str | None = None
    persons: list[tuple[str | None, str | None]] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# ElementTree extractor (well-formed RSS 2.0)


def _split_tag(tag: Any) -> tuple[str, str]:
    if not isinstance(tag, str):  # comments and processing instructions
        return "", ""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _family(ns: str, core_ns: str) -> str:
    """The family of a namespace: "core" (RSS itself), "itunes", "podcast", or the URI."""
    if ns == core_ns:
        return "core"
    if _ITUNES_NS_MARK in ns.lower():
        return "itunes"
    if _PODCAST_NS_MARK in ns.lower():
        return "podcast"
    return ns


class _Children:
    """Namespace-tolerant, case-insensitive lookups among the direct children of one element."""

    def __init__(self, element: ET.Element, core_ns: str) -> None:
        self.items: list[tuple[str, str, ET.Element]] = []
        for child in element:
            ns, local = _split_tag(child.tag)
            self.items.append((_family(ns, core_ns), local.lower(), child))

    def all(self, family: str, local: str) -> Iterator[ET.Element]:
        local = local.lower()
        return (el for fam, loc, el in self.items if fam == family and loc == local)

    def first(self, family: str, local: str) -> ET.Element | None:
        return next(self.all(family, local), None)

    def text(self, family: str, local: str) -> str | None:
        element = self.first(family, local)
        # itertext() also catches unescaped XHTML children inside <description>.
        return "".join(element.itertext()) if element is not None else None

    def attr(self, family: str, local: str, name: str) -> str | None:
        element = self.first(family, local)
        return element.get(name) if element is not None else None

    def persons(self) -> list[tuple[str | None, str | None]]:
        return [("".join(el.itertext()), el.get("role")) for el in self.all("podcast", "person")]


def _has_entity_declarations(data: bytes) -> bool:
    marker = "<!ENTITY"
    return any(marker.encode(enc) in data for enc in ("ascii", "utf-16-le", "utf-16-be"))


_LIVE_ITEM_RE = re.compile(
    rb"<(?P<prefix>(?:[\w.-]+:)?)liveItem\b.*?</(?P=prefix)liveItem\s*>", re.DOTALL
)
_BARE_AMPERSAND_RE = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)")


def _parse_xml(data: bytes) -> ET.Element | None:
    """ElementTree root of ``data``, retrying once with bare ``&`` escaped; None if unparseable."""
    # Expat >= 2.4 already limits entity amplification; declared entities are refused outright
    # since no real podcast feed needs them and feedparser handles such documents anyway.
    if _has_entity_declarations(data):
        return None
    data = data.lstrip()  # whitespace before "<?xml" is common and fatal to expat
    for attempt in (data, _BARE_AMPERSAND_RE.sub(b"&amp;", data)):
        try:
            return ET.fromstring(attempt)
        except (ET.ParseError, ValueError, LookupError):
            continue
    return None


def _extract_etree(root: ET.Element) -> tuple[_RawChannel, list[_RawItem]] | None:
    """Raw channel and items of an RSS 2.0 document, or None if ``root`` is not RSS 2.0."""
    core_ns, local = _split_tag(root.tag)
    if local.lower() != "rss":
        return None
    top = _Children(root, core_ns)
    channel_el = top.first("core", "channel")
    if channel_el is None:
        return None
    ch = _Children(channel_el, core_ns)
    image_el = ch.first("core", "image")
    channel = _RawChannel(
        title=ch.text("core", "title"),
        link=ch.text("core", "link"),
        descriptions=[ch.text("itunes", "summary"), ch.text("core", "description")],
        language=ch.text("core", "language"),
        image=ch.attr("itunes", "image", "href")
        or (_Children(image_el, core_ns).text("core", "url") if image_el is not None else None),
        persons=ch.persons(),
    )
    # Only <item>s of the channel (plus ones misplaced directly under <rss>), so that the
    # <title>/<enclosure> of a <podcast:liveItem> never leak into the episode list.
    item_elements = [*ch.all("core", "item"), *top.all("core", "item")]
    return channel, [_extract_etree_item(el, core_ns) for el in item_elements]


def _extract_etree_item(element: ET.Element, core_ns: str) -> _RawItem:
    it = _Children(element, core_ns)
    return _RawItem(
        guid=it.text("core", "guid"),
        title=it.text("core", "title"),
        date=it.text("core", "pubdate") or it.text(_DC_NS, "date"),
        enclosures=[
            _RawEnclosure(el.get("url"), el.get("type"), el.get("length"))
            for el in it.all("core", "enclosure")
        ],
        descriptions=[
            it.text("itunes", "summary"),
            it.text("core", "description"),
            it.text(_CONTENT_NS, "encoded"),
        ],
        duration=it.text("itunes", "duration"),
        seasons=[it.text("podcast", "season"), it.text("itunes", "season")],
        numbers=[it.text("podcast", "episode"), it.text("itunes", "episode")],
        episode_type=it.text("itunes", "episodetype"),
        transcripts=[
            {key: el.get(key) for key in ("url", "type", "language", "rel")}
            for el in it.all("podcast", "transcript")
        ],
        chapters_url=it.attr("podcast", "chapters", "url"),
        persons=it.persons(),
    )


# --------------------------------------------------------------------------------------------
# feedparser extractor (everything else)


def _extract_feedparser(parsed: Any) -> tuple[_RawChannel, list[_RawItem]]:
    # No persons here: feedparser keeps only the attributes of the last <podcast:person>.
    feed = parsed.get("feed", {})
    channel = _RawChannel(
        title=feed.get("title"),
        link=feed.get("link"),
        descriptions=[feed.get("summary"), feed.get("subtitle")],
        language=feed.get("language"),
        image=(feed.get("image") or {}).get("href") or (feed.get("image") or {}).get("url"),
    )
    return channel, [_extract_feedparser_entry(entry) for entry in parsed.get("entries", [])]


def _extract_feedparser_entry(entry: Any) -> _RawItem:
    enclosures = [
        _RawEnclosure(enc.get("href") or enc.get("url"), enc.get("type"), enc.get("length"))
        for enc in entry.get("enclosures", [])
    ]
    if not enclosures:  # Media RSS only feeds
        enclosures = [
            _RawEnclosure(media.get("url"), media.get("type"), media.get("filesize"))
            for media in entry.get("media_content", [])
            if (media.get("type") or "").startswith(("audio/", "video/"))
            or media.get("medium") in ("audio", "video")
        ]
    # feedparser reports only the last <podcast:transcript>; better one link than none.
    transcript = entry.get("podcast_transcript")
    chapters = entry.get("podcast_chapters")
    number = entry.get("podcast_episode")
    return _RawItem(
        guid=entry.get("id"),
        title=entry.get("title"),
        date=entry.get("published") or entry.get("updated"),
        enclosures=enclosures,
        descriptions=[entry.get("summary"), *(c.get("value") for c in entry.get("content", []))],
        duration=entry.get("itunes_duration"),
        seasons=[entry.get("itunes_season")],
        numbers=[number if isinstance(number, str) else None, entry.get("itunes_episode")],
        episode_type=entry.get("itunes_episodetype"),
        transcripts=[dict(transcript)] if isinstance(transcript, dict) else [],
        chapters_url=chapters.get("url") if isinstance(chapters, dict) else None,
    )


# --------------------------------------------------------------------------------------------
# Normalization


def _is_media(enclosure: _RawEnclosure) -> bool:
    return (_media_type(enclosure) or "").startswith(("audio/", "video/"))


def _media_type(enclosure: _RawEnclosure) -> str | None:
    """The declared type, else one guessed from the URL's extension (None if unknown)."""
    declared = (enclosure.type or "").strip().lower()
    if declared:
        return declared
    suffix = re.search(r"\.[a-z0-9]+$", (enclosure.url or "").split("?")[0].lower())
    return _MEDIA_TYPES.get(suffix[0]) if suffix else None


def _pick_enclosure(enclosures: Iterable[_RawEnclosure]) -> _RawEnclosure | None:
    usable = [enc for enc in enclosures if enc.url and enc.url.strip()]
    return next((enc for enc in usable if _is_media(enc)), usable[0] if usable else None)


def _persons(raw: Iterable[tuple[str | None, str | None]]) -> tuple[Person, ...]:
    persons: dict[tuple[str, str], Person] = {}
    for name, role in raw:
        clean_name = _clean(name)
        if clean_name:
            person = Person(clean_name, (_clean(role) or "host").lower())
            persons.setdefault((person.name, person.role), person)
    return tuple(persons.values())


def _transcripts(
    raw: Iterable[dict[str, str | None]], base_url: str | None
) -> tuple[TranscriptLink, ...]:
    links: list[TranscriptLink] = []
    for attrs in raw:
        url = _resolve(attrs.get("url"), base_url)
        if not url:
            continue
        kind = (attrs.get("type") or "").strip().lower()
        if not kind:
            suffix = re.search(r"\.[a-z0-9]+$", url.split("?")[0].lower())
            kind = _TRANSCRIPT_TYPES.get(suffix[0], "") if suffix else ""
        links.append(
            TranscriptLink(
                url=url,
                type=kind,
                language=_clean(attrs.get("language")),
                rel=_clean(attrs.get("rel")),
            )
        )
    return tuple(links)


def _first_text(candidates: Iterable[str | None]) -> str | None:
    for candidate in candidates:
        if text := _html_to_text(candidate):
            return text
    return None


def _first_count(candidates: Iterable[str | None]) -> int | None:
    for candidate in candidates:
        if (count := _parse_count(candidate)) is not None:
            return count
    return None


def _build_episode(
    raw: _RawItem,
    *,
    feed_slug: str,
    base_url: str | None,
    channel_persons: tuple[Person, ...],
) -> Episode | None:
    guid = _clean(raw.guid)
    title = _clean(raw.title)
    published = parse_date(raw.date)
    enclosure = _pick_enclosure(raw.enclosures)
    audio_url = _resolve(enclosure.url, base_url) if enclosure else None
    try:
        # The enclosure URL as written: a relative one must not change the key with the host the
        # feed happens to be fetched from.
        raw_url = (enclosure.url or "").strip() if enclosure else None
        identity = episode_identity(guid, raw_url or audio_url, title, published)
    except InvalidKeyError:
        log.warning("skipping an RSS item with no guid, enclosure or title")
        return None
    length = (enclosure.length or "").strip() if enclosure else ""
    episode_type = (_clean(raw.episode_type) or "").lower()
    return Episode(
        key=episode_key(feed_slug, identity),
        guid=guid,
        title=title,
        published=published,
        audio_url=audio_url,
        audio_type=_media_type(enclosure) if enclosure else None,
        audio_bytes=int(length) if length.isdigit() and int(length) > 0 else None,
        duration_seconds=parse_duration(raw.duration),
        transcripts=_transcripts(raw.transcripts, base_url),
        chapters_url=_resolve(raw.chapters_url, base_url),
        persons=_persons(raw.persons) or channel_persons,
        season=_first_count(raw.seasons),
        number=_first_count(raw.numbers),
        episode_type=episode_type if episode_type in _EPISODE_TYPES else None,
        description=_first_text(raw.descriptions),
    )


def _to_bytes(content: bytes | str) -> bytes:
    if isinstance(content, bytes):
        return content
    # The text is already decoded: re-encode it as UTF-8 and make the declaration say so.
    text = content.lstrip("\ufeff")
    text = re.sub(
        r"""^(\s*<\?xml[^>]*?encoding\s*=\s*)(["'])[^"']*\2""",
        r"\1\2utf-8\2",
        text,
        count=1,
    )
    return text.encode("utf-8")


def _not_a_feed_cause(data: bytes, parsed: Any) -> str:
    if not data.strip():
        return "the document is empty"
    if re.search(rb"<html[\s>]", data[:4096], re.IGNORECASE):
        return "the document is an HTML page, not RSS or Atom"
    if parsed.get("bozo") and parsed.get("bozo_exception") is not None:
        exception = parsed["bozo_exception"]
        return f"not a feed ({type(exception).__name__}: {exception})"
    return "no channel and no items found"


def parse_feed(content: bytes | str, *, feed_slug: str, base_url: str | None = None) -> ParsedFeed:
    """Parse an RSS or Atom podcast feed into normalized episodes.

    Episodes come newest first by ``published``; undated ones follow in document order. When two
    items yield the same key (a duplicated guid, say), the first in the document wins. Items with
    no enclosure are kept with ``audio_url=None``; items with no guid, enclosure or title are
    skipped. Relative URLs are resolved against ``base_url``. Each key is
    ``episode_key(feed_slug, episode_identity(guid, enclosure, title, published))`` where
    ``enclosure`` is the enclosure URL as written in the feed, so a guid-less item with a relative
    enclosure keeps its key whatever host serves the feed.

    Args:
        content: the feed document, as fetched (bytes) or already decoded (str).
        feed_slug: the feed's catalog slug, used as the prefix of every episode key.
        base_url: the URL (or path) the feed was read from, for relative URLs and error messages.

    Returns:
        The channel facts and the episodes.

    Raises:
        FeedParseError: if the document is not a feed at all (no channel and no items).
        InvalidKeyError: if ``feed_slug`` is not a valid feed slug.
    """
    validate_feed_slug(feed_slug)
    data = _to_bytes(content)
    root = _parse_xml(data) if data.strip() else None
    extracted = _extract_etree(root) if root is not None else None
    if extracted is None:
        # Bytes only: feedparser treats a str as a URL or file name to open. No content-location:
        # with one, feedparser rewrites permalink guids like "ep-1" into absolute URLs, so keys
        # would change with the URL a feed happened to be fetched from. The liveItem is cut
        # because feedparser reads its <link> and <description> as the channel's own.
        cleaned = _LIVE_ITEM_RE.sub(b"", data)
        parsed = feedparser.parse(cleaned, sanitize_html=False, resolve_relative_uris=False)
        if not parsed.get("entries") and not parsed.get("version"):
            source, cause = base_url or "<feed>", _not_a_feed_cause(data, parsed)
            raise FeedParseError(f"cannot parse feed {source}: {cause}", source=source, cause=cause)
        if parsed.get("bozo"):
            log.info("feed %s parsed leniently: %s", base_url or "<feed>", parsed.bozo_exception)
        extracted = _extract_feedparser(parsed)
    raw_channel, raw_items = extracted

    feed = FeedInfo(
        title=_clean(raw_channel.title),
        link=_resolve(raw_channel.link, base_url),
        description=_first_text(raw_channel.descriptions),
        language=_clean(raw_channel.language),
        image=_resolve(raw_channel.image, base_url),
    )
    channel_persons = _persons(raw_channel.persons)
    episodes: dict[str, Episode] = {}
    for raw in raw_items:
        episode = _build_episode(
            raw, feed_slug=feed_slug, base_url=base_url, channel_persons=channel_persons
        )
        if episode is None:
            continue
        if episode.key in episodes:
            log.info("feed %s: dropping a duplicate of item %s", base_url or "<feed>", episode.key)
            continue
        episodes[episode.key] = episode
    # sorted() is stable, so undated items (and equal dates) keep their document order.
    dated = sorted(
        (e for e in episodes.values() if e.published), key=lambda e: e.published, reverse=True
    )
    undated = [e for e in episodes.values() if not e.published]
    return ParsedFeed(feed=feed, episodes=(*dated, *undated))
