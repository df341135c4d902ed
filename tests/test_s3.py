"""The S3 artifact store against a real S3 API: moto's server on loopback, spoken to over HTTP.

No client is mocked: boto3 (built by dagster-aws's ``S3Resource``) talks HTTP to a
``ThreadedMotoServer`` on 127.0.0.1. The store is checked on its own (round trips, glob listing,
atomic writes, errors), then end to end: ``podcast ingest`` puts a demo episode (publisher
transcript) and its enrichment on S3, and ``podcast corpus sql`` queries it from there.
"""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _instance import PROD_INSTANCE
from click.testing import CliRunner
from conftest import DEMO_SITE, rss

from podcast_core.corpus import query
from podcast_core.storage import (
    ArtifactStoreError,
    LocalArtifactStore,
    NotLocalError,
    S3ArtifactStore,
    glob_prefix,
    open_store,
)

BUCKET = "podcast-test"


@pytest.fixture(scope="module")
def s3_server():
    """A moto S3 server on a free loopback port for this module."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch, tmp_path):
    """Dummy credentials in the environment, an empty bucket, and a client made by S3Resource."""
    from dagster_aws.s3 import S3Resource

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = S3Resource(endpoint_url=s3_server, region_name="us-east-1").get_client()
    bucket = f"{BUCKET}-{len(client.list_buckets()['Buckets'])}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


def _store(s3, tmp_path: Path, prefix: str = "root/artifacts") -> S3ArtifactStore:
    client, bucket = s3
    store = open_store(
        f"s3://{bucket}/{prefix}", client_factory=lambda: client, cache_dir=tmp_path / "cache"
    )
    assert isinstance(store, S3ArtifactStore)
    return store


def _keys(s3, prefix: str = "") -> list[str]:
    client, bucket = s3
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", ()))


# ------------------------------------------------------------------------------------ the store


def test_round_trip_keys_and_uris(s3, tmp_path):
    store = _store(s3, tmp_path)
    _, bucket = s3
    store.write_json("feed/ep/metadata.json", {"title": "Ünïcode", "n": 1})
    store.write_bytes("feed/ep/audio.mp3", b"\x00\x01binary")
    assert store.read_json("feed/ep/metadata.json") == {"title": "Ünïcode", "n": 1}
    assert store.read_bytes("feed/ep/audio.mp3") == b"\x00\x01binary"
    assert store.exists("feed/ep/audio.mp3") and not store.exists("feed/ep/audio.m4a")
    assert _keys(s3) == ["root/artifacts/feed/ep/audio.mp3", "root/artifacts/feed/ep/metadata.json"]
    assert store.location("feed/ep/audio.mp3") == f"s3://{bucket}/root/artifacts/feed/ep/audio.mp3"
    assert store.uri("feed/ep/audio.mp3") == store.location("feed/ep/audio.mp3")
    client, _ = s3
    head = client.head_object(Bucket=bucket, Key="root/artifacts/feed/ep/metadata.json")
    assert head["ContentType"] == "application/json"

    with store.local_copy("feed/ep/audio.mp3") as path:
        assert path.read_bytes() == b"\x00\x01binary"
        assert path.parent == store.scratch_dir()
    assert not path.exists(), "the downloaded copy is removed after the block"

    work = store.scratch_dir() / "work.bin"
    work.write_bytes(b"moved")
    store.move_in("feed/ep/moved.bin", work)
    assert store.read_bytes("feed/ep/moved.bin") == b"moved" and not work.exists()
    work.write_bytes(b"copied")
    store.put_file("feed/ep/copied.bin", work)
    assert store.read_bytes("feed/ep/copied.bin") == b"copied" and work.exists()

    store.delete("feed/ep/moved.bin")
    store.delete("feed/ep/never-there.bin")  # like the local store: absent is fine
    assert not store.exists("feed/ep/moved.bin")
    assert list(store.scratch_dir().iterdir()) == [work]


def test_list_has_the_local_glob_semantics(s3, tmp_path):
    store = _store(s3, tmp_path)
    local = LocalArtifactStore(tmp_path / "local")
    rels = [
        "a/e1/transcript.json",
        "a/e1/audio.mp3",
        "a/e2/transcript.json",
        "a/feed.json",
        "ab/e1/transcript.json",
        "b/e9/transcript.json",
        "b/e9/deeper/transcript.json",
        "_corpus/graph/aliases.parquet",
        "_digests/2026-W46/audio.json",
    ]
    for rel in rels:
        store.write_bytes(rel, b"{}")
        local.write_bytes(rel, b"{}")
    patterns = [
        "*/*/transcript.json",
        "a/*/transcript.json",
        "a/*",
        "a*/e1/*.json",
        "?/e?/transcript.json",
        "[ab]/e[0-9]/transcript.json",
        "b/**/transcript.json",
        "**/transcript.json",
        "_corpus/graph/aliases.parquet",
        "_corpus/graph/aliases",
        "a/feed.json",
        "*/*/nothing.json",
        "*",
    ]
    for pattern in patterns:
        assert store.list(pattern) == local.list(pattern), pattern
    assert store.list("a/*/transcript.json") == ["a/e1/transcript.json", "a/e2/transcript.json"]
    # Prefix listing is exact: "a/" does not take in "ab/" or a sibling prefix's keys.
    assert store.list("a/*") == ["a/feed.json"]
    assert glob_prefix("a/*/transcript.json") == "a/"
    assert glob_prefix("_corpus/graph/aliases.parquet") == "_corpus/graph/aliases.parquet"
    assert glob_prefix("*/*/x.json") == ""
    # Objects beside the store's prefix are never listed.
    other = _store(s3, tmp_path, prefix="root/artifacts-old")
    other.write_bytes("a/e3/transcript.json", b"{}")
    assert store.list("*/*/transcript.json") == local.list("*/*/transcript.json")
    # Keys a filesystem cannot hold (console "folders", empty segments) are not artifacts.
    client, bucket = s3
    for key in ("root/artifacts/a/", "root/artifacts/a//x.json", "root/artifacts/c/"):
        client.put_object(Bucket=bucket, Key=key, Body=b"")
    assert store.list("a/*") == ["a/feed.json"]
    assert store.list("*/*") == local.list("*/*")
    assert store.list("*") == local.list("*")


def test_list_paginates(s3, tmp_path):
    store = _store(s3, tmp_path, prefix="many")
    client, bucket = s3
    with ThreadPoolExecutor(8) as pool:  # more than one list_objects_v2 page (1000 keys)
        list(
            pool.map(
                lambda n: client.put_object(
                    Bucket=bucket, Key=f"many/f/e{n:04d}/metadata.json", Body=b"{}"
                ),
                range(1005),
            )
        )
    found = store.list("f/*/metadata.json")
    assert len(found) == 1005 and found[-1] == "f/e1004/metadata.json"


def test_a_failed_write_leaves_nothing(s3, tmp_path):
    store = _store(s3, tmp_path)
    store.write_bytes("f/e/summary.json", b"old")
    for rel in ("f/e/summary.json", "f/e/new.json"):
        with pytest.raises(RuntimeError, match="boom"), store.open_write(rel) as tmp:
            tmp.write_bytes(b"half written")
            raise RuntimeError("boom")
    assert store.read_bytes("f/e/summary.json") == b"old"
    assert not store.exists("f/e/new.json")
    assert _keys(s3, "root/") == ["root/artifacts/f/e/summary.json"]
    assert list(store.scratch_dir().iterdir()) == [], "temporary files are removed"


def test_errors_name_the_object_and_the_cause(s3, tmp_path):
    store = _store(s3, tmp_path)
    _, bucket = s3
    with pytest.raises(FileNotFoundError, match=f"s3://{bucket}/root/artifacts/f/e/gone.json"):
        store.read_json("f/e/gone.json")
    with pytest.raises(FileNotFoundError, match=r"f/e/gone\.mp3"), store.local_copy("f/e/gone.mp3"):
        pass
    with pytest.raises(NotLocalError, match=r"f/e/x\.json.*S3.*s3://"):
        store.path("f/e/x.json")
    with pytest.raises(ValueError, match="escapes"):
        store.write_bytes("../outside.json", b"x")
    missing = open_store(
        "s3://no-such-bucket/p", client_factory=lambda: s3[0], cache_dir=tmp_path / "c"
    )
    with pytest.raises(ArtifactStoreError, match=r"s3://no-such-bucket/p/x\.json.*does not exist"):
        missing.write_bytes("x.json", b"{}")
    with pytest.raises(ArtifactStoreError, match="no-such-bucket"):
        missing.list("*/*/metadata.json")
    with pytest.raises(ValueError, match="S3 URI"):
        LocalArtifactStore("s3://bucket/prefix")


def test_corpus_mirror_is_incremental(s3, tmp_path):
    store = _store(s3, tmp_path)
    for n in (1, 2):
        store.write_json(
            f"f/e{n}/metadata.json",
            {"key": f"f--e{n}", "feed": "f", "episode": {"title": f"T{n}"}},
        )
        store.write_bytes(f"f/e{n}/audio.mp3", b"not for the mirror")
    assert sorted(r[0] for r in query(store, "SELECT key FROM episodes")[1]) == ["f--e1", "f--e2"]
    mirror = store.mirror_dir()
    files = sorted(
        str(p.relative_to(mirror))
        for p in mirror.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )
    assert files == ["f/e1/metadata.json", "f/e2/metadata.json"], "never audio"

    # Changed objects are downloaded again, deleted ones disappear, new ones arrive.
    store.write_json(
        "f/e1/metadata.json", {"key": "f--e1", "feed": "f", "episode": {"title": "T1 v2"}}
    )
    store.delete("f/e2/metadata.json")
    store.write_json("f/e3/metadata.json", {"key": "f--e3", "feed": "f", "episode": {}})
    rows = query(store, "SELECT key, title FROM episodes ORDER BY key")[1]
    assert rows == [("f--e1", "T1 v2"), ("f--e3", None)]
    assert not (mirror / "f/e2/metadata.json").exists()
    # Unchanged objects (same size and ETag) are not downloaded again.
    stamps = {p: p.stat().st_mtime_ns for p in mirror.rglob("metadata.json")}
    assert query(store, "SELECT count(*) FROM episodes")[1] == [(2,)]
    assert {p: p.stat().st_mtime_ns for p in mirror.rglob("metadata.json")} == stamps


# ---------------------------------------------------------------------------------- end to end


def test_ingest_and_enrich_onto_s3_then_query_from_s3(s3, s3_server, env, feed_server, monkeypatch):
    client, bucket = s3
    monkeypatch.setenv("PODCAST_ARTIFACT_ROOT", f"s3://{bucket}/prod/artifacts")
    monkeypatch.setenv("PODCAST_S3_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("PODCAST_S3_REGION", "us-east-1")
    feed_server.set_two_voices()
    url = feed_server.set(
        "/voices.xml",
        rss(
            "Voices",
            [
                {
                    "title": "Two Voices",
                    "guid": "voices-qa-ep3",
                    "audio": "/audio/two-voices.mp3",
                    "pub_date": "Thu, 19 Nov 2026 17:00:00 GMT",
                    "transcripts": [("/transcripts/two-voices.vtt", "text/vtt")],
                }
            ],
        ),
    )
    from podcast_assets.cli import main

    cli = CliRunner()
    result = cli.invoke(main, ["ingest", url, "--limit", "1", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [episode] = json.loads(result.stdout)["episodes"]
    assert (episode["status"], episode["transcript_source"]) == ("ok", "published:vtt")
    feed, short = episode["key"].split("--")

    root = "prod/artifacts/"
    keys = [k[len(root) :] for k in _keys(s3, root)]
    for name in (
        "metadata.json",
        "audio.mp3",
        "audio.json",
        "transcript.json",
        "summary.json",
        "gi.json",
        "kg.json",
        "chunks.parquet",
    ):
        assert f"{feed}/{short}/{name}" in keys, name
    assert f"{feed}/feed.json" in keys
    audio = client.get_object(Bucket=bucket, Key=f"{root}{feed}/{short}/audio.mp3")["Body"].read()
    assert audio == (DEMO_SITE / "audio" / "two-voices.mp3").read_bytes()
    # Nothing went to the local artifact directory; local files are only the cache.
    assert not (env.data_dir / "artifacts").exists()
    assert not [p for p in (env.data_dir / "cache").rglob("*.mp3")], "no audio left behind"

    result = cli.invoke(
        main,
        [
            "corpus",
            "sql",
            "--json",
            "SELECT e.key, e.title, t.source, length(s.lead) > 0 AS summarized,"
            " (SELECT count(*) FROM chunks c WHERE c.key = e.key) AS chunks"
            " FROM episodes e JOIN transcripts t USING (key) JOIN summaries s USING (key)",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["key"] == episode["key"] and row["title"] == "Two Voices"
    assert row["source"] == "published:vtt" and row["summarized"] and row["chunks"] >= 1
    # The rows came from the S3 objects: the corpus reads a mirror of them, not a local root.
    assert not (env.data_dir / "artifacts").exists()
    mirrored = {p.name for p in (env.data_dir / "cache").rglob("*") if p.is_file()}
    assert {"transcript.json", "chunks.parquet"} <= mirrored and "audio.mp3" not in mirrored

    # The weekly digest's three stages on the same S3 store: text, spoken audio (rendered in local
    # scratch, then uploaded whole), and a feed whose links are the store's s3:// URIs.
    from podcast_core import weekly
    from podcast_core.digest import week_of
    from podcast_core.settings import load_settings
    from podcast_core.speech import EspeakBackend
    from resources import open_artifact_store

    store = open_artifact_store(load_settings())
    week = week_of(dt.date(2026, 11, 19))
    digest = weekly.materialize_digest(store, week, None, budget_minutes=60)
    assert episode["key"] in json.dumps(digest)
    manifest = weekly.materialize_digest_audio(store, week, EspeakBackend())
    feed_result = weekly.materialize_digest_feed(store, "")
    folder = f"{root}_digests/{week}/"
    assert {"digest.json", "digest.md", "audio.json", "chapters.json", "digest.mp3"} <= {
        k[len(folder) :] for k in _keys(s3, folder)
    }
    mp3 = client.head_object(Bucket=bucket, Key=f"{folder}digest.mp3")
    assert mp3["ContentLength"] == manifest["bytes"] > 0
    assert feed_result["url"] == f"s3://{bucket}/prod/artifacts/_digests/feed.xml"
    assert f"s3://{bucket}/prod/artifacts/_digests/{week}/digest.mp3".encode() in store.read_bytes(
        "_digests/feed.xml"
    )
    assert not [p for p in (env.data_dir / "cache").rglob("*.mp3")], "scratch is cleaned up"
    assert not (env.data_dir / "artifacts").exists()


def test_prod_compute_log_manager_writes_run_logs_to_s3(s3, s3_server, monkeypatch):
    # The compute_logs block of deploy/dagster.prod.yaml, resolved from the environment as a
    # Dagster process resolves it, against the loopback S3 API.
    import yaml
    from dagster._config import process_config
    from dagster._core.storage.compute_log_manager import ComputeIOType
    from dagster._serdes.config_class import class_from_code_pointer

    client, bucket = s3
    block = yaml.safe_load(PROD_INSTANCE.read_text())["compute_logs"]
    monkeypatch.setenv("DAGSTER_COMPUTE_LOGS_BUCKET", bucket)
    monkeypatch.setenv("DAGSTER_COMPUTE_LOGS_PREFIX", "compute_logs")
    monkeypatch.setenv("PODCAST_S3_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    cls = class_from_code_pointer(block["module"], block["class"])
    config = process_config(cls.config_type(), block["config"])
    assert config.success, config.errors
    manager = cls.from_config_value(None, config.value)

    log_key = ["run-1", "compute_logs", "transcript"]
    local = Path(manager.local_manager.get_captured_local_path(log_key, "out"))
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text("transcribing episode voices--ae0da40794b7\n")
    manager.upload_to_cloud_storage(log_key, ComputeIOType.STDOUT)
    [key] = [k for k in _keys(s3, "compute_logs/") if k.endswith(".out")]
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read().startswith(b"transcribing")
    local.unlink()
    # What the webserver does for a run that finished in another container: read it from S3.
    data = manager.get_log_data(log_key)
    assert data.stdout.startswith(b"transcribing episode")
