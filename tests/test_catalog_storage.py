import json
import threading

import pytest

from podcast_core.catalog import Catalog, CatalogError, FeedConfig
from podcast_core.settings import load_settings, write_settings
from podcast_core.storage import LocalArtifactStore, episode_path


def test_catalog_add_list_remove_round_trip(tmp_path):
    catalog = Catalog(tmp_path / "catalog.json")
    catalog.add(FeedConfig("one", "https://example.com/one.xml", whisper_model="small"))
    catalog.add(
        FeedConfig(
            "two",
            "https://example.com/two.xml",
            initial_episodes=5,
            since="2026-01-01",
            language="de",
        )
    )
    feeds = Catalog(tmp_path / "catalog.json").feeds()
    assert [f.name for f in feeds] == ["one", "two"]
    assert feeds[0].whisper_model == "small" and feeds[0].added_at
    assert feeds[1].initial_episodes == 5 and feeds[1].language == "de"
    assert catalog.remove("one").url == "https://example.com/one.xml"
    assert [f.name for f in catalog.feeds()] == ["two"]


@pytest.mark.parametrize(
    ("feed", "message"),
    [
        (FeedConfig("one", "https://example.com/other.xml"), "named 'one' exists"),
        (FeedConfig("other", "https://example.com/one.xml"), "already followed as 'one'"),
        (FeedConfig("Bad Name", "https://example.com/x.xml"), "invalid feed name"),
        (FeedConfig("x", "ftp://example.com/x.xml"), "not an absolute http"),
        (FeedConfig("x", "https://example.com/x.xml", since="last tuesday"), "not a date"),
        (FeedConfig("x", "https://example.com/x.xml", initial_episodes=-1), ">= 0"),
    ],
)
def test_catalog_rejects_bad_feeds_and_keeps_the_file_intact(tmp_path, feed, message):
    catalog = Catalog(tmp_path / "catalog.json")
    catalog.add(FeedConfig("one", "https://example.com/one.xml"))
    before = (tmp_path / "catalog.json").read_bytes()
    with pytest.raises(ValueError, match=message):
        catalog.add(feed)
    assert (tmp_path / "catalog.json").read_bytes() == before


def test_catalog_errors_name_the_unknown_feed(tmp_path):
    with pytest.raises(CatalogError, match="no feed named 'ghost'"):
        Catalog(tmp_path / "catalog.json").remove("ghost")


def test_concurrent_adds_lose_nothing(tmp_path):
    catalog = Catalog(tmp_path / "catalog.json")
    threads = [
        threading.Thread(
            target=catalog.add, args=(FeedConfig(f"feed-{i}", f"https://example.com/{i}.xml"),)
        )
        for i in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(catalog.feeds()) == 20
    assert not list(tmp_path.glob("*.tmp"))


def test_store_writes_atomically_and_leaves_nothing_on_failure(tmp_path):
    store = LocalArtifactStore(tmp_path)
    rel = episode_path("show--0123456789ab", "transcript.json")
    store.write_json(rel, {"text": "first"})
    with pytest.raises(RuntimeError), store.open_write(rel) as tmp:
        tmp.write_text('{"text": "half')
        raise RuntimeError("crash mid-write")
    assert store.read_json(rel) == {"text": "first"}
    assert sorted(p.name for p in (tmp_path / "show" / "0123456789ab").iterdir()) == [
        "transcript.json"
    ]


def test_store_refuses_paths_outside_the_root(tmp_path):
    with pytest.raises(ValueError, match="escapes"):
        LocalArtifactStore(tmp_path / "root").path("../outside.json")


def test_settings_layer_file_then_environment(tmp_path):
    write_settings(
        tmp_path, {"whisper": {"model": "packaged:tiny.en", "beam_size": 2}, "initial_episodes": 7}
    )
    env = {"PODCAST_DATA_DIR": str(tmp_path), "PODCAST_WHISPER_BEAM_SIZE": "4"}
    settings = load_settings(env)
    assert settings.whisper.model == "packaged:tiny.en"
    assert settings.whisper.beam_size == 4
    assert settings.initial_episodes == 7
    assert settings.artifact_root == str(tmp_path / "artifacts")
    assert (
        settings.whisper.fingerprint()
        != load_settings({"PODCAST_DATA_DIR": str(tmp_path)}).whisper.fingerprint()
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON"),
        (json.dumps({"whisper": {"modle": "x"}}), "modle"),
        (json.dumps({"initial_episodes": "many"}), "initial_episodes"),
    ],
)
def test_settings_errors_name_the_setting(tmp_path, content, message):
    (tmp_path / "settings.json").write_text(content)
    with pytest.raises(ValueError, match=message):
        load_settings({"PODCAST_DATA_DIR": str(tmp_path)})


def test_bad_environment_value_is_named():
    with pytest.raises(ValueError, match="PODCAST_WHISPER_VAD_FILTER"):
        load_settings({"PODCAST_WHISPER_VAD_FILTER": "maybe"})
