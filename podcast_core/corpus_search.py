"""Hybrid search over the corpus, with each hit linked to the grounded insight it supports."""

from __future__ import annotations

import datetime as dt
from typing import Any

from podcast_core.corpus import connect, query_view
from podcast_core.embed import Embedder
from podcast_core.storage import ArtifactStore


def search_corpus(
    store: ArtifactStore,
    query: str,
    embedder: Embedder,
    *,
    feed: str | None = None,
    since: str | None = None,
    limit: int = 10,
) -> list[dict[str, Any]]:
    """BM25 + vector search over every episode's chunks, fused with reciprocal rank fusion.

    Returns:
        ``[{"key", "title", "feed", "start", "end", "text", "score", "insight"}]``, best first;
        ``insight`` is the text of the grounded insight whose quotes overlap the hit, or None.
    """
    from podcast_core.search import cached_index

    if since is not None:
        try:
            dt.date.fromisoformat(since)
        except ValueError as exc:
            raise ValueError(f"--since {since!r} is not a date (YYYY-MM-DD)") from exc
    # On S3 the index is built from (and cached against) the local mirror of the chunk files.
    view = query_view(store)
    con = connect(view)
    try:
        episodes = {
            key: {
                "feed": feed_name,
                "title": title,
                "published": published.isoformat() + "Z" if published else None,
            }
            for key, feed_name, title, published in con.execute(
                "SELECT key, feed, title, published FROM episodes"
            ).fetchall()
        }
        index = cached_index(view.root, episodes)
        if len(index.keys) == 0:
            return []
        hits = index.search(query, embedder, feed=feed, since=since, limit=limit)
        keys = sorted({h.key for h in hits})
        ranges, quotes = {}, {}
        if keys:
            ranges = {
                (k, c): (s, e)
                for k, c, s, e in con.execute(
                    "SELECT key, chunk_id, char_start, char_end FROM chunks WHERE key IN "
                    "(SELECT unnest($1))",
                    [keys],
                ).fetchall()
            }
            for k, s, e, text, score in con.execute(
                """SELECT q.key, q.char_start, q.char_end, i.text, i.support_score
                   FROM quotes q JOIN insights i ON i.key = q.key AND i.insight_id = q.insight_id
                   WHERE i.grounded AND q.key IN (SELECT unnest($1))""",
                [keys],
            ).fetchall():
                quotes.setdefault(k, []).append((s, e, text, score))
    finally:
        con.close()
    results = []
    for hit in hits:
        start, end = ranges.get((hit.key, hit.chunk_id), (None, None))
        # The insight whose supporting quote shares the most characters with the hit.
        overlapping = [
            (min(e, end) - max(s, start), score, text)
            for s, e, text, score in quotes.get(hit.key, [])
            if start is not None and s < end and e > start
        ]
        results.append(
            {
                "key": hit.key,
                "title": hit.title,
                "feed": hit.feed,
                "start": round(hit.start, 2),
                "end": round(hit.end, 2),
                "text": hit.text,
                "score": round(hit.score, 6),
                "insight": max(overlapping)[2] if overlapping else None,
            }
        )
    return results
