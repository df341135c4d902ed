"""Episode partition keys: one validated codec from (feed, episode identity) to a path-safe key.

A key looks like ``{feed_slug}--{12 hex digits}``. The feed slug is unique in the catalog and never
contains ``--``, so keys are collision-free across feeds; the hex part is a SHA-256 prefix of the
episode's identity (its ``<guid>``, else its enclosure URL, else title and date). Keys only use
``[a-z0-9_-]``: safe as Dagster dynamic partition keys, file names and S3 prefixes.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import NamedTuple

SEPARATOR = "--"
HASH_LENGTH = 12
MAX_SLUG_LENGTH = 48

_SLUG_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
_KEY_RE = re.compile(
    rf"^(?P<feed>[a-z0-9]+(?:[-_][a-z0-9]+)*){SEPARATOR}(?P<episode>[0-9a-f]{{{HASH_LENGTH}}})$"
)


class InvalidKeyError(ValueError):
    """Raised for a feed slug or episode key that does not follow the codec."""


class EpisodeKey(NamedTuple):
    """A decoded episode partition key."""

    feed: str
    episode: str

    def __str__(self) -> str:
        return f"{self.feed}{SEPARATOR}{self.episode}"


def slugify(name: str) -> str:
    """Turn a free-form feed name or title into a valid feed slug.

    Raises:
        InvalidKeyError: if nothing usable is left (for example an all-punctuation name).
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    slug = slug[:MAX_SLUG_LENGTH].rstrip("-")
    if not slug:
        raise InvalidKeyError(f"cannot derive a feed name from {name!r}: give one with --name")
    return slug


def validate_feed_slug(slug: str) -> str:
    """Return ``slug`` unchanged if it is a valid feed slug, else raise ``InvalidKeyError``."""
    if len(slug) > MAX_SLUG_LENGTH or not _SLUG_RE.match(slug):
        raise InvalidKeyError(
            f"invalid feed name {slug!r}: use lowercase letters, digits and single '-' or '_' "
            f"separators, at most {MAX_SLUG_LENGTH} characters"
        )
    return slug


def episode_identity(
    guid: str | None,
    enclosure_url: str | None = None,
    title: str | None = None,
    published: str | None = None,
) -> str:
    """The stable identity of an RSS item: its guid, else its enclosure URL, else title + date.

    Raises:
        InvalidKeyError: if the item has none of them.
    """
    if guid and guid.strip():
        return f"guid:{guid.strip()}"
    if enclosure_url and enclosure_url.strip():
        return f"enclosure:{enclosure_url.strip()}"
    if title and title.strip():
        return f"title:{title.strip()}|{published or ''}"
    raise InvalidKeyError("RSS item has no guid, enclosure URL or title to identify it by")


def episode_key(feed_slug: str, identity: str) -> str:
    """Build the partition key for an episode of ``feed_slug`` with the given identity."""
    validate_feed_slug(feed_slug)
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:HASH_LENGTH]
    return f"{feed_slug}{SEPARATOR}{digest}"


def parse_episode_key(key: str) -> EpisodeKey:
    """Decode a partition key into its feed slug and episode hash.

    Raises:
        InvalidKeyError: if ``key`` was not produced by :func:`episode_key`.
    """
    match = _KEY_RE.match(key)
    if not match or len(match["feed"]) > MAX_SLUG_LENGTH:
        raise InvalidKeyError(
            f"invalid episode key {key!r}: expected '<feed>{SEPARATOR}<{HASH_LENGTH} hex digits>'"
        )
    return EpisodeKey(match["feed"], match["episode"])
