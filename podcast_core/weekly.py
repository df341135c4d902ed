"""The weekly digest stages behind the Dagster assets: the written digest, its audio, its feed.

Layout under the artifact root::

    _digests/{week}/digest.json, digest.md, digest.html    weekly_digest
    _digests/{week}/digest.mp3, chapters.json, audio.json   digest_audio
    _digests/feed.xml                                       digest_feed
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from podcast_core.corpus import connect, query_view
from podcast_core.digest import (
    DIGEST_VERSION,
    build_digest,
    render_html,
    render_markdown,
    week_bounds,
    week_of,
)
from podcast_core.embed import Embedder
from podcast_core.storage import ArtifactStore

DIGEST_DIR = "_digests"
FEED_FILE = f"{DIGEST_DIR}/feed.xml"
DIGEST_FEED_TITLE = "Podcast Intelligence: the week in your feeds"


def week_dir(week: str) -> str:
    """The relative directory of one week's digest files."""
    return f"{DIGEST_DIR}/{week}"


def week_for_partition(partition_key: str) -> str:
    """The ISO week label of a weekly partition (its Monday, ``YYYY-MM-DD``)."""
    return week_of(dt.date.fromisoformat(partition_key))


def inputs_fingerprint(store: ArtifactStore, week: str) -> str:
    """A digest of everything the week's digest reads.

    That is this week's and the previous week's episodes and their enrichment, so a changed
    corpus makes the digest stale.
    """
    start, end = week_bounds(week)
    lo = (start - dt.timedelta(days=7)).replace(tzinfo=None)
    con = connect(store)
    try:
        rows = con.execute(
            """SELECT e.key, e.published, t.created_at, s.created_at,
                      (SELECT count(*) FROM insights i WHERE i.key = e.key),
                      (SELECT sum(count) FROM mentions m WHERE m.key = e.key)
               FROM episodes e LEFT JOIN transcripts t USING (key)
               LEFT JOIN summaries s USING (key)
               WHERE e.published >= $1 AND e.published < $2 ORDER BY e.key""",
            [lo, end.replace(tzinfo=None)],
        ).fetchall()
    finally:
        con.close()
    return hashlib.sha256(json.dumps([DIGEST_VERSION, rows], default=str).encode()).hexdigest()[:24]


def is_current(store: ArtifactStore, week: str) -> bool:
    """Whether the stored digest (and its audio) were made from the corpus as it is now."""
    rel = f"{week_dir(week)}/digest.json"
    if not store.exists(rel) or not store.exists(f"{week_dir(week)}/audio.json"):
        return False
    return store.read_json(rel).get("input_fingerprint") == inputs_fingerprint(store, week)


def materialize_digest(
    store: ArtifactStore, week: str, embedder: Embedder | None, budget_minutes: float
) -> dict[str, Any]:
    """Write ``digest.json``, ``digest.md`` and ``digest.html`` for one ISO week."""
    # Everything is read from one query view: on S3, one sync of the mirror, not one per read.
    view = query_view(store)
    fingerprint = inputs_fingerprint(view, week)
    con = connect(view)
    try:
        digest = build_digest(
            con, week, store=view, embedder=embedder, budget_minutes=budget_minutes
        )
    finally:
        con.close()
    digest["input_fingerprint"] = fingerprint
    markdown = render_markdown(digest)
    folder = week_dir(week)
    store.write_json(f"{folder}/digest.json", digest)
    store.write_bytes(f"{folder}/digest.md", markdown.encode())
    store.write_bytes(f"{folder}/digest.html", render_html(digest).encode())
    return digest | {"markdown": markdown}


def materialize_digest_audio(store: ArtifactStore, week: str, backend: Any) -> dict[str, Any]:
    """Speak the week's digest into ``digest.mp3`` with ``chapters.json`` (Podcasting 2.0)."""
    from podcast_core.speech import digest_script, render_digest_audio

    folder = week_dir(week)
    digest = store.read_json(f"{folder}/digest.json")
    sections = digest_script(digest)
    # Rendered in the store's scratch space and published whole (a rename locally, an upload
    # on S3).
    with tempfile.TemporaryDirectory(dir=store.scratch_dir(), prefix=f"digest-{week}.") as work:
        mp3 = Path(work) / "digest.mp3"
        result = render_digest_audio(sections, backend, mp3, title=f"Weekly digest {week}")
        store.move_in(f"{folder}/digest.mp3", mp3)
    store.write_json(f"{folder}/chapters.json", result["chapters"])
    manifest = {
        "week": week,
        "file": "digest.mp3",
        "bytes": result["bytes"],
        "duration_seconds": result["duration_seconds"],
        "backend": result["backend"],
        "sections": result["sections"],
        "digest_fingerprint": digest.get("input_fingerprint"),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    store.write_json(f"{folder}/audio.json", manifest)
    return manifest


def public_base(store: ArtifactStore, public_url: str) -> str:
    """Where ``_digests/`` is served: the public URL, else the store's own (file:// or s3://)."""
    if public_url:
        return public_url.rstrip("/") + f"/{DIGEST_DIR}/"
    return store.uri(DIGEST_DIR) + "/"


def materialize_digest_feed(store: ArtifactStore, public_url: str) -> dict[str, Any]:
    """Write ``feed.xml``: every week with audio, as a subscribable podcast feed."""
    from podcast_core.digest_feed import build_digest_feed

    base = public_base(store, public_url)
    entries = []
    for rel in store.list(f"{DIGEST_DIR}/*/audio.json"):
        audio = store.read_json(rel)
        week = audio["week"]
        digest = store.read_json(f"{week_dir(week)}/digest.json")
        stats = digest.get("stats", {})
        entries.append(
            {
                "week": week,
                "title": f"Week {week}: {stats.get('episodes', 0)} new episodes, "
                f"{stats.get('clusters', 0)} shared stories",
                "published": digest["end"],
                # Absolute: urljoin leaves relative links alone under schemes it does not know
                # (s3://), so they would stay relative in the feed.
                "audio_path_url": f"{base}{week}/digest.mp3",
                "audio_bytes": audio["bytes"],
                "duration_seconds": audio["duration_seconds"],
                "chapters_url": f"{base}{week}/chapters.json",
                "html_url": f"{base}{week}/digest.html",
                "summary": render_html(digest),
            }
        )
    xml = build_digest_feed(
        entries,
        title=DIGEST_FEED_TITLE,
        link=base,
        base_url=base,
        description="A spoken weekly digest of the podcasts you follow: shared stories, "
        "grounded insights with quotes, trends and a listen list.",
        feed_url=base + "feed.xml",
    )
    store.write_bytes(FEED_FILE, xml)
    return {"episodes": len(entries), "bytes": len(xml), "url": base + "feed.xml"}
