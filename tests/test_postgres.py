"""Sensor-driven ingestion of the demo feeds on a Postgres-backed instance.

The instance is loaded from a ``dagster.yaml`` whose ``storage: postgres:`` block is the one in
``deploy/dagster.prod.yaml`` (values from ``DAGSTER_POSTGRES_*``), in a database created for this
module and dropped after it. Runs and materializations are checked through the instance and with
plain SQL on Dagster's tables. Skips, saying why, when no PostgreSQL server answers.
"""

from __future__ import annotations

import json

import dagster as dg
import pytest
from _instance import fresh_database, postgres_env, query, require_postgres, write_home
from conftest import DEMO_SITE

from partitions import EPISODES
from podcast_assets.definitions import build_definitions
from podcast_assets.demo import DEMO_FEEDS, serve_directory
from podcast_assets.jobs import QUEUE_TAG
from podcast_assets.runner import add_feed
from podcast_core.settings import load_settings
from resources import build_resources
from sensors.rss import rss_sensor

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """Both demo feeds followed, one rss_sensor tick, its runs executed through the instance."""
    require_postgres()
    root = tmp_path_factory.mktemp("pg")
    # A context, so a failure here does not leak its environment into later tests.
    with pytest.MonkeyPatch.context() as mp, fresh_database() as dbname:
        for name, value in postgres_env(dbname).items():
            mp.setenv(name, value)
        mp.setenv("PODCAST_DATA_DIR", str(root / "data"))
        mp.setenv("DAGSTER_HOME", str(write_home(root / "home")))
        mp.setenv("PODCAST_WHISPER_MODEL", "packaged:tiny.en")
        settings = load_settings()
        resources = build_resources(settings)
        defs = build_definitions(settings)
        with (
            serve_directory(DEMO_SITE) as base,
            dg.DagsterInstance.from_config(str(root / "home")) as instance,
        ):
            catalog = resources["catalog"].catalog()
            for name, path in DEMO_FEEDS.items():
                add_feed(catalog, resources["http"], f"{base}/{path}", name=name)
            tick = rss_sensor(dg.build_sensor_context(instance=instance, resources=resources))
            for request in tick.dynamic_partitions_requests:
                instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
            job = defs.resolve_job_def("episode_job")
            results = {
                request.partition_key: job.execute_in_process(
                    instance=instance,
                    partition_key=request.partition_key,
                    tags=request.tags,
                    raise_on_error=False,
                )
                for request in tick.run_requests
            }
            yield instance, dbname, tick, results


def test_the_instance_is_postgres_backed(ingested):
    instance, dbname, _, _ = ingested
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    tables = {row[0] for row in query(dbname, "SELECT tablename FROM pg_tables")}
    assert {"runs", "event_logs", "run_tags", "jobs", "dynamic_partitions"} <= tables


def test_sensor_runs_and_materializations_are_in_postgres(ingested):
    instance, dbname, tick, results = ingested
    # Three newest episodes per feed on first sight; the oldest voices episode is for backfill.
    requested = {r.partition_key for r in tick.run_requests}
    assert len(requested) == 6
    assert {r.tags[QUEUE_TAG] for r in tick.run_requests} == {"whisper", "published"}
    failed = {k: r.run_id for k, r in results.items() if not r.success}
    assert not failed, failed

    # Through the instance.
    partitions = set(instance.get_dynamic_partitions(EPISODES.name))
    assert requested < partitions and len(partitions) == 7
    runs = instance.get_runs(filters=dg.RunsFilter(job_name="episode_job"))
    assert {r.run_id for r in runs} == {r.run_id for r in results.values()}
    assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
    transcript = dg.AssetKey("transcript")
    assert instance.get_materialized_partitions(transcript) == requested
    sources = {}
    for key in requested:
        [record] = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=transcript, asset_partitions=[key]), limit=1
        ).records
        sources[key] = record.asset_materialization.metadata["source"].value
    assert sum(s == "whisper" for s in sources.values()) == 4, sources
    assert sum(s.startswith("published") for s in sources.values()) == 2, sources

    # The same facts in the database, read without Dagster.
    rows = query(
        dbname,
        "SELECT run_id, status, run_body FROM runs WHERE pipeline_name = %s",
        ("episode_job",),
    )
    assert {r[0] for r in rows} == {r.run_id for r in results.values()}
    assert {r[1] for r in rows} == {"SUCCESS"}
    partition_tags = query(dbname, "SELECT value FROM run_tags WHERE key = 'dagster/partition'")
    assert {r[0] for r in partition_tags} == requested
    materialized = query(
        dbname,
        "SELECT asset_key, partition, count(*) FROM event_logs "
        "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' GROUP BY asset_key, partition",
    )
    by_asset: dict[str, set[str]] = {}
    for asset_key, partition, count in materialized:
        assert count == 1
        by_asset.setdefault(json.loads(asset_key)[0], set()).add(partition)
    assert by_asset == {a: requested for a in ("episode_metadata", "raw_audio", "transcript")}
    stored = query(
        dbname, "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'episodes'"
    )
    assert {r[0] for r in stored} == partitions


def test_the_production_storage_block_names_an_installed_driver():
    """SQLAlchemy 2.1 maps ``postgresql://`` to psycopg 3; dagster-postgres installs psycopg2."""
    import importlib.util

    import yaml
    from _instance import PROD_INSTANCE

    db = yaml.safe_load(PROD_INSTANCE.read_text())["storage"]["postgres"]["postgres_db"]
    scheme = db.get("scheme", "postgresql")
    driver = scheme.partition("+")[2] or "psycopg"
    assert importlib.util.find_spec(driver) is not None, (
        f"{PROD_INSTANCE.name}: scheme {scheme!r} needs the {driver} module, which is not "
        "installed; set `scheme: postgresql+psycopg2` under storage.postgres.postgres_db"
    )
