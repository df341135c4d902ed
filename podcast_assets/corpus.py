"""The corpus as a first-class asset: one DuckDB database over every artifact table."""

import fcntl
import tempfile
from pathlib import Path

import dagster as dg

from podcast_assets.enrichment import (
    corpus_graph,
    embeddings,
    grounded_insights,
    knowledge_graph,
    summary,
)
from podcast_assets.ingestion import episode_metadata, transcript
from podcast_core.corpus import build_database
from resources import ArtifactStoreResource

CORPUS_FILE = "_corpus/corpus.duckdb"
CORPUS_VERSION = "1"


@dg.asset(
    group_name="corpus",
    kinds={"duckdb"},
    deps=[
        episode_metadata,
        transcript,
        summary,
        grounded_insights,
        knowledge_graph,
        embeddings,
        corpus_graph,
    ],
    code_version=CORPUS_VERSION,
)
def corpus(artifacts: ArtifactStoreResource) -> dg.MaterializeResult:
    """Every artifact table (episodes to chunks) in one DuckDB database file."""
    store = artifacts.store()
    if store.is_local:
        path = Path(store.path(CORPUS_FILE))
        counts = build_database(store, path)
        size = path.stat().st_size
    else:
        # DuckDB writes a local file; the finished database is uploaded whole. Build and upload
        # hold one lock (in the data directory every run container shares), so a build that
        # started earlier cannot upload an older snapshot over a newer one.
        scratch = store.scratch_dir()
        with (
            open(scratch / "corpus.lock", "w") as lock,
            tempfile.TemporaryDirectory(dir=scratch, prefix="corpus.") as work,
        ):
            fcntl.flock(lock, fcntl.LOCK_EX)
            path = Path(work) / "corpus.duckdb"
            counts = build_database(store, path)
            size = path.stat().st_size
            store.move_in(CORPUS_FILE, path)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(store.location(CORPUS_FILE)),
            "bytes": size,
            **{f"rows_{table}": n for table, n in counts.items()},
        }
    )
