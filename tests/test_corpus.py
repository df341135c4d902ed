"""The corpus database: built atomically, serialized across concurrent rebuilds, no lost rows."""

import json
import threading

import duckdb
import pytest
from click.testing import CliRunner

from podcast_assets.cli import main
from podcast_core.corpus import TABLES, build_database, query
from podcast_core.storage import LocalArtifactStore


def _episode(store: LocalArtifactStore, feed: str, n: int) -> str:
    key = f"{feed}--{n:012x}"
    store.write_json(
        f"{feed}/{n:012x}/metadata.json",
        {
            "key": key,
            "feed": feed,
            "feed_url": "https://example.com/f.xml",
            "feed_info": {"title": feed},
            "episode": {
                "guid": str(n),
                "title": f"Episode {n}",
                "published": "2026-11-02T10:00:00Z",
                "audio_url": f"https://example.com/{n}.mp3",
                "duration_seconds": 60.0,
            },
            "created_at": "2026-11-02T10:00:00+00:00",
        },
    )
    store.write_json(
        f"{feed}/{n:012x}/transcript.json",
        {
            "key": key,
            "feed": feed,
            "title": f"Episode {n}",
            "text": f"Words of episode {n}.",
            "segments": [
                {"start": 0.0, "end": 2.0, "text": f"Words of episode {n}.", "speaker": None}
            ],
            "source": "whisper",
            "model": "packaged:tiny.en",
            "language": "en",
            "duration_seconds": 60.0,
            "processing_seconds": 3.0,
        },
    )
    return key


def test_database_holds_every_table_and_matches_the_views(tmp_path):
    store = LocalArtifactStore(tmp_path / "artifacts")
    keys = {_episode(store, "show", n) for n in range(3)}
    counts = build_database(store, tmp_path / "corpus.duckdb")
    assert set(counts) == set(TABLES)
    assert counts["episodes"] == counts["transcripts"] == counts["segments"] == 3
    with duckdb.connect(str(tmp_path / "corpus.duckdb"), read_only=True) as con:
        assert {r[0] for r in con.execute("SELECT key FROM episodes").fetchall()} == keys
        assert con.execute("SELECT count(*) FROM summaries").fetchall() == [(0,)]
    assert not list(tmp_path.glob(".*.tmp"))


def test_concurrent_rebuilds_never_corrupt_or_lose_rows(tmp_path):
    store = LocalArtifactStore(tmp_path / "artifacts")
    for n in range(5):
        _episode(store, "show", n)
    path = tmp_path / "corpus.duckdb"
    errors: list[BaseException] = []

    def rebuild(start: int) -> None:
        try:
            for n in range(start, start + 5):
                _episode(store, f"feed{start}", n)
                build_database(store, path)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=rebuild, args=(s,)) for s in (100, 200, 300)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # The last rebuild to take the lock started after every thread wrote its last episode.
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM episodes").fetchall() == [(20,)]
    assert query(store, "SELECT count(*) FROM episodes")[1] == [(20,)]


def test_corpus_sql_csv(env):
    store = LocalArtifactStore(env.artifact_root)
    _episode(store, "show", 1)
    result = CliRunner().invoke(main, ["corpus", "sql", "--csv", "SELECT key, title FROM episodes"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["key,title", "show--000000000001,Episode 1"]
    both = CliRunner().invoke(main, ["corpus", "sql", "--csv", "--json", "SELECT 1"])
    assert both.exit_code == 2


@pytest.mark.parametrize("table", TABLES)
def test_every_table_is_queryable_on_an_empty_corpus(tmp_path, table):
    columns, rows = query(LocalArtifactStore(tmp_path), f"SELECT * FROM {table}")
    assert columns and rows == []
    assert json.dumps(columns)
