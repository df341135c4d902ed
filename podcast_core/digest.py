"""The weekly digest: what the followed feeds published in one ISO week, ranked and cross-linked.

:func:`build_digest` reads the corpus views (:mod:`podcast_core.corpus`) for the episodes published
in ``[start, end)`` of an ISO week (Monday 00:00 UTC to the next Monday, by SQL on ``published``,
never by listing partitions) and the chunk vectors of those episodes only. It returns a plain dict,
written as ``digest.json`` by the caller; :func:`render_markdown` and :func:`render_html` turn it
into a readable page.

``digest.json`` (schema version :data:`DIGEST_VERSION`)::

    {
      "schema_version": "1",
      "week": "2026-W47",                         # ISO week label
      "start": "2026-11-16T00:00:00Z",            # Monday 00:00 UTC, inclusive
      "end": "2026-11-23T00:00:00Z",              # next Monday 00:00 UTC, exclusive
      "generated_at": "2026-11-23T06:00:00Z",
      "episodes": [                               # one entry per feed, feeds by name
        {"feed", "feed_title",
         "episodes": [{"key", "title", "published", "audio_url", "duration_seconds", "lead"}]}
      ],                                          # episodes by published time
      "insights": [                               # at most max_insights, see "Insights" below
        {"key", "feed", "title", "text", "insight_type", "support_score",
         "quote": {"text", "start_seconds", "end_seconds", "speaker"},
         "link"}                                  # audio_url + "#t=" + whole seconds, or null
      ],
      "clusters": [                               # same story covered by two or more feeds
        {"id", "episodes": [key], "feeds": [feed], "titles": [title], "similarity"}
      ],
      "trends": [                                 # entity mentions, this week vs the week before
        {"entity_id", "name", "type", "this_week", "previous_week", "change"}
      ],
      "listen_list": {"budget_minutes", "total_minutes",
                      "items": [{"key", "title", "feed", "minutes", "score", "reason"}]},
      "stats": {"episodes", "feeds", "minutes", "grounded_insights", "insights_shown",
                "episodes_with_vectors", "clusters", "trending_entities", "listen_list_items",
                "episodes_without_duration"}
    }

Insights
    Grounded insights with at least one supporting quote. Feeds take turns: every feed's strongest
    insight (highest ``support_score``) first, ordered by score, then every feed's second
    strongest, and so on, so one prolific feed cannot fill the list. The quote shown is the
    insight's supporting quote with the highest confidence (earliest on ties).

Clusters
    An episode's vector is the mean of its chunk vectors (``chunks.parquet``), normalized. Two
    episodes of *different* feeds whose cosine similarity is above :data:`CLUSTER_THRESHOLD` are
    the same story; a cluster is a connected component of those links (so it may hold two
    episodes of one feed, joined through another feed). Episodes of the same feed are never linked
    directly: a show's episodes resemble each other (same hosts, intro, format) whatever the story.
    Only chunk files written by the digest embedder's model are used (vectors of different models
    are not comparable); without an embedder, or without vectors, there are no clusters.
    ``similarity`` is the mean cosine similarity over the cluster's cross-feed pairs.

Trends
    Sum of ``mentions.count`` per entity (Person, Organization, Topic) over this week's episodes
    and over the previous week's; only entities whose count changed, by ``|change|`` (rising
    first on ties, then by name), at most :data:`MAX_TRENDS`.

Listen list
    Every episode of the week gets a score: the sum of its grounded insights' support scores (their
    count times their mean support), plus :data:`CLUSTER_BONUS` when it is part of a cross-feed
    cluster, plus :data:`TREND_BONUS` per rising entity (of ``trends``) it mentions. Episodes are
    taken greedily by score (shorter first on ties): an episode is added when it fits in what is
    left of the budget and skipped otherwise, never truncated; an episode longer than the whole
    budget, or of unknown duration, is never picked.

A week without episodes gives an empty digest (every list empty, every stat zero) and the rendered
pages say that nothing new was published that week.
"""

from __future__ import annotations

import html
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from podcast_core.keys import InvalidKeyError
from podcast_core.storage import ArtifactStore, episode_path

if TYPE_CHECKING:
    from podcast_core.embed import Embedder

DIGEST_VERSION = "1"
"""Schema version of the digest dict, written as ``schema_version``."""

CLUSTER_THRESHOLD = 0.6
"""Cosine similarity of two episode vectors (normalized mean of their chunk vectors) above which
two episodes from different feeds are the same story. Same-story episodes of the all-MiniLM-L6-v2
model score about 0.7-0.9, unrelated ones below 0.3."""

CLUSTER_BONUS = 1.0
"""Listen-list score added for an episode covered by another feed too."""

TREND_BONUS = 0.5
"""Listen-list score added per rising entity an episode mentions."""

MAX_TRENDS = 20
"""At most this many trends are reported (the strongest changes)."""

_WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")
_VECTOR_MODEL_META = b"podcast.embedding_model"


# --------------------------------------------------------------------------------------------
# Weeks


def week_bounds(week: str) -> tuple[datetime, datetime]:
    """The time range of an ISO week.

    Args:
        week: ``"YYYY-Www"``, for example ``"2026-W47"``.

    Returns:
        ``(start, end)``: Monday 00:00 UTC of that week and of the next (``end`` exclusive), both
        timezone-aware.

    Raises:
        ValueError: if ``week`` is not an ISO week label or the year has no such week.
    """
    match = _WEEK_RE.match(week.strip()) if isinstance(week, str) else None
    if not match:
        raise ValueError(f"invalid week {week!r}: expected an ISO week such as '2026-W47'")
    year, number = int(match[1]), int(match[2])
    try:
        start = datetime.fromisocalendar(year, number, 1).replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"invalid week {week!r}: {year} has no ISO week {number}") from exc
    return start, start + timedelta(days=7)


def week_of(date: date | datetime | str) -> str:
    """The ISO week label of a date or moment.

    Args:
        date: A date, a datetime (naive means UTC; aware ones are converted to UTC) or an ISO-8601
            string of either.

    Returns:
        ``"YYYY-Www"``; the ISO year may differ from the calendar year around New Year
        (2027-01-01 is in ``"2026-W53"``).
    """
    value: Any = date
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip())
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC)
    iso = value.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


# --------------------------------------------------------------------------------------------
# Building


def build_digest(
    con: duckdb.DuckDBPyConnection,
    week: str,
    *,
    store: ArtifactStore,
    embedder: Embedder | None = None,
    budget_minutes: float = 60,
    max_insights: int = 10,
) -> dict[str, Any]:
    """Build the digest of one ISO week (schema in the module docstring).

    Args:
        con: A corpus connection (:func:`podcast_core.corpus.connect`).
        week: ISO week label, ``"2026-W47"``.
        store: The artifact store the corpus reads, for this week's ``chunks.parquet`` files.
        embedder: The embedder whose model wrote the chunk vectors; only its ``model_id`` is used
            (the model is never loaded). None disables clustering.
        budget_minutes: Listening time for the listen list.
        max_insights: How many insights to show.

    Returns:
        The digest dict, JSON-serializable.

    Raises:
        ValueError: if ``week`` is not a valid ISO week or ``budget_minutes`` is negative.
    """
    start, end = week_bounds(week)
    if budget_minutes < 0 or not math.isfinite(budget_minutes):
        raise ValueError(f"budget_minutes must be a non-negative number, got {budget_minutes!r}")
    label = week_of(start)
    # The corpus stores published as a naive UTC TIMESTAMP.
    lo, hi = start.replace(tzinfo=None), end.replace(tzinfo=None)
    episodes = _week_episodes(con, lo, hi)
    digest: dict[str, Any] = {
        "schema_version": DIGEST_VERSION,
        "week": label,
        "start": _iso(start),
        "end": _iso(end),
        "generated_at": _iso(datetime.now(UTC)),
    }
    if not episodes:
        return {**digest, **_empty_sections(budget_minutes)}

    by_key = {e["key"]: e for e in episodes}
    insights, grounded = _insights(con, lo, hi, by_key, max(0, max_insights))
    vector_keys, matrix = _episode_vectors(store, list(by_key), embedder)
    clusters = _clusters(label, vector_keys, matrix, by_key)
    trends, trends_total = _trends(con, lo - timedelta(days=7), lo, hi)
    listen = _listen_list(con, lo, hi, episodes, grounded, clusters, trends, budget_minutes)

    feeds: dict[str, dict[str, Any]] = {}
    for e in episodes:
        entry = feeds.setdefault(
            e["feed"], {"feed": e["feed"], "feed_title": e["feed_title"], "episodes": []}
        )
        entry["episodes"].append({k: e[k] for k in _EPISODE_FIELDS})
    seconds = [e["duration_seconds"] for e in episodes if e["duration_seconds"] is not None]
    digest.update(
        episodes=list(feeds.values()),
        insights=insights,
        clusters=clusters,
        trends=trends,
        listen_list=listen,
        stats={
            "episodes": len(episodes),
            "feeds": len(feeds),
            "minutes": round(sum(seconds) / 60, 1),
            "grounded_insights": sum(count for count, _ in grounded.values()),
            "insights_shown": len(insights),
            "episodes_with_vectors": len(vector_keys),
            "clusters": len(clusters),
            "trending_entities": trends_total,
            "listen_list_items": len(listen["items"]),
            "episodes_without_duration": len(episodes) - len(seconds),
        },
    )
    return digest


_EPISODE_FIELDS = ("key", "title", "published", "audio_url", "duration_seconds", "lead")


def _empty_sections(budget_minutes: float) -> dict[str, Any]:
    return {
        "episodes": [],
        "insights": [],
        "clusters": [],
        "trends": [],
        "listen_list": {"budget_minutes": budget_minutes, "total_minutes": 0, "items": []},
        "stats": {
            "episodes": 0,
            "feeds": 0,
            "minutes": 0,
            "grounded_insights": 0,
            "insights_shown": 0,
            "episodes_with_vectors": 0,
            "clusters": 0,
            "trending_entities": 0,
            "listen_list_items": 0,
            "episodes_without_duration": 0,
        },
    }


def _iso(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _week_episodes(
    con: duckdb.DuckDBPyConnection, lo: datetime, hi: datetime
) -> list[dict[str, Any]]:
    rows = con.execute(
        """
        SELECT e.key, e.feed, coalesce(e.feed_title, e.feed), e.title, e.published, e.audio_url,
            coalesce(e.duration_seconds, t.duration_seconds), s.lead
        FROM episodes e
            LEFT JOIN (SELECT key, any_value(lead) AS lead FROM summaries GROUP BY key) s
                ON s.key = e.key
            LEFT JOIN (SELECT key, max(duration_seconds) AS duration_seconds FROM transcripts
                       GROUP BY key) t ON t.key = e.key
        WHERE e.published >= $1 AND e.published < $2
        ORDER BY e.feed, e.published, e.key""",
        [lo, hi],
    ).fetchall()
    return [
        {
            "key": key,
            "feed": feed,
            "feed_title": feed_title,
            "title": title or key,
            "published": _iso(published),
            "audio_url": audio_url,
            "duration_seconds": float(duration) if duration is not None else None,
            "lead": lead,
        }
        for key, feed, feed_title, title, published, audio_url, duration, lead in rows
    ]


def _insights(
    con: duckdb.DuckDBPyConnection,
    lo: datetime,
    hi: datetime,
    by_key: dict[str, dict[str, Any]],
    limit: int,
) -> tuple[list[dict[str, Any]], dict[str, tuple[int, float]]]:
    """The insights to show, and (grounded count, support sum) per episode."""
    week = "SELECT key FROM episodes WHERE published >= $1 AND published < $2"
    grounded = {
        key: (int(count), float(support or 0.0))
        for key, count, support in con.execute(
            f"""
            SELECT key, count(*), sum(coalesce(support_score, 0))
            FROM insights WHERE grounded AND key IN ({week}) GROUP BY key""",
            [lo, hi],
        ).fetchall()
    }
    rows = con.execute(
        f"""
        WITH q AS (
            SELECT key, insight_id, text, timestamp_start_ms, timestamp_end_ms, speaker,
                row_number() OVER (
                    PARTITION BY key, insight_id
                    ORDER BY confidence DESC NULLS LAST, timestamp_start_ms NULLS LAST, quote_id
                ) AS pick
            FROM quotes WHERE key IN ({week}))
        SELECT i.key, i.insight_id, i.text, i.insight_type, coalesce(i.support_score, 0),
            coalesce(i.position_hint, 0), q.text, q.timestamp_start_ms, q.timestamp_end_ms,
            q.speaker
        FROM insights i JOIN q ON q.key = i.key AND q.insight_id = i.insight_id AND q.pick = 1
        WHERE i.grounded AND i.key IN ({week})""",
        [lo, hi],
    ).fetchall()
    per_feed: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        per_feed[by_key[row[0]]["feed"]].append(row)
    ranked = []
    for feed, items in per_feed.items():
        items.sort(key=lambda r: (-r[4], by_key[r[0]]["published"], r[0], r[5], r[1]))
        # Round robin: turn n holds every feed's n-th strongest insight, strongest first.
        ranked.extend(
            ((turn, -row[4], feed, row[0], row[1]), row) for turn, row in enumerate(items)
        )
    ranked.sort(key=lambda t: t[0])
    insights = []
    for _, row in ranked[:limit]:
        key, _, text, insight_type, support, _, quote_text, start_ms, end_ms, speaker = row
        episode = by_key[key]
        start = start_ms / 1000 if start_ms is not None else None
        insights.append(
            {
                "key": key,
                "feed": episode["feed"],
                "title": episode["title"],
                "text": text,
                "insight_type": insight_type,
                "support_score": round(float(support), 4),
                "quote": {
                    "text": quote_text,
                    "start_seconds": start,
                    "end_seconds": end_ms / 1000 if end_ms is not None else None,
                    "speaker": speaker,
                },
                "link": _deep_link(episode["audio_url"], start),
            }
        )
    return insights, grounded


def _deep_link(audio_url: str | None, seconds: float | None) -> str | None:
    if not audio_url:
        return None
    if seconds is None:
        return audio_url
    # A media fragment (#t=SECONDS) on the enclosure: players and browsers seek to it.
    return f"{audio_url.split('#', 1)[0]}#t={int(seconds)}"


def _episode_vectors(
    store: ArtifactStore, keys: Sequence[str], embedder: Embedder | None
) -> tuple[list[str], np.ndarray]:
    """Normalized mean chunk vector of each episode that has chunks from the embedder's model."""
    if embedder is None:
        return [], np.zeros((0, 0), dtype=np.float32)
    used: list[str] = []
    vectors: list[np.ndarray] = []
    for key in keys:
        try:
            rel = episode_path(key, "chunks.parquet")
        except InvalidKeyError:
            continue
        if not store.exists(rel):
            continue
        with store.local_copy(rel) as path, pq.ParquetFile(path) as file:
            model = (file.schema_arrow.metadata or {}).get(_VECTOR_MODEL_META)
            if model is not None and model.decode() != embedder.model_id:
                continue
            column = file.read(columns=["vector"]).column("vector")
        if len(column) == 0:
            continue
        if pa.types.is_fixed_size_list(column.type):
            flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
            matrix = flat.astype(np.float32, copy=False).reshape(len(column), -1)
        else:
            matrix = np.asarray(column.to_pylist(), dtype=np.float32)
        if vectors and matrix.shape[1] != vectors[0].shape[0]:
            continue
        mean = matrix.mean(axis=0)
        norm = float(np.linalg.norm(mean))
        if norm == 0.0 or not math.isfinite(norm):
            continue
        used.append(key)
        vectors.append(mean / norm)
    if not vectors:
        return [], np.zeros((0, 0), dtype=np.float32)
    return used, np.vstack(vectors)


def _clusters(
    week: str, keys: Sequence[str], matrix: np.ndarray, by_key: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    if len(keys) < 2:
        return []
    similarity = matrix @ matrix.T
    feeds = np.array([by_key[k]["feed"] for k in keys])
    linked = (similarity > CLUSTER_THRESHOLD) & (feeds[:, None] != feeds[None, :])
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(linked, k=1)), strict=True):
        parent[find(int(i))] = find(int(j))
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(len(keys)):
        groups[find(i)].append(i)
    found = []
    for members in groups.values():
        if len({feeds[i] for i in members}) < 2:
            continue
        members.sort(key=lambda i: (by_key[keys[i]]["published"], keys[i]))
        pairs = [
            float(similarity[a, b])
            for n, a in enumerate(members)
            for b in members[n + 1 :]
            if feeds[a] != feeds[b]
        ]
        found.append(
            {
                "episodes": [keys[i] for i in members],
                "feeds": sorted({str(feeds[i]) for i in members}),
                "titles": [by_key[keys[i]]["title"] for i in members],
                "similarity": round(sum(pairs) / len(pairs), 4),
            }
        )
    found.sort(key=lambda c: (-len(c["episodes"]), -c["similarity"], c["episodes"][0]))
    return [{"id": f"{week}-story-{n}", **c} for n, c in enumerate(found, start=1)]


def _trends(
    con: duckdb.DuckDBPyConnection, previous: datetime, lo: datetime, hi: datetime
) -> tuple[list[dict[str, Any]], int]:
    rows = con.execute(
        """
        SELECT m.entity_id, en.name, en.type,
            coalesce(sum(m.count) FILTER (WHERE e.published >= $2), 0) AS this_week,
            coalesce(sum(m.count) FILTER (WHERE e.published < $2), 0) AS previous_week
        FROM mentions m
            JOIN episodes e ON e.key = m.key
            JOIN (SELECT entity_id, min(name) AS name, min(type) AS type FROM entities
                  GROUP BY entity_id) en ON en.entity_id = m.entity_id
        WHERE e.published >= $1 AND e.published < $3
        GROUP BY ALL
        HAVING this_week <> previous_week""",
        [previous, lo, hi],
    ).fetchall()
    trends = [
        {
            "entity_id": entity_id,
            "name": name,
            "type": type_,
            "this_week": int(this_week),
            "previous_week": int(previous_week),
            "change": int(this_week) - int(previous_week),
        }
        for entity_id, name, type_, this_week, previous_week in rows
    ]
    trends.sort(
        key=lambda t: (-abs(t["change"]), -t["change"], (t["name"] or "").lower(), t["entity_id"])
    )
    return trends[:MAX_TRENDS], len(trends)


def _listen_list(
    con: duckdb.DuckDBPyConnection,
    lo: datetime,
    hi: datetime,
    episodes: Sequence[dict[str, Any]],
    grounded: dict[str, tuple[int, float]],
    clusters: Sequence[dict[str, Any]],
    trends: Sequence[dict[str, Any]],
    budget_minutes: float,
) -> dict[str, Any]:
    rising = {t["entity_id"]: t["name"] for t in trends if t["change"] > 0}
    mentioned: dict[str, list[str]] = defaultdict(list)
    if rising:
        for key, entity_id in con.execute(
            """
            SELECT DISTINCT m.key, m.entity_id FROM mentions m JOIN episodes e ON e.key = m.key
            WHERE e.published >= $1 AND e.published < $2 AND list_contains($3, m.entity_id)
            ORDER BY m.key, m.entity_id""",
            [lo, hi, list(rising)],
        ).fetchall():
            mentioned[key].append(rising[entity_id])
    story = {key: c for c in clusters for key in c["episodes"]}
    scored = []
    for e in episodes:
        count, support = grounded.get(e["key"], (0, 0.0))
        score = support
        reasons = []
        if count:
            reasons.append(f"{count} grounded insight{'s' if count != 1 else ''}")
        if e["key"] in story:
            score += CLUSTER_BONUS
            others = [f for f in story[e["key"]]["feeds"] if f != e["feed"]]
            reasons.append("same story as " + ", ".join(others))
        if mentioned[e["key"]]:
            score += TREND_BONUS * len(mentioned[e["key"]])
            reasons.append("mentions rising " + ", ".join(sorted(mentioned[e["key"]])))
        minutes = e["duration_seconds"] / 60 if e["duration_seconds"] is not None else None
        scored.append((score, minutes, e, "; ".join(reasons) or "new this week"))
    scored.sort(key=lambda s: (-s[0], s[1] if s[1] is not None else math.inf, s[2]["key"]))
    items, total = [], 0.0
    for score, minutes, e, reason in scored:
        if minutes is None or total + minutes > budget_minutes + 1e-9:
            continue
        total += minutes
        items.append(
            {
                "key": e["key"],
                "title": e["title"],
                "feed": e["feed"],
                "minutes": round(minutes, 1),
                "score": round(score, 4),
                "reason": reason,
            }
        )
    return {"budget_minutes": budget_minutes, "total_minutes": round(total, 1), "items": items}


# --------------------------------------------------------------------------------------------
# Rendering


def _safe_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL (never ``javascript:`` and the like), else None."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _minutes(seconds: float | None) -> str:
    return f"{round(seconds / 60)} min" if seconds is not None else "length unknown"


def _day(iso: str) -> str:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").strftime("%a %d %b %Y")


def _span(digest: dict[str, Any]) -> str:
    start = datetime.strptime(digest["start"], "%Y-%m-%dT%H:%M:%SZ")
    last = datetime.strptime(digest["end"], "%Y-%m-%dT%H:%M:%SZ") - timedelta(days=1)
    return f"{start:%a %d %b %Y} to {last:%a %d %b %Y} (UTC)"


def _no_episodes(digest: dict[str, Any]) -> str:
    return f"There were no new episodes in week {digest['week']}: {_span(digest)}."


def _summary_line(digest: dict[str, Any]) -> str:
    stats = digest["stats"]
    return (
        f"{stats['episodes']} new episode{'s' if stats['episodes'] != 1 else ''} from "
        f"{stats['feeds']} feed{'s' if stats['feeds'] != 1 else ''}, "
        f"{stats['minutes']:g} minutes of audio."
    )


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def _md(text: Any) -> str:
    """Inline Markdown text: one line, Markdown syntax and raw HTML neutralized."""
    flat = " ".join(str(text if text is not None else "").split())
    return _MD_SPECIAL.sub(r"\\\1", flat).replace("<", "&lt;").replace(">", "&gt;")


def _md_url(url: str) -> str:
    return quote(url, safe=":/?#[]@!$&'*+,;=%~-._")


def _lookups(digest: dict[str, Any]) -> tuple[dict[str, str | None], dict[str, str]]:
    """Audio URL by episode key; feed title by feed name and by episode key."""
    urls: dict[str, str | None] = {}
    feeds: dict[str, str] = {}
    for feed in digest["episodes"]:
        title = feed.get("feed_title") or feed["feed"]
        feeds[feed["feed"]] = title
        for e in feed["episodes"]:
            urls[e["key"]] = e["audio_url"]
            feeds[e["key"]] = title
    return urls, feeds


def _md_link(text: Any, url: str | None) -> str:
    safe = _safe_url(url)
    return f"[{_md(text)}]({_md_url(safe)})" if safe else _md(text)


def render_markdown(digest: dict[str, Any]) -> str:
    """Render a digest as Markdown.

    Args:
        digest: A dict from :func:`build_digest` (or read back from ``digest.json``).

    Returns:
        A Markdown document: listen list, insights as quote blocks with deep links into the audio,
        cross-feed stories, trends and the new episodes per feed; for a week without episodes, a
        short note saying so. Text from feeds is escaped (no raw HTML, no stray Markdown).
    """
    out = [f"# Podcast digest: week {_md(digest['week'])}", ""]
    if not digest["episodes"]:
        out += [_no_episodes(digest), ""]
        return "\n".join(out)
    out += [f"_{_span(digest)}. {_summary_line(digest)}_", ""]

    listen = digest["listen_list"]
    out += [
        f"## Listen list ({listen['total_minutes']:g} of {listen['budget_minutes']:g} minutes)",
        "",
    ]
    urls, feeds = _lookups(digest)
    if listen["items"]:
        for n, item in enumerate(listen["items"], start=1):
            out.append(
                f"{n}. **{_md_link(item['title'], urls.get(item['key']))}** "
                f"({_md(feeds.get(item['feed'], item['feed']))}, "
                f"{item['minutes']:g} min): {_md(item['reason'])}"
            )
    else:
        out.append("No episode fits in the time budget.")
    out.append("")

    out += ["## Top insights", ""]
    if not digest["insights"]:
        out += ["No grounded insights this week.", ""]
    for insight in digest["insights"]:
        q = insight["quote"]
        speaker = f"{_md(q['speaker'])}, " if q.get("speaker") else ""
        feed = feeds.get(insight["feed"], insight["feed"])
        at = _md_link(_clock(q["start_seconds"]), insight["link"])
        out += [
            f"### {_md(insight['text'])}",
            "",
            f"From **{_md(insight['title'])}** ({_md(feed)}), "
            f"{_md(insight['insight_type'] or 'insight')}, support {insight['support_score']:.2f}",
            "",
            f"> {_md(q['text'])}",
            ">",
            f"> \u2014 {speaker}{at}",
            "",
        ]

    out += ["## Same story, different feeds", ""]
    if not digest["clusters"]:
        out.append("No story was covered by more than one feed this week.")
    for cluster in digest["clusters"]:
        parts = [
            f"{_md_link(title, urls.get(key))} ({_md(feeds.get(key, ''))})"
            for key, title in zip(cluster["episodes"], cluster["titles"], strict=True)
        ]
        out.append(f"- {' / '.join(parts)}: similarity {cluster['similarity']:.2f}")
    out.append("")

    out += ["## Trends", ""]
    if digest["trends"]:
        out += [
            "| entity | type | this week | previous week | change |",
            "| --- | --- | --: | --: | --: |",
        ]
        for t in digest["trends"]:
            out.append(
                f"| {_md(t['name'])} | {_md(t['type'])} | {t['this_week']} | "
                f"{t['previous_week']} | {t['change']:+d} |"
            )
    else:
        out.append("No entity was mentioned more or less than the week before.")
    out.append("")

    out += ["## New episodes", ""]
    for feed in digest["episodes"]:
        out += [f"### {_md(feed['feed_title'])}", ""]
        for e in feed["episodes"]:
            out.append(
                f"- **{_md_link(e['title'], e['audio_url'])}**, {_day(e['published'])}, "
                f"{_minutes(e['duration_seconds'])}"
            )
            if e.get("lead"):
                out.append(f"  {_md(e['lead'])}")
        out.append("")
    out.append(f"_Generated {_md(digest['generated_at'])}._")
    return "\n".join(out) + "\n"


_CSS = """
body{font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d232a;
background:#f6f7f9;margin:0}
main,header.page,footer.page{max-width:46rem;margin:0 auto;padding:0 1.25rem}
header.page{padding-top:2rem}
h1{font-size:1.8rem;margin:0 0 .25rem}h2{font-size:1.3rem;margin:2rem 0 .75rem;
border-bottom:2px solid #dfe3e8;padding-bottom:.25rem}h3{font-size:1.05rem;margin:1rem 0 .25rem}
.meta{color:#5b6570;font-size:.9rem}
a{color:#1558b0}
article{background:#fff;border:1px solid #e3e6ea;border-radius:8px;padding:.75rem 1rem;
margin:.75rem 0}
blockquote{margin:.5rem 0;padding:.25rem .9rem;border-left:4px solid #1558b0;background:#f0f5fc}
blockquote p{margin:.25rem 0}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{padding:.35rem .6rem;border-bottom:1px solid #e3e6ea;text-align:left}
td.num,th.num{text-align:right}.up{color:#1a7f37}.down{color:#b42318}
ol.listen li{margin:.4rem 0}
footer.page{color:#5b6570;font-size:.85rem;padding-bottom:2rem}
"""


def _h(text: Any) -> str:
    return html.escape(str(text if text is not None else ""), quote=True)


def _a(text: Any, url: str | None) -> str:
    safe = _safe_url(url)
    return f'<a href="{_h(safe)}">{_h(text)}</a>' if safe else _h(text)


def render_html(digest: dict[str, Any]) -> str:
    """Render a digest as one self-contained HTML page.

    Args:
        digest: A dict from :func:`build_digest` (or read back from ``digest.json``).

    Returns:
        An HTML5 document with the same content as :func:`render_markdown`, semantic tags
        (``header``, ``main``, ``section``, ``article``, ``blockquote``, ``table``) and inline
        CSS only: no scripts, stylesheets, fonts or images to fetch. All text is escaped and only
        http(s) URLs become links.
    """
    week = _h(digest["week"])
    head = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Podcast digest: week {week}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
    )
    out = [head, f'<header class="page">\n<h1>Podcast digest: week {week}</h1>\n']
    if not digest["episodes"]:
        out.append(f'<p class="meta">{_h(_no_episodes(digest))}</p>\n</header>\n')
        out.append("<main></main>\n</body>\n</html>\n")
        return "".join(out)
    out.append(f'<p class="meta">{_h(_span(digest))}. {_h(_summary_line(digest))}</p>\n</header>\n')
    out.append("<main>\n")
    urls, feeds = _lookups(digest)

    listen = digest["listen_list"]
    out.append(
        '<section id="listen-list">\n'
        f"<h2>Listen list ({listen['total_minutes']:g} of "
        f"{listen['budget_minutes']:g} minutes)</h2>\n"
    )
    if listen["items"]:
        out.append('<ol class="listen">\n')
        for item in listen["items"]:
            feed = feeds.get(item["feed"], item["feed"])
            out.append(
                f"<li><strong>{_a(item['title'], urls.get(item['key']))}</strong> "
                f'<span class="meta">({_h(feed)}, {item["minutes"]:g} min)</span>: '
                f"{_h(item['reason'])}</li>\n"
            )
        out.append("</ol>\n")
    else:
        out.append("<p>No episode fits in the time budget.</p>\n")
    out.append("</section>\n")

    out.append('<section id="insights">\n<h2>Top insights</h2>\n')
    if not digest["insights"]:
        out.append("<p>No grounded insights this week.</p>\n")
    for insight in digest["insights"]:
        q = insight["quote"]
        speaker = f"{_h(q['speaker'])}, " if q.get("speaker") else ""
        feed = feeds.get(insight["feed"], insight["feed"])
        out.append(
            f"<article>\n<h3>{_h(insight['text'])}</h3>\n"
            f'<p class="meta">From <strong>{_h(insight["title"])}</strong> '
            f"({_h(feed)}), {_h(insight['insight_type'] or 'insight')}, "
            f"support {insight['support_score']:.2f}</p>\n"
            f"<blockquote>\n<p>{_h(q['text'])}</p>\n"
            f"<footer>\u2014 {speaker}{_a(_clock(q['start_seconds']), insight['link'])}</footer>\n"
            "</blockquote>\n</article>\n"
        )
    out.append("</section>\n")

    out.append('<section id="stories">\n<h2>Same story, different feeds</h2>\n')
    if digest["clusters"]:
        out.append("<ul>\n")
        for cluster in digest["clusters"]:
            parts = " / ".join(
                f"{_a(title, urls.get(key))} ({_h(feeds.get(key, ''))})"
                for key, title in zip(cluster["episodes"], cluster["titles"], strict=True)
            )
            out.append(f"<li>{parts}: similarity {cluster['similarity']:.2f}</li>\n")
        out.append("</ul>\n")
    else:
        out.append("<p>No story was covered by more than one feed this week.</p>\n")
    out.append("</section>\n")

    out.append('<section id="trends">\n<h2>Trends</h2>\n')
    if digest["trends"]:
        out.append(
            "<table>\n<thead><tr><th>entity</th><th>type</th><th class=num>this week</th>"
            "<th class=num>previous week</th><th class=num>change</th></tr></thead>\n<tbody>\n"
        )
        for t in digest["trends"]:
            css = "up" if t["change"] > 0 else "down"
            out.append(
                f"<tr><td>{_h(t['name'])}</td><td>{_h(t['type'])}</td>"
                f"<td class=num>{t['this_week']}</td><td class=num>{t['previous_week']}</td>"
                f'<td class="num {css}">{t["change"]:+d}</td></tr>\n'
            )
        out.append("</tbody>\n</table>\n")
    else:
        out.append("<p>No entity was mentioned more or less than the week before.</p>\n")
    out.append("</section>\n")

    out.append('<section id="episodes">\n<h2>New episodes</h2>\n')
    for feed in digest["episodes"]:
        out.append(f"<section>\n<h3>{_h(feed['feed_title'])}</h3>\n")
        for e in feed["episodes"]:
            lead = f"<p>{_h(e['lead'])}</p>\n" if e.get("lead") else ""
            out.append(
                f"<article>\n<h4>{_a(e['title'], e['audio_url'])}</h4>\n"
                f'<p class="meta"><time datetime="{_h(e["published"])}">'
                f"{_h(_day(e['published']))}</time>, {_h(_minutes(e['duration_seconds']))}</p>\n"
                f"{lead}</article>\n"
            )
        out.append("</section>\n")
    out.append("</section>\n</main>\n")
    out.append(
        f'<footer class="page"><p>Generated {_h(digest["generated_at"])}, '
        f"digest schema {_h(digest['schema_version'])}.</p></footer>\n</body>\n</html>\n"
    )
    return "".join(out)
