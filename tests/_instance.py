"""Test helpers: a throwaway PostgreSQL database and a Dagster home whose instance uses it.

The server defaults to 127.0.0.1:5432 as user ``postgres`` without a password (trust auth); set
``PODCAST_TEST_POSTGRES_HOST`` / ``_PORT`` / ``_USER`` / ``_PASSWORD`` to use another one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT_INSTANCE = ROOT / "dagster.yaml"
# The production instance file whose storage block the tests load (overridable to try an edit).
PROD_INSTANCE = Path(
    os.environ.get("PODCAST_TEST_PROD_INSTANCE", ROOT / "deploy" / "dagster.prod.yaml")
)


def server() -> dict[str, Any]:
    """Connection settings of the test server."""
    return {
        "host": os.environ.get("PODCAST_TEST_POSTGRES_HOST", "127.0.0.1"),
        "port": int(os.environ.get("PODCAST_TEST_POSTGRES_PORT", "5432")),
        "user": os.environ.get("PODCAST_TEST_POSTGRES_USER", "postgres"),
        "password": os.environ.get("PODCAST_TEST_POSTGRES_PASSWORD", ""),
    }


def _connect(dbname: str = "postgres"):
    import psycopg2

    s = server()
    return psycopg2.connect(
        host=s["host"],
        port=s["port"],
        user=s["user"],
        password=s["password"] or None,
        dbname=dbname,
        connect_timeout=3,
    )


def require_postgres() -> None:
    """Skip the calling test, saying why, when no PostgreSQL server answers."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("psycopg2 is not installed: `pip install dagster-postgres psycopg2-binary`")
    s = server()
    try:
        _connect().close()
    except Exception as exc:
        pytest.skip(
            f"no PostgreSQL server at {s['host']}:{s['port']} (user {s['user']}): "
            f"{str(exc).strip().splitlines()[0]}; set PODCAST_TEST_POSTGRES_HOST/_PORT/_USER"
        )


@contextmanager
def fresh_database(prefix: str = "podcast_test") -> Iterator[str]:
    """CREATE a database with a unique name, yield its name, DROP it (even if still in use)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = _connect()
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def query(dbname: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of one SQL query against ``dbname``, outside Dagster."""
    conn = _connect(dbname)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def postgres_env(dbname: str) -> dict[str, str]:
    """The ``DAGSTER_POSTGRES_*`` variables the production instance file reads."""
    s = server()
    return {
        "DAGSTER_POSTGRES_HOST": s["host"],
        "DAGSTER_POSTGRES_PORT": str(s["port"]),
        "DAGSTER_POSTGRES_USER": s["user"],
        "DAGSTER_POSTGRES_PASSWORD": s["password"],
        "DAGSTER_POSTGRES_DB": dbname,
    }


def write_home(home: Path, **overrides: Any) -> Path:
    """A ``dagster.yaml`` in ``home``: production's storage block, the project's queue config.

    ``storage`` is copied verbatim from ``deploy/dagster.prod.yaml`` (every value ``{env: ...}``),
    the run coordinator, concurrency, run monitoring and run retries from ``dagster.yaml``; each
    keyword replaces one top-level block.
    """
    prod = yaml.safe_load(PROD_INSTANCE.read_text())
    project = yaml.safe_load(PROJECT_INSTANCE.read_text())
    config = {"storage": prod["storage"]}
    for block in ("run_coordinator", "concurrency", "run_monitoring", "run_retries", "telemetry"):
        if block in project:
            config[block] = project[block]
    config.update(overrides)
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return home
