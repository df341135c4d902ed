"""The ingestion chain end to end: real HTTP on loopback, the real packaged Whisper model, runs
through a Dagster instance, artifacts on disk, the DuckDB corpus over them."""

import hashlib
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import faster_whisper
import jiwer
import pytest
from conftest import JFK, JFK_TEXT, SHARED_DATA, rss, trickling

from podcast_assets.runner import IngestError, get_instance, ingest
from podcast_core import transcribe
from podcast_core.corpus import query
from podcast_core.http import FetchError, download
from podcast_core.keys import episode_identity, episode_key
from podcast_core.settings import load_settings
from podcast_core.storage import LocalArtifactStore, episode_path


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", "", text.lower())).strip()


@pytest.fixture
def model_loads(monkeypatch):
    """Count WhisperModel constructions, starting from an empty process-wide cache."""
    monkeypatch.setattr(transcribe, "_MODELS", {})
    calls = []
    original = faster_whisper.WhisperModel

    class Counting(original):
        def __init__(self, *args, **kwargs):
            calls.append(args[0] if args else kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(faster_whisper, "WhisperModel", Counting)
    return calls


def _serve_jfk_feed(feed_server, items):
    feed_server.set("/audio/jfk.flac", JFK.read_bytes(), content_type="audio/flac")
    return feed_server.set("/feed.xml", rss("Ask Not", items))


def test_whisper_chain_for_one_episode_on_real_speech(env, feed_server, model_loads):
    url = _serve_jfk_feed(
        feed_server,
        [
            {
                "title": "Inaugural",
                "guid": "jfk-1",
                "pub_date": "Fri, 20 Jan 1961 12:00:00 EST",
                "audio": "/audio/jfk.flac",
                "audio_type": "audio/flac",
                "duration": "0:11",
            }
        ],
    )
    with get_instance(env) as instance:
        report = ingest(url, env, instance, limit=1, name="ask-not")
        key = episode_key("ask-not", episode_identity("jfk-1"))
        assert report.to_dict()["episodes"] == [
            {
                "key": key,
                "title": "Inaugural",
                "status": "ok",
                "transcript_source": "whisper",
                "error": None,
                "run_id": report.episodes[0].run_id,
                "enrichment_run_id": report.episodes[0].enrichment_run_id,
                "seconds": report.episodes[0].seconds,
            }
        ]
        assert report.episodes[0].enrichment_run_id not in (None, report.episodes[0].run_id)
        for asset in ("episode_metadata", "raw_audio", "transcript", "summary", "embeddings"):
            assert instance.get_materialized_partitions(dg.AssetKey(asset)) == {key}
        event = instance.get_latest_materialization_event(dg.AssetKey("transcript"))
        metadata = event.asset_materialization.metadata
        assert metadata["source"].value == "whisper"
        assert metadata["model"].value == "packaged:tiny.en"

    store = LocalArtifactStore(env.artifact_root)
    doc = store.read_json(episode_path(key, "transcript.json"))
    assert jiwer.wer(_normalize(JFK_TEXT), _normalize(doc["text"])) < 0.1
    assert doc["language"] == "en"
    assert doc["duration_seconds"] == pytest.approx(11.0, abs=0.1)
    assert doc["processing_seconds"] > 0
    assert doc["whisper_settings"]["beam_size"] == env.whisper.beam_size
    assert all(0 <= s["start"] < s["end"] <= 11.1 for s in doc["segments"])
    assert doc["segments"][0]["words"][0]["word"].strip().lower() == "and"

    audio = store.read_json(episode_path(key, "audio.json"))
    stored = store.read_bytes(episode_path(key, audio["file"]))
    assert audio["file"] == "audio.flac"
    assert audio["sha256"] == hashlib.sha256(JFK.read_bytes()).hexdigest()
    assert stored == JFK.read_bytes()
    assert len(model_loads) == 1

    _, rows = query(
        store,
        "SELECT e.title, e.published, t.source, t.model, count(s.idx) "
        "FROM episodes e JOIN transcripts t USING (key) "
        "JOIN segments s USING (key) GROUP BY ALL",
    )
    assert rows[0][0] == "Inaugural"
    assert rows[0][1].isoformat() == "1961-01-20T17:00:00"
    assert rows[0][2:4] == ("whisper", "packaged:tiny.en")
    assert rows[0][4] == len(doc["segments"])


def test_many_whisper_episodes_load_the_model_once(env, feed_server, model_loads):
    items = [
        {
            "title": f"Take {i}",
            "guid": f"take-{i}",
            "audio": "/audio/jfk.flac",
            "audio_type": "audio/flac",
            "pub_date": f"Mon, 0{i} Nov 2026 10:00:00 GMT",
        }
        for i in range(1, 4)
    ]
    url = _serve_jfk_feed(feed_server, items)
    with get_instance(env) as instance:
        report = ingest(url, env, instance, limit=3, name="takes")
    assert [e.status for e in report.episodes] == ["ok"] * 3
    assert [e.title for e in report.episodes] == ["Take 3", "Take 2", "Take 1"]
    assert len(model_loads) == 1


def test_publisher_transcript_is_used_without_loading_whisper(env, feed_server, model_loads):
    vtt = (SHARED_DATA / "transcripts" / "example.vtt").read_bytes()
    feed_server.set("/t/ep.vtt", vtt, content_type="text/vtt")
    feed_server.set("/t/ep.txt", "plain words", content_type="text/plain")
    url = _serve_jfk_feed(
        feed_server,
        [
            {
                "title": "Trailer talk",
                "guid": "qa-1",
                "audio": "/audio/jfk.flac",
                "audio_type": "audio/flac",
                "transcripts": [("/t/ep.txt", "text/plain"), ("/t/ep.vtt", "text/vtt")],
            }
        ],
    )
    with get_instance(env) as instance:
        report = ingest(url, env, instance, limit=1, name="qa")
        run = instance.get_run_by_id(report.episodes[0].run_id)
        assert run.tags["podcast/queue"] == "published"
    assert report.episodes[0].transcript_source == "published:vtt"
    doc = LocalArtifactStore(env.artifact_root).read_json(
        episode_path(report.episodes[0].key, "transcript.json")
    )
    assert doc["source_url"].endswith("/t/ep.vtt")
    assert doc["segments"][0]["speaker"] == "Sarah"
    assert "Podcasting Q&A" in doc["text"]
    assert doc["duration_seconds"] == pytest.approx(11.0, abs=0.1)
    assert model_loads == []


def test_broken_publisher_transcript_falls_back_to_whisper(env, feed_server, model_loads):
    url = _serve_jfk_feed(
        feed_server,
        [
            {
                "title": "Missing",
                "guid": "m-1",
                "audio": "/audio/jfk.flac",
                "audio_type": "audio/flac",
                "transcripts": [("/t/gone.vtt", "text/vtt")],
            }
        ],
    )
    with get_instance(env) as instance:
        report = ingest(url, env, instance, limit=1, name="missing")
    assert report.episodes[0].transcript_source == "whisper"
    doc = LocalArtifactStore(env.artifact_root).read_json(
        episode_path(report.episodes[0].key, "transcript.json")
    )
    assert "gone.vtt" in doc["fallback_reason"] and "404" in doc["fallback_reason"]


@pytest.mark.parametrize(
    ("route", "cause"),
    [
        ({"status": 404, "body": b""}, "HTTP 404"),
        ({"body": b"<html>sign in</html>", "content_type": "text/html"}, "expected audio"),
        ({"body": b"\x00garbage" * 100, "content_type": "audio/mpeg"}, "not decodable audio"),
    ],
)
def test_bad_audio_fails_naming_the_episode_and_leaves_nothing(env, feed_server, route, cause):
    body = route.pop("body")
    feed_server.set("/audio/bad.mp3", body, **route)
    url = feed_server.set(
        "/feed.xml",
        rss("Broken", [{"title": "Bad one", "guid": "bad-1", "audio": "/audio/bad.mp3"}]),
    )
    with get_instance(env) as instance:
        report = ingest(url, env, instance, limit=1, name="broken")
        key = report.episodes[0].key
        assert instance.get_materialized_partitions(dg.AssetKey("raw_audio")) == set()
    assert report.episodes[0].status == "failed"
    assert key in report.episodes[0].error and cause in report.episodes[0].error
    episode_dir = LocalArtifactStore(env.artifact_root).path(episode_path(key, "x")).parent
    files = sorted(p.relative_to(episode_dir).as_posix() for p in episode_dir.rglob("*"))
    assert files == ["metadata.json"]
    assert list((episode_dir.parents[1] / ".scratch").iterdir()) == []


def test_oversized_audio_is_refused(env, feed_server, monkeypatch):
    monkeypatch.setenv("PODCAST_MAX_AUDIO_BYTES", "1000")
    url = _serve_jfk_feed(
        feed_server,
        [{"title": "Big", "guid": "big", "audio": "/audio/jfk.flac", "audio_type": "audio/flac"}],
    )
    with get_instance(env) as instance:
        report = ingest(url, load_settings(), instance, limit=1, name="big")
    assert report.episodes[0].status == "failed"
    assert "exceeds the 1000-byte limit" in report.episodes[0].error


def test_a_trickling_download_stops_at_its_time_limit(tmp_path):
    """A server that sends a byte a second never trips the read timeout; the overall limit must."""
    # The server stops first on the way out, so a download that hangs cannot hang the test.
    with ThreadPoolExecutor(1) as pool, trickling() as trickle:
        started = time.monotonic()
        future = pool.submit(
            download, f"{trickle.url}/slow.mp3", tmp_path / "a.part", max_bytes=10**8, timeout=2
        )
        with pytest.raises(FetchError, match="took longer than 2s"):
            future.result(timeout=15)
        assert time.monotonic() - started < 5


def test_rerun_skips_unchanged_audio_and_reuses_the_transcript(env, feed_server):
    url = _serve_jfk_feed(
        feed_server,
        [
            {
                "title": "Again",
                "guid": "again",
                "audio": "/audio/jfk.flac",
                "audio_type": "audio/flac",
            }
        ],
    )
    with get_instance(env) as instance:
        key = ingest(url, env, instance, limit=1, name="again").episodes[0].key
        store = LocalArtifactStore(env.artifact_root)
        first = store.read_json(episode_path(key, "transcript.json"))
        from podcast_assets.definitions import build_definitions

        job = build_definitions(env).resolve_job_def("episode_job")
        assert job.execute_in_process(instance=instance, partition_key=key).success
        audio_event = instance.get_latest_materialization_event(dg.AssetKey("raw_audio"))
        transcript_event = instance.get_latest_materialization_event(dg.AssetKey("transcript"))
    assert audio_event.asset_materialization.metadata["outcome"].value == "unchanged"
    assert any(path == "/audio/jfk.flac" and etag for path, etag in feed_server.conditional)
    assert transcript_event.asset_materialization.metadata["outcome"].value == "reused"
    assert store.read_json(episode_path(key, "transcript.json")) == first


def test_second_ingest_reports_up_to_date_without_new_runs(env, feed_server):
    url = _serve_jfk_feed(
        feed_server,
        [{"title": "Once", "guid": "once", "audio": "/audio/jfk.flac", "audio_type": "audio/flac"}],
    )
    with get_instance(env) as instance:
        ingest(url, env, instance, limit=1, name="once")
        runs_before = len(instance.get_runs())
        again = ingest(url, env, instance, limit=1)
        assert len(instance.get_runs()) == runs_before
    assert [(e.status, e.transcript_source) for e in again.episodes] == [("up-to-date", "whisper")]


def test_unreachable_feed_is_a_clear_error(env):
    with get_instance(env) as instance, pytest.raises(IngestError, match=r"127\.0\.0\.1:9"):
        ingest("http://127.0.0.1:9/feed.xml", env, instance)


def test_transcript_json_is_valid_json_with_provenance(env, feed_server):
    url = _serve_jfk_feed(
        feed_server,
        [{"title": "Prov", "guid": "prov", "audio": "/audio/jfk.flac", "audio_type": "audio/flac"}],
    )
    with get_instance(env) as instance:
        key = ingest(url, env, instance, limit=1, name="prov").episodes[0].key
    path = LocalArtifactStore(env.artifact_root).path(episode_path(key, "transcript.json"))
    doc = json.loads(path.read_text())
    for field in (
        "source",
        "model",
        "language",
        "duration_seconds",
        "processing_seconds",
        "code_version",
        "created_at",
        "audio_sha256",
        "details",
    ):
        assert doc[field] not in (None, ""), field
    assert doc["details"]["device"] == "cpu" and doc["details"]["load_seconds"] >= 0


def test_backfill_run_batches_episodes_and_names_the_one_that_failed(env, feed_server, model_loads):
    """A multi-partition run (how backfills are batched) loads Whisper once and keeps going past a
    failing episode, then fails naming it."""
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG as END
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_START_TAG as START

    from podcast_assets.definitions import build_definitions
    from podcast_assets.ingestion import BATCH_POLICY

    feed_server.set("/audio/jfk.flac", JFK.read_bytes(), content_type="audio/flac")
    items = [
        {
            "title": f"Back {i}",
            "guid": f"back-{i}",
            "pub_date": f"Mon, 0{i} Nov 2026 10:00:00 GMT",
            "audio": "/audio/missing.mp3" if i == 2 else "/audio/jfk.flac",
            "audio_type": "audio/flac",
        }
        for i in range(1, 4)
    ]
    url = feed_server.set("/feed.xml", rss("Back catalog", items))
    with get_instance(env) as instance:
        report = ingest(url, env, instance, limit=0, name="back")
        assert report.episodes == []
        keys = instance.get_dynamic_partitions("episodes")
        assert len(keys) == 3
        assert BATCH_POLICY.max_partitions_per_run >= 3
        job = build_definitions(env).resolve_job_def("episode_job")
        # A range of dynamic partitions follows the order they were added in.
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, tags={START: keys[0], END: keys[-1]}
        )
        assert not result.success
        failed_key = next(
            k
            for k in keys
            if k.endswith(episode_key("back", episode_identity("back-2")).split("--")[1])
        )
        failure = next(e for e in result.all_events if e.is_step_failure)
        message = failure.step_failure_data.user_failure_data.description
        assert failed_key in message and "HTTP 404" in message
        assert instance.get_materialized_partitions(dg.AssetKey("episode_metadata")) == set(keys)
    store = LocalArtifactStore(env.artifact_root)
    good = [k for k in keys if k != failed_key]
    assert all(store.exists(episode_path(k, "audio.json")) for k in good)
    assert not store.exists(episode_path(failed_key, "audio.json"))
    assert model_loads == []  # the transcript step never ran: raw_audio failed first
