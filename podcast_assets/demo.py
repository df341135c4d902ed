"""``podcast demo``: serve the bundled sample corpus on loopback and ingest it end to end."""

import contextlib
import functools
import http.server
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from podcast_core.catalog import Catalog
from podcast_core.settings import SETTINGS_FILE, load_settings, write_settings

DEMO_SITE = Path(__file__).resolve().parents[1] / "demo" / "site"
DEMO_FEEDS = {"speeches": "feeds/speeches.xml", "voices": "feeds/voices.xml"}
DEMO_PROFILE = {
    "whisper": {"model": "packaged:tiny.en"},
    "enrichment": {
        "embedding_model": "packaged:all-MiniLM-L6-v2",
        "summary_backend": "extractive",
        "summary_model": "packaged:all-MiniLM-L6-v2",
        "ner_backend": "spacy",
        "ner_model": "packaged:en_core_web_sm",
    },
}
"""Offline models that ship in PyPI packages (see ../shared/notes/offline-models.md)."""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        pass


@contextlib.contextmanager
def serve_directory(root: Path, port: int = 0) -> Iterator[str]:
    """Serve ``root`` over HTTP on 127.0.0.1 in a background thread; yields the base URL.

    The stdlib handler answers ``If-Modified-Since`` with 304, so feeds polled twice are cheap.
    """
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


DEMO_QUERY = "a president urging citizens to serve the nation"


def print_report(settings, instance, failed: int, feeds: int) -> None:
    """Print what the demo built: transcripts, summaries, insights, graph, a search."""
    from podcast_core.corpus import query
    from podcast_core.corpus_search import search_corpus
    from podcast_core.embed import Embedder
    from resources import open_artifact_store

    store = open_artifact_store(settings)

    def rows(sql: str) -> list[tuple]:
        return query(store, sql)[1]

    episodes = rows("""
        SELECT e.feed, t.source, t.model, round(t.duration_seconds, 1),
               round(t.realtime_factor, 1), s.lead
        FROM episodes e LEFT JOIN transcripts t USING (key) LEFT JOIN summaries s USING (key)
        ORDER BY e.feed, e.published""")
    print("\nfeed       transcript       model             audio s  speed  summary lead")
    for feed, source, model, seconds, speed, lead in episodes:
        print(
            f"{feed:<10} {source or '-':<16} {model or '-':<17} {seconds or 0:>7} "
            f"{speed or '-':>6}  {(lead or '')[:70]}"
        )
    ((insights, grounded, quotes),) = rows(
        "SELECT count(*), count(*) FILTER (WHERE grounded), "
        "(SELECT count(DISTINCT key || quote_id) FROM quotes) FROM insights"
    )
    entities = dict(rows("SELECT type, count(*) FROM entities GROUP BY type"))
    relations = rows("SELECT count(*) FROM relations")[0][0]
    print(f"""
Grounded insights: {insights} insights, {grounded} grounded, {quotes} verbatim timed quotes
Knowledge graph:   {entities.get("Person", 0)} people, {entities.get("Organization", 0)} \
organizations, {entities.get("Topic", 0)} topics, {relations} relations \
(GraphML: {store.location("_corpus/graph/graph.graphml")})""")
    hits = search_corpus(store, DEMO_QUERY, Embedder(settings.enrichment.embedding_model), limit=1)
    if hits:
        hit = hits[0]
        print(f"""Search:            podcast search "{DEMO_QUERY}"
                   -> {hit["feed"]} / {hit["title"]} at {hit["start"]:.0f}s: \
{hit["text"][:70]}""")
    home = os.environ["DAGSTER_HOME"]
    print(f"""
Built {len(episodes)} episodes from {feeds} feeds ({failed} failed).
Artifacts: {settings.artifact_root}
Query the corpus:
    .venv/bin/podcast corpus sql "SELECT key, lead FROM summaries"
    .venv/bin/podcast search "someone vanished behind a curtain"
Open the Dagster UI:
    DAGSTER_HOME={home} PODCAST_DATA_DIR={settings.data_dir} .venv/bin/dagster dev
    then browse http://127.0.0.1:3000 (asset groups: ingestion, enrichment)""")


def run_demo(port: int, serve: bool, as_json: bool) -> int:
    """Ingest the demo feeds; returns the process exit code."""
    from podcast_assets.runner import get_instance, ingest

    settings = load_settings()
    path = settings.data_dir / SETTINGS_FILE
    stored = json.loads(path.read_text()) if path.exists() else {}
    # Fill in the demo profile without overriding anything the user set.
    merged = {
        section: DEMO_PROFILE.get(section, {}) | stored.get(section, {}) for section in DEMO_PROFILE
    } | {k: v for k, v in stored.items() if k not in DEMO_PROFILE}
    if merged != stored:
        write_settings(settings.data_dir, merged)
        settings = load_settings()
    echo = functools.partial(print, file=sys.stderr)
    echo(f"data directory: {settings.data_dir} (Whisper model {settings.whisper.model})")
    instance = get_instance(settings)
    try:
        server = serve_directory(DEMO_SITE, port)
        base = server.__enter__()
    except OSError:
        server = serve_directory(DEMO_SITE, 0)
        base = server.__enter__()
    failed, built = 0, False
    try:
        echo(f"serving the sample corpus at {base}/")
        catalog = Catalog(settings.catalog_path)
        reports = []
        for name, path in DEMO_FEEDS.items():
            url = f"{base}/{path}"
            existing = next((f for f in catalog.feeds() if f.name == name), None)
            if existing and existing.url != url:
                catalog.update(name, url=url)
            report = ingest(url, settings, instance, limit=10, name=name, echo=echo)
            failed += len(report.failed)
            reports.append(report)
        print_report(settings, instance, failed, len(reports))
        built = True
        if serve:
            print(
                f"\nServing the sample feeds at {base}/ until Ctrl-C, for the rss_sensor to poll."
            )
            threading.Event().wait()
    except KeyboardInterrupt:
        # Ctrl-C while serving ends the demo normally; before the report, it is not a result.
        if not built:
            echo("demo interrupted")
            return 130
    finally:
        server.__exit__(None, None, None)
    return 1 if failed else 0
