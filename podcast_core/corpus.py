"""The corpus: DuckDB views over the artifact files, so SQL (and polars) see every episode.

Tables (views, recomputed from the JSON artifacts on every connection):

- ``episodes(key, feed, guid, title, published, audio_url, duration_seconds, ...)``
- ``audio(key, file, bytes, sha256, content_type, duration_seconds, created_at)``
- ``transcripts(key, feed, title, text, source, model, language, duration_seconds,
  processing_seconds, code_version, created_at, ...)``
- ``segments(key, idx, start, end, text, speaker)``
- ``summaries(key, lead, bullets, paragraph, backend, model, created_at)``
- ``insights(key, insight_id, text, insight_type, position_hint, grounded, support_score)``
- ``quotes(key, quote_id, insight_id, text, char_start, char_end, timestamp_start_ms,
  timestamp_end_ms, speaker, confidence)``
- ``entities(entity_id, name, type)``, ``mentions(key, entity_id, count)``,
  ``relations(source_id, target_id, type, weight)``: from the per-episode knowledge graphs,
  with entity ids resolved through the corpus graph's alias table when it has been built
- ``chunks(key, chunk_id, start, end, char_start, char_end, text)``

On an S3 artifact root DuckDB reads a local mirror of the queryable artifacts (JSON and Parquet,
never audio) that :func:`query_view` brings up to date first (see
``S3ArtifactStore.local_view``); a local root is read in place.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import duckdb

from podcast_core.storage import ArtifactStore, LocalArtifactStore

_SEGMENT_TYPE = '[{"start":"DOUBLE","end":"DOUBLE","text":"VARCHAR","speaker":"VARCHAR"}]'

_INSIGHT_TYPE = (
    '[{"id":"VARCHAR","text":"VARCHAR","insight_type":"VARCHAR","position_hint":"DOUBLE",'
    '"grounded":"BOOLEAN","support_score":"DOUBLE"}]'
)
_QUOTE_TYPE = (
    '[{"id":"VARCHAR","text":"VARCHAR","char_start":"INTEGER","char_end":"INTEGER",'
    '"timestamp_start_ms":"BIGINT","timestamp_end_ms":"BIGINT","speaker":"VARCHAR"}]'
)
_EDGE_TYPE = (
    '[{"type":"VARCHAR","source":"VARCHAR","target":"VARCHAR","confidence":"DOUBLE",'
    '"weight":"DOUBLE","count":"BIGINT"}]'
)
_NODE_TYPE = '[{"id":"VARCHAR","type":"VARCHAR","name":"VARCHAR"}]'

_SOURCES: dict[str, tuple[str, dict[str, str]]] = {
    "_metadata": (
        "*/*/metadata.json",
        {
            "key": "VARCHAR",
            "feed": "VARCHAR",
            "feed_url": "VARCHAR",
            "feed_info": "JSON",
            "episode": "JSON",
            "created_at": "VARCHAR",
        },
    ),
    "_audio": (
        "*/*/audio.json",
        {
            "key": "VARCHAR",
            "file": "VARCHAR",
            "url": "VARCHAR",
            "bytes": "BIGINT",
            "sha256": "VARCHAR",
            "content_type": "VARCHAR",
            "duration_seconds": "DOUBLE",
            "download_seconds": "DOUBLE",
            "created_at": "VARCHAR",
        },
    ),
    "_transcripts": (
        "*/*/transcript.json",
        {
            "key": "VARCHAR",
            "feed": "VARCHAR",
            "title": "VARCHAR",
            "text": "VARCHAR",
            "segments": "JSON",
            "source": "VARCHAR",
            "language": "VARCHAR",
            "model": "VARCHAR",
            "duration_seconds": "DOUBLE",
            "processing_seconds": "DOUBLE",
            "source_url": "VARCHAR",
            "details": "JSON",
            "fallback_reason": "VARCHAR",
            "code_version": "VARCHAR",
            "created_at": "VARCHAR",
        },
    ),
    "_summaries": (
        "*/*/summary.json",
        {
            "key": "VARCHAR",
            "lead": "VARCHAR",
            "bullets": "VARCHAR[]",
            "paragraph": "VARCHAR",
            "backend": "VARCHAR",
            "model": "VARCHAR",
            "seconds": "DOUBLE",
            "created_at": "VARCHAR",
        },
    ),
    "_gi": (
        "*/*/gi.json",
        {
            "key": "VARCHAR",
            "insights": "JSON",
            "quotes": "JSON",
            "edges": "JSON",
            "created_at": "VARCHAR",
        },
    ),
    "_kg": ("*/*/kg.json", {"key": "VARCHAR", "nodes": "JSON", "edges": "JSON"}),
}

_PARQUET_SOURCES: dict[str, tuple[str, dict[str, str]]] = {
    "_chunks": (
        "*/*/chunks.parquet",
        {
            "key": "VARCHAR",
            "chunk_id": "INTEGER",
            "start": "DOUBLE",
            "end": "DOUBLE",
            "char_start": "INTEGER",
            "char_end": "INTEGER",
            "text": "VARCHAR",
        },
    ),
    "_aliases": (
        "_corpus/graph/aliases.parquet",
        {
            "alias_id": "VARCHAR",
            "canonical_id": "VARCHAR",
        },
    ),
}

_VIEWS = {
    "episodes": """
        SELECT key, feed,
            json_extract_string(episode, '$.guid') AS guid,
            json_extract_string(episode, '$.title') AS title,
            TRY_CAST(json_extract_string(episode, '$.published') AS TIMESTAMP) AS published,
            json_extract_string(episode, '$.audio_url') AS audio_url,
            TRY_CAST(json_extract(episode, '$.duration_seconds') AS DOUBLE) AS duration_seconds,
            json_extract_string(episode, '$.description') AS description,
            json_extract_string(feed_info, '$.title') AS feed_title,
            feed_url
        FROM _metadata""",
    "audio": """
        SELECT key, file, url, bytes, sha256, content_type, duration_seconds, download_seconds,
            TRY_CAST(created_at AS TIMESTAMP) AS created_at
        FROM _audio""",
    "transcripts": """
        SELECT key, feed, title, text, source, model, language, duration_seconds,
            processing_seconds,
            duration_seconds / NULLIF(processing_seconds, 0) AS realtime_factor,
            source_url, fallback_reason, code_version,
            TRY_CAST(created_at AS TIMESTAMP) AS created_at
        FROM _transcripts""",
    "segments": f"""
        SELECT key, i - 1 AS idx, segs[i].start AS start, segs[i]."end" AS "end",
            segs[i].text AS text, segs[i].speaker AS speaker
        FROM (SELECT key, from_json(segments, '{_SEGMENT_TYPE}') AS segs FROM _transcripts),
            range(1, len(segs) + 1) r(i)""",
    "summaries": """
        SELECT key, lead, bullets, paragraph, backend, model, seconds,
            TRY_CAST(created_at AS TIMESTAMP) AS created_at
        FROM _summaries""",
    "insights": f"""
        SELECT key, i.id AS insight_id, i.text, i.insight_type, i.position_hint, i.grounded,
            i.support_score
        FROM (SELECT key, unnest(from_json(insights, '{_INSIGHT_TYPE}')) AS i FROM _gi)""",
    "quotes": f"""
        WITH q AS (SELECT key, unnest(from_json(quotes, '{_QUOTE_TYPE}')) AS q FROM _gi),
             e AS (SELECT key, unnest(from_json(edges, '{_EDGE_TYPE}')) AS e FROM _gi)
        SELECT q.key, q.q.id AS quote_id, e.e.source AS insight_id, q.q.text,
            q.q.char_start, q.q.char_end, q.q.timestamp_start_ms, q.q.timestamp_end_ms,
            q.q.speaker, e.e.confidence
        FROM q JOIN e ON e.key = q.key AND e.e.target = q.q.id
            AND e.e.type = 'SUPPORTED_BY'""",
    "_kg_nodes": f"""
        SELECT n.id, n.type, n.name
        FROM (SELECT unnest(from_json(nodes, '{_NODE_TYPE}')) AS n FROM _kg)
        WHERE n.type IN ('Person', 'Organization', 'Topic')""",
    "_kg_edges": f"""
        SELECT key, e.type, e.source, e.target, coalesce(e.weight, 1.0) AS weight,
            coalesce(e.count, 1) AS count
        FROM (SELECT key, unnest(from_json(edges, '{_EDGE_TYPE}')) AS e FROM _kg)""",
    "entities": """
        SELECT coalesce(a.canonical_id, n.id) AS entity_id, min(n.name) AS name, n.type
        FROM _kg_nodes n LEFT JOIN _aliases a ON a.alias_id = n.id
        GROUP BY ALL""",
    "mentions": """
        SELECT e.key, coalesce(a.canonical_id, e.target) AS entity_id, sum(e.count) AS count
        FROM _kg_edges e LEFT JOIN _aliases a ON a.alias_id = e.target
        WHERE e.type = 'MENTIONS'
        GROUP BY ALL""",
    "relations": """
        SELECT coalesce(s.canonical_id, e.source) AS source_id,
            coalesce(t.canonical_id, e.target) AS target_id, e.type, sum(e.weight) AS weight
        FROM _kg_edges e
            LEFT JOIN _aliases s ON s.alias_id = e.source
            LEFT JOIN _aliases t ON t.alias_id = e.target
        WHERE e.type <> 'MENTIONS'
        GROUP BY ALL""",
    "chunks": "SELECT * FROM _chunks",
}

TABLES = tuple(name for name in _VIEWS if not name.startswith("_"))
# Every artifact the views read: what an S3 store mirrors locally for DuckDB.
QUERY_PATTERNS = tuple(pattern for pattern, _ in (*_SOURCES.values(), *_PARQUET_SOURCES.values()))


def query_view(store: ArtifactStore) -> LocalArtifactStore:
    """A local store with every artifact the views read: ``store`` itself, or its S3 mirror."""
    return store.local_view(QUERY_PATTERNS)


def connect(store: ArtifactStore) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the corpus views over ``store``'s artifacts."""
    store = query_view(store)
    con = duckdb.connect()
    for name, (pattern, columns) in _SOURCES.items():
        if store.list(pattern):
            glob = str(store.root / pattern).replace("'", "''")
            spec = ", ".join(f"'{c}': '{t}'" for c, t in columns.items())
            con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_json('{glob}', columns={{{spec}}}, "
                "format='auto', union_by_name=true)"
            )
        else:
            nulls = ", ".join(f'NULL::{t} AS "{c}"' for c, t in columns.items())
            con.execute(f"CREATE VIEW {name} AS SELECT {nulls} WHERE false")
    for name, (pattern, columns) in _PARQUET_SOURCES.items():
        select = ", ".join(f'"{c}"' for c in columns)
        if store.list(pattern):
            glob = str(store.root / pattern).replace("'", "''")
            con.execute(
                f"CREATE VIEW {name} AS SELECT {select} FROM read_parquet('{glob}', "
                "union_by_name=true)"
            )
        else:
            nulls = ", ".join(f'NULL::{t} AS "{c}"' for c, t in columns.items())
            con.execute(f"CREATE VIEW {name} AS SELECT {nulls} WHERE false")
    for name, sql in _VIEWS.items():
        con.execute(f"CREATE VIEW {name} AS {sql}")
    return con


def query(store: ArtifactStore, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one SQL query over the corpus; returns column names and rows."""
    con = connect(store)
    try:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        return columns, cursor.fetchall()
    finally:
        con.close()


def build_database(store: ArtifactStore, path: Path) -> dict[str, int]:
    """Materialize every corpus view as a table of a DuckDB database file at ``path``.

    Rebuilds serialize on a lock file beside ``path`` and each writes a fresh database that
    atomically replaces the old one: readers see either the previous or the new complete file,
    and two runs finishing together cannot interleave (the later one rebuilds from every artifact,
    so no rows are lost). Returns the row count of each table.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        source = connect(store)
        counts: dict[str, int] = {}
        try:
            escaped = str(tmp).replace("'", "''")
            source.execute(f"ATTACH '{escaped}' AS out")
            for table in TABLES:
                source.execute(f"CREATE TABLE out.{table} AS SELECT * FROM {table}")
                counts[table] = source.execute(f"SELECT count(*) FROM out.{table}").fetchall()[0][0]
            source.execute("DETACH out")
            os.replace(tmp, path)
        finally:
            source.close()
            tmp.unlink(missing_ok=True)
        return counts
