"""The RSS feed of the spoken weekly digests (RSS 2.0 + iTunes + Podcasting 2.0).

:func:`build_digest_feed` writes the feed that podcast apps subscribe to: one item per week, newest
first, each with the MP3 enclosure, JSON chapters and the written digest as an HTML transcript.
Item guids are ``podcast-intelligence-digest-{week}`` (``isPermaLink="false"``), so rebuilding the
feed never changes an episode's identity, and the channel's ``<podcast:guid>`` is a UUIDv5 of the
feed URL (or, without one, the link) in the Podcasting 2.0 namespace.

Not ingesting our own digest: the channel's ``<generator>`` is :data:`DIGEST_FEED_MARKER` and every
item guid starts with :data:`DIGEST_GUID_PREFIX`. :func:`is_digest_feed` recognizes either, from
the raw document (bytes or str), from a :class:`~podcast_core.models.ParsedFeed` (via the guids,
since the parsed form keeps no generator), from its ``to_dict()`` form, or from a feedparser
result. Ingestion calls it on a fetched feed before adding it to the catalog (``podcast feeds add``)
and before discovering its episodes (``rss_sensor``), and refuses the feed with a message, so the
digest never loops back into the corpus it summarizes::

    if is_digest_feed(content):
        raise FeedParseError(f"{url} is this platform's own digest feed; not ingesting it")
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urljoin
from xml.sax.saxutils import escape, quoteattr

from podcast_core.models import ParsedFeed

DIGEST_FEED_MARKER = "podcast-intelligence weekly digest"
DIGEST_GUID_PREFIX = "podcast-intelligence-digest-"
PODCAST_GUID_NAMESPACE = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")  # Podcasting 2.0 spec
CHAPTERS_TYPE = "application/json+chapters"

_ITUNES_NS = "http://www.itunes.com/dtds/podcast-1.0.dtd"
_PODCAST_NS = "https://podcastindex.org/namespace/1.0"
_ATOM_NS = "http://www.w3.org/2005/Atom"
_REQUIRED = ("week", "title", "published", "audio_path_url", "audio_bytes", "duration_seconds")
# Characters XML 1.0 forbids even when escaped.
_INVALID_XML_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def podcast_guid(url: str) -> str:
    """The Podcasting 2.0 ``<podcast:guid>`` of a feed: UUIDv5 of its URL without scheme.

    Args:
        url: the feed URL (trailing slashes and the scheme are ignored, as the spec says).

    Returns:
        The UUID as a string.
    """
    name = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", url.strip()).rstrip("/")
    return str(uuid.uuid5(PODCAST_GUID_NAMESPACE, name))


def digest_guid(week: str) -> str:
    """The stable item guid of the digest of ``week`` (``"2026-W47"``)."""
    return f"{DIGEST_GUID_PREFIX}{week}"


def _text(value: Any) -> str:
    return escape(_INVALID_XML_RE.sub("", str(value)))


def _attr(value: Any) -> str:
    return quoteattr(_INVALID_XML_RE.sub("", str(value)))


def _cdata(value: Any) -> str:
    # "]]>" cannot appear inside CDATA: end the section and open another between "]]" and ">".
    body = _INVALID_XML_RE.sub("", str(value)).replace("]]>", "]]]]><![CDATA[>")
    return f"<![CDATA[{body}]]>"


def _element(tag: str, text: Any = None, /, **attrs: Any) -> str:
    attributes = "".join(
        f" {name.replace('__', ':')}={_attr(v)}" for name, v in attrs.items() if v is not None
    )
    if text is None:
        return f"<{tag}{attributes}/>"
    return f"<{tag}{attributes}>{_text(text)}</{tag}>"


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _rfc822(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def _url(value: str, base_url: str) -> str:
    base = base_url if base_url.endswith("/") else base_url + "/"
    return urljoin(base, str(value).strip())


def _item(entry: dict[str, Any], base_url: str) -> list[str]:
    week = str(entry["week"])
    lines = [
        "<item>",
        _element("title", entry["title"]),
        f'<guid isPermaLink="false">{_text(digest_guid(week))}</guid>',
        _element("pubDate", _rfc822(_when(entry["published"]))),
    ]
    if entry.get("html_url"):
        lines.append(_element("link", _url(entry["html_url"], base_url)))
    if entry.get("summary"):
        lines.append(f"<description>{_cdata(entry['summary'])}</description>")
    lines += [
        _element(
            "enclosure",
            url=_url(entry["audio_path_url"], base_url),
            length=int(entry["audio_bytes"]),
            type="audio/mpeg",
        ),
        _element("itunes:duration", round(float(entry["duration_seconds"]))),
        _element("itunes:episodeType", "full"),
        _element("itunes:explicit", "false"),
    ]
    if entry.get("chapters_url"):
        url = _url(entry["chapters_url"], base_url)
        lines.append(_element("podcast:chapters", url=url, type=CHAPTERS_TYPE))
    if entry.get("html_url"):
        url = _url(entry["html_url"], base_url)
        lines.append(_element("podcast:transcript", url=url, type="text/html"))
    lines.append("</item>")
    return lines


def build_digest_feed(
    entries: list[dict[str, Any]],
    *,
    title: str,
    link: str,
    base_url: str,
    description: str,
    image: str | None = None,
    language: str = "en",
    author: str | None = None,
    category: str = "News",
    feed_url: str | None = None,
) -> bytes:
    """The digest podcast feed as UTF-8 RSS 2.0 with iTunes and Podcasting 2.0 tags.

    The output depends only on the arguments (``lastBuildDate`` is the newest ``published``), so
    rebuilding with the same entries gives the same bytes and unchanged ETags.

    Args:
        entries: one dict per weekly digest: ``week`` (``"2026-W47"``), ``title``, ``published``
            (ISO-8601 or datetime; naive means UTC), ``audio_path_url``, ``audio_bytes``,
            ``duration_seconds``, and optionally ``chapters_url``, ``html_url`` (the written
            digest, linked as the ``text/html`` transcript) and ``summary`` (HTML or markdown for
            the item description). URLs may be relative to ``base_url``.
        title: the channel title.
        link: the channel's website.
        base_url: where the digest files are served; relative entry URLs resolve against it.
        description: the channel description.
        image: the cover art URL (``itunes:image``), if any.
        language: the channel language.
        author: ``itunes:author``; defaults to ``title``.
        category: the ``itunes:category``.
        feed_url: the feed's own URL, for ``atom:link rel="self"`` and the ``podcast:guid``
            (which is derived from ``link`` without it).

    Returns:
        The feed document.

    Raises:
        ValueError: if an entry misses a required field or two entries share a week.
    """
    for entry in entries:
        missing = [name for name in _REQUIRED if entry.get(name) in (None, "")]
        if missing:
            which = f"for {entry['week']}" if entry.get("week") else repr(entry)
            raise ValueError(f"digest feed entry {which} lacks {', '.join(missing)}")
    weeks = [str(entry["week"]) for entry in entries]
    duplicates = sorted({week for week in weeks if weeks.count(week) > 1})
    if duplicates:
        raise ValueError(f"digest feed has several entries for {', '.join(duplicates)}")
    ordered = sorted(entries, key=lambda e: (_when(e["published"]), str(e["week"])), reverse=True)

    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<rss version="2.0" xmlns:itunes="{_ITUNES_NS}" xmlns:podcast="{_PODCAST_NS}" '
        f'xmlns:atom="{_ATOM_NS}">',
        "<channel>",
        _element("title", title),
        _element("link", link),
        _element("description", description),
        _element("language", language),
        _element("generator", DIGEST_FEED_MARKER),
    ]
    if ordered:
        lines.append(_element("lastBuildDate", _rfc822(_when(ordered[0]["published"]))))
    if feed_url:
        lines.append(_element("atom:link", href=feed_url, rel="self", type="application/rss+xml"))
    if image:
        lines += [
            "<image>",
            _element("url", image),
            _element("title", title),
            _element("link", link),
            "</image>",
            _element("itunes:image", href=image),
        ]
    lines += [
        _element("itunes:author", author or title),
        _element("itunes:summary", description),
        _element("itunes:category", text=category),
        _element("itunes:explicit", "false"),
        _element("itunes:type", "episodic"),
        _element("podcast:guid", podcast_guid(feed_url or link)),
        _element("podcast:medium", "podcast"),
    ]
    for entry in ordered:
        lines += _item(entry, base_url)
    lines += ["</channel>", "</rss>", ""]
    return "\n".join(lines).encode("utf-8")


def _is_digest_guid(guid: Any) -> bool:
    return isinstance(guid, str) and guid.strip().startswith(DIGEST_GUID_PREFIX)


def _is_marker(generator: Any) -> bool:
    return isinstance(generator, str) and generator.strip().startswith(DIGEST_FEED_MARKER)


_GENERATOR_RE = re.compile(rb"<generator>\s*" + re.escape(DIGEST_FEED_MARKER.encode()))


def _xml_is_digest(content: bytes | str) -> bool:
    data = content.encode("utf-8") if isinstance(content, str) else content
    if b"<!ENTITY" in data:  # never in our feed; and not worth expanding
        return False
    try:
        root = ET.fromstring(data.lstrip())
    except (ET.ParseError, ValueError, LookupError):
        return bool(_GENERATOR_RE.search(data))  # broken XML: the marker text is still telling
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        return False
    if _is_marker(channel.findtext("generator")):
        return True
    return any(_is_digest_guid(item.findtext("guid")) for item in channel.iter("item"))


def is_digest_feed(parsed_or_xml: ParsedFeed | Mapping[str, Any] | bytes | str) -> bool:
    """Whether a feed is a digest feed made by :func:`build_digest_feed` (so: do not ingest it).

    Args:
        parsed_or_xml: the raw feed document, a :class:`~podcast_core.models.ParsedFeed`, its
            ``to_dict()`` form, or a ``feedparser.parse`` result.

    Returns:
        True if the channel's generator is :data:`DIGEST_FEED_MARKER` or an item's guid starts
        with :data:`DIGEST_GUID_PREFIX`.
    """
    if isinstance(parsed_or_xml, bytes | str):
        return _xml_is_digest(parsed_or_xml)
    if isinstance(parsed_or_xml, ParsedFeed):
        return any(_is_digest_guid(episode.guid) for episode in parsed_or_xml.episodes)
    if isinstance(parsed_or_xml, Mapping):
        feed = parsed_or_xml.get("feed") or {}
        if _is_marker(feed.get("generator")):  # feedparser
            return True
        items = [*(parsed_or_xml.get("entries") or []), *(parsed_or_xml.get("episodes") or [])]
        return any(_is_digest_guid(item.get("id") or item.get("guid")) for item in items)
    raise TypeError(f"is_digest_feed expects a feed document or parsed feed, not {parsed_or_xml!r}")
