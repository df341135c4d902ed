"""The enrichment chain on the bundled demo corpus: real packaged models (MiniLM, spaCy,
tiny.en), runs through a Dagster instance, artifacts and corpus tables checked."""

import itertools
import json
import shutil

import dagster as dg
import pytest
from conftest import DEMO_SITE

from podcast_assets.definitions import build_definitions
from podcast_assets.demo import DEMO_FEEDS, DEMO_PROFILE, serve_directory
from podcast_assets.enrichment import grounded_insights_verbatim
from podcast_assets.runner import get_instance, ingest
from podcast_core.corpus import query
from podcast_core.settings import load_settings, write_settings
from podcast_core.storage import LocalArtifactStore, episode_path
from sensors.enrichment import enrichment_requests

ENRICHMENT = ("summary", "grounded_insights", "knowledge_graph", "embeddings")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo corpus ingested once for this module, on an isolated data dir and instance."""
    root = tmp_path_factory.mktemp("demo")
    mp = pytest.MonkeyPatch()
    mp.setenv("PODCAST_DATA_DIR", str(root / "data"))
    mp.setenv("DAGSTER_HOME", str(root / "home"))
    (root / "home").mkdir()
    write_settings(root / "data", DEMO_PROFILE)
    settings = load_settings()
    reports = []
    with serve_directory(DEMO_SITE) as base, get_instance(settings) as instance:
        for name, path in DEMO_FEEDS.items():
            reports.append(ingest(f"{base}/{path}", settings, instance, limit=10, name=name))
        yield settings, instance, reports
    mp.undo()


def test_every_episode_went_through_the_whole_chain(demo):
    settings, instance, reports = demo
    keys = {e.key for r in reports for e in r.episodes}
    assert len(keys) == 7
    assert all(e.status == "ok" for r in reports for e in r.episodes)
    for asset in ("transcript", *ENRICHMENT):
        assert instance.get_materialized_partitions(dg.AssetKey(asset)) == keys, asset
    assert instance.get_latest_materialization_event(dg.AssetKey("corpus_graph")) is not None
    store = LocalArtifactStore(settings.artifact_root)
    for key in keys:
        summary = store.read_json(episode_path(key, "summary.json"))
        assert (summary["backend"], summary["model"]) == ("extractive", "packaged:all-MiniLM-L6-v2")
        gi = store.read_json(episode_path(key, "gi.json"))
        assert gi["provenance"]["verifier"] == "embedding"
        kg = store.read_json(episode_path(key, "kg.json"))
        assert kg["provenance"]["ner_backend"] == "spacy"
        assert {"id": f"episode:{key}"}.items() <= next(
            n for n in kg["nodes"] if n["type"] == "Episode"
        ).items()
        for artifact in (summary, gi, kg):
            assert artifact["code_version"] and artifact["created_at"] and "seconds" in artifact


def test_asset_check_passed_for_every_episode(demo):
    _, instance, _ = demo
    key = dg.AssetCheckKey(dg.AssetKey("grounded_insights"), "grounded_insights_verbatim")
    records = instance.event_log_storage.get_asset_check_execution_history(key, limit=100)
    assert len(records) >= 7
    assert all(r.status.value == "SUCCEEDED" for r in records)
    assert all(r.event.dagster_event.event_specific_data.passed for r in records)


def test_quotes_are_verbatim_and_inside_their_episode(demo):
    settings, _, _ = demo
    store = LocalArtifactStore(settings.artifact_root)
    _, rows = query(
        store,
        """
        SELECT q.key, q.quote_id, q.text,
               substr(t.text, q.char_start + 1, q.char_end - q.char_start),
               q.timestamp_start_ms, q.timestamp_end_ms, t.duration_seconds, i.grounded
        FROM quotes q JOIN transcripts t USING (key)
        JOIN insights i ON i.key = q.key AND i.insight_id = q.insight_id""",
    )
    assert rows
    for key, quote_id, text, sliced, start_ms, end_ms, duration, grounded in rows:
        assert text == sliced, (key, quote_id)
        assert 0 <= start_ms <= end_ms <= duration * 1000 + 500
        assert grounded
    _, (row,) = query(store, "SELECT count(*), count(*) FILTER (WHERE grounded) FROM insights")
    assert row[0] >= 7 and row[1] == row[0]


def test_corpus_tables_cover_the_enrichment(demo):
    settings, _, _ = demo
    store = LocalArtifactStore(settings.artifact_root)
    counts = {
        t: query(store, f"SELECT count(DISTINCT key) FROM {t}")[1][0][0]
        for t in ("summaries", "insights", "quotes", "mentions", "chunks")
    }
    assert counts == dict.fromkeys(counts, 7)
    _, entities = query(store, "SELECT entity_id, type FROM entities")
    assert ("person:demo-host", "Person") in entities
    _, hosts = query(store, "SELECT source_id, target_id FROM relations WHERE type = 'HOSTS'")
    assert ("person:demo-host", "podcast:voices") in hosts
    _, chunk_rows = query(
        store,
        """
        SELECT c.text, substr(t.text, c.char_start + 1, c.char_end - c.char_start)
        FROM chunks c JOIN transcripts t USING (key)""",
    )
    assert all(a == b for a, b in chunk_rows)
    graphml = store.path("_corpus/graph/graph.graphml")
    import networkx as nx

    assert nx.read_graphml(graphml).number_of_nodes() > 7


def test_check_fails_on_a_corrupted_quote(demo, tmp_path):
    settings, instance, reports = demo
    store = LocalArtifactStore(settings.artifact_root)
    key = reports[0].episodes[0].key
    rel = episode_path(key, "gi.json")
    backup = tmp_path / "gi.json"
    shutil.copyfile(store.path(rel), backup)
    gi = store.read_json(rel)
    quote = gi["quotes"][0]
    quote["text"] = quote["text"][:-1] + ("X" if quote["text"][-1] != "X" else "Y")
    store.write_json(rel, gi)
    try:
        # Re-running the asset reuses the (corrupted) artifact, as its inputs are unchanged; the
        # check reads it back from storage and must catch the corruption.
        check_job = dg.define_asset_job(
            "check_only",
            selection=dg.AssetSelection.assets("grounded_insights")
            | dg.AssetSelection.checks(grounded_insights_verbatim),
        )
        base = build_definitions(settings)
        defs = dg.Definitions.merge(base, dg.Definitions(jobs=[check_job]))
        result = defs.resolve_job_def("check_only").execute_in_process(
            instance=instance, partition_key=key, raise_on_error=False
        )
        (evaluation,) = result.get_asset_check_evaluations()
        assert not evaluation.passed
        assert quote["id"] in evaluation.description and key in evaluation.description
    finally:
        shutil.copyfile(backup, store.path(rel))


def test_enrichment_sensor_follows_new_transcripts_only(demo):
    settings, instance, reports = demo
    requests, cursor = enrichment_requests(instance, None)
    assert requests == [], "podcast ingest already enriched every transcript"
    assert cursor is not None
    key = reports[1].episodes[0].key
    job = build_definitions(settings).resolve_job_def("episode_job")
    assert job.execute_in_process(instance=instance, partition_key=key).success
    before = cursor
    requests, cursor = enrichment_requests(instance, cursor)
    assert [r.partition_key for r in requests] == [key]
    assert requests[0].tags["podcast/queue"] == "enrichment"
    again, _ = enrichment_requests(instance, cursor)
    assert again == []
    # An enrichment run already in progress for the episode (podcast ingest --remote launched
    # it) is not requested twice.
    queued = dg.DagsterRun(
        job_name="enrichment_job",
        status=dg.DagsterRunStatus.STARTED,
        tags={"dagster/partition": key},
    )
    instance.add_run(queued)
    try:
        assert enrichment_requests(instance, before)[0] == []
    finally:
        instance.delete_run(queued.run_id)
    assert [r.partition_key for r in enrichment_requests(instance, before)[0]] == [key]


def test_rerun_reuses_unchanged_enrichment(demo):
    settings, instance, reports = demo
    key = reports[0].episodes[-1].key
    store = LocalArtifactStore(settings.artifact_root)
    before = json.loads(store.path(episode_path(key, "gi.json")).read_text())
    job = build_definitions(settings).resolve_job_def("enrichment_job")
    assert job.execute_in_process(instance=instance, partition_key=key).success
    event = instance.get_latest_materialization_event(dg.AssetKey("summary"))
    assert event.asset_materialization.metadata["outcome"].value == "reused"
    assert json.loads(store.path(episode_path(key, "gi.json")).read_text()) == before


@pytest.mark.parametrize(
    ("query", "spoken"),
    [
        ("a president urging citizens to serve the nation", "ask what you can do for your country"),
        ("someone disappeared behind a drape", "vanished behind the curtain"),
        ("the skyline looks very far away", "horizon seems extremely distant"),
    ],
)
def test_search_finds_paraphrased_content(demo, query, spoken):
    settings, _, _ = demo
    from podcast_core.corpus_search import search_corpus
    from podcast_core.embed import Embedder

    hits = search_corpus(
        LocalArtifactStore(settings.artifact_root),
        query,
        Embedder(settings.enrichment.embedding_model),
        limit=3,
    )
    assert spoken in hits[0]["text"].lower()
    assert set(hits[0]) == {"key", "title", "feed", "start", "end", "text", "score", "insight"}
    assert hits[0]["insight"] is not None
    assert 0 <= hits[0]["start"] < hits[0]["end"]


def test_search_filters_by_feed_and_date(demo):
    settings, _, _ = demo
    from click.testing import CliRunner

    from podcast_assets.cli import main

    def run(*args):
        result = CliRunner().invoke(main, ["search", *args, "--json"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    text = "ask what you can do for your country"
    assert {h["feed"] for h in run(text)} == {"speeches", "voices"}
    assert {h["feed"] for h in run(text, "--feed", "voices")} == {"voices"}
    store = LocalArtifactStore(settings.artifact_root)
    _, rows = query(store, "SELECT key FROM episodes WHERE published >= '2026-11-19'")
    recent = {r[0] for r in rows}
    assert recent and {h["key"] for h in run(text, "--since", "2026-11-19")} <= recent
    bad = CliRunner().invoke(main, ["search", text, "--since", "yesterday"])
    assert bad.exit_code == 1 and "not a date" in bad.output


def test_weekly_digest_text_audio_and_feed(demo):
    settings, instance, _ = demo
    import av
    from click.testing import CliRunner

    from podcast_assets.cli import main
    from podcast_core.digest_feed import is_digest_feed
    from podcast_core.feeds import parse_feed

    result = CliRunner().invoke(main, ["digest", "--week", "2026-W46", "--format", "json"])
    assert result.exit_code == 0, result.output
    digest = json.loads(result.stdout)
    assert digest["week"] == "2026-W46" and digest["schema_version"]
    _, rows = query(
        LocalArtifactStore(settings.artifact_root),
        "SELECT key FROM episodes WHERE published >= '2026-11-09' AND published < '2026-11-16'",
    )
    shown = {e["key"] for feed in digest["episodes"] for e in feed["episodes"]}
    assert shown == {r[0] for r in rows} and shown
    event = instance.get_latest_materialization_event(dg.AssetKey("weekly_digest"))
    assert "2026-W46" in event.asset_materialization.metadata["digest"].value

    store = LocalArtifactStore(settings.artifact_root)
    with av.open(str(store.path("_digests/2026-W46/digest.mp3"))) as container:
        duration = container.duration / 1_000_000
    chapters = store.read_json("_digests/2026-W46/chapters.json")["chapters"]
    assert chapters[0]["startTime"] == 0 and all(
        a["startTime"] < b["startTime"] < duration for a, b in itertools.pairwise(chapters)
    )
    feed_xml = store.read_bytes("_digests/feed.xml")
    assert is_digest_feed(feed_xml)
    parsed = parse_feed(feed_xml, feed_slug="digest", base_url="https://example.com/_digests/")
    (item,) = parsed.episodes
    assert item.audio_url.endswith("2026-W46/digest.mp3")
    assert item.duration_seconds == pytest.approx(duration, abs=1.5)

    runs = len(instance.get_runs())
    again = CliRunner().invoke(main, ["digest", "--week", "2026-W46"])
    assert again.exit_code == 0 and len(instance.get_runs()) == runs
    assert again.stdout.startswith("# Podcast digest: week 2026-W46")


def test_empty_week_gives_an_honest_digest_and_bad_weeks_are_errors(demo):
    from click.testing import CliRunner

    from podcast_assets.cli import main

    empty = CliRunner().invoke(main, ["digest", "--week", "2025-W10"])
    assert empty.exit_code == 0, empty.output
    assert "no new episodes" in empty.output.lower()
    early = CliRunner().invoke(main, ["digest", "--week", "2024-W10"])
    assert early.exit_code == 1 and "no digest partition" in early.output
    bad = CliRunner().invoke(main, ["digest", "--since", "a while"])
    assert bad.exit_code == 1 and "--since" in bad.output


def test_our_digest_feed_is_never_ingested(demo, feed_server):
    settings, instance, _ = demo
    from podcast_assets.runner import IngestError

    store = LocalArtifactStore(settings.artifact_root)
    if not store.exists("_digests/feed.xml"):
        pytest.fail("the digest test must run first and publish the feed")
    url = feed_server.set("/digest.xml", store.read_bytes("_digests/feed.xml"))
    with pytest.raises(IngestError, match="own weekly digest feed"):
        ingest(url, settings, instance)
