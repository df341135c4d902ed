import re

import pytest

from podcast_core.keys import (
    InvalidKeyError,
    episode_identity,
    episode_key,
    parse_episode_key,
    slugify,
    validate_feed_slug,
)

KEY_CHARS = re.compile(r"^[a-z0-9_-]+$")


def test_key_round_trips_and_uses_only_safe_characters():
    key = episode_key("my-show", episode_identity("urn:uuid:1234 ABC/?&|,[]..."))
    assert KEY_CHARS.match(key)
    assert "..." not in key and "|" not in key
    feed, episode = parse_episode_key(key)
    assert feed == "my-show"
    assert len(episode) == 12 and int(episode, 16) >= 0
    assert str(parse_episode_key(key)) == key


def test_key_is_deterministic_and_differs_across_feeds_for_the_same_guid():
    identity = episode_identity("episode-1")
    assert episode_key("a", identity) == episode_key("a", identity)
    assert episode_key("a", identity) != episode_key("b", identity)
    assert episode_key("a", identity) != episode_key("a", episode_identity("episode-2"))


def test_identity_falls_back_from_guid_to_enclosure_to_title_and_date():
    assert episode_identity("  g  ", "https://x/a.mp3") == "guid:g"
    assert episode_identity(None, "https://x/a.mp3") == "enclosure:https://x/a.mp3"
    assert episode_identity("", None, "Title", "2026-01-01") == "title:Title|2026-01-01"
    with pytest.raises(InvalidKeyError):
        episode_identity(None, None, None)


def test_no_collisions_among_many_episodes():
    keys = {episode_key("feed", episode_identity(f"guid-{i}")) for i in range(50_000)}
    assert len(keys) == 50_000


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("The Daily", "the-daily"),
        ("Café  Crème -- Live!", "cafe-creme-live"),
        ("  __Rust__ in Production  ", "rust-in-production"),
        ("A" * 80, "a" * 48),
    ],
)
def test_slugify(name, slug):
    assert slugify(name) == slug
    assert validate_feed_slug(slug) == slug


@pytest.mark.parametrize(
    "bad", ["", "Has Caps", "double--dash", "-lead", "trail-", "x" * 49, "a/b"]
)
def test_invalid_feed_slugs_are_rejected(bad):
    with pytest.raises(InvalidKeyError):
        validate_feed_slug(bad)


def test_slugify_rejects_names_without_letters_or_digits():
    with pytest.raises(InvalidKeyError, match="--name"):
        slugify("!!!")


@pytest.mark.parametrize(
    "bad",
    [
        "show",
        "show--",
        "show--abc",
        "show--0123456789ab0",
        "Show--0123456789ab",
        "show--0123456789AB",
        "a--b--0123456789ab",
        "show...0123456789ab",
    ],
)
def test_parse_rejects_malformed_keys(bad):
    with pytest.raises(InvalidKeyError, match="invalid episode key"):
        parse_episode_key(bad)
