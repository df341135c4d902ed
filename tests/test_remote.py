"""The job API: Dagster's GraphQL API on a real ``dagster-webserver`` on loopback.

Submit a run, get its id, poll its status, read its artifacts: with ``DagsterGraphQLClient``
directly and through ``podcast ingest --remote``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import OFFLINE_MODELS, PODCAST, ROOT, FeedServer, free_port, rss, serve_feeds

from podcast_core.storage import episode_path

WEBSERVER = Path(sys.executable).parent / "dagster-webserver"
# Runs launch straight from the webserver: no daemon is needed to dequeue them.
INSTANCE_YAML = """\
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
telemetry:
  enabled: false
"""


@dataclass
class Webserver:
    """A ``dagster-webserver`` on 127.0.0.1 over a throwaway instance and data directory."""

    url: str
    port: int
    data_dir: Path


def podcast_env(root: Path) -> dict[str, str]:
    """Environment for the webserver and the CLI: data dir, instance, offline models."""
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PODCAST_", "DAGSTER_"))}
    return (
        env | OFFLINE_MODELS | {"DAGSTER_HOME": str(home), "PODCAST_DATA_DIR": str(root / "data")}
    )


@contextlib.contextmanager
def webserver(root: Path, env: dict[str, str] | None = None) -> Iterator[Webserver]:
    """Start ``dagster-webserver -h 127.0.0.1`` on the repository's workspace; stop it after."""
    env = env or podcast_env(root)
    port = free_port()
    log = root / "webserver.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(WEBSERVER), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"webserver exited: {log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"webserver did not start: {log.read_text()}"
            time.sleep(0.3)
        yield Webserver(url, port, Path(env["PODCAST_DATA_DIR"]))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def published_feed(feeds: FeedServer, path: str, title: str, items: list[dict]) -> str:
    """A feed whose episodes link the demo's WebVTT transcript (no Whisper needed)."""
    feeds.set_two_voices(vtt="/t/two-voices.vtt")
    return feeds.set(path, rss(title, items))


EPISODE = {
    "title": "Two Voices",
    "guid": "two-voices",
    "audio": "/audio/two-voices.mp3",
    "transcripts": [("/t/two-voices.vtt", "text/vtt")],
    "pub_date": "Mon, 02 Nov 2026 10:00:00 GMT",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Webserver]:
    with webserver(tmp_path_factory.mktemp("remote")) as running:
        yield running


@pytest.fixture(scope="module")
def feeds() -> Iterator[FeedServer]:
    with serve_feeds() as state:
        yield state


def wait_for(client, run_id: str, timeout: float = 240):
    from dagster import DagsterRunStatus

    deadline = time.monotonic() + timeout
    while (status := client.get_run_status(run_id)) not in {
        DagsterRunStatus.SUCCESS,
        DagsterRunStatus.FAILURE,
        DagsterRunStatus.CANCELED,
    }:
        assert time.monotonic() < deadline, f"run {run_id} still {status}"
        time.sleep(0.5)
    return status


def succeeded(client, url: str, run_id: str) -> bool:
    """Wait for the run; fail the test with the run's own failure message."""
    from dagster import DagsterRunStatus

    from podcast_assets.remote import RemoteDagster

    status = wait_for(client, run_id)
    assert status == DagsterRunStatus.SUCCESS, RemoteDagster(url).failure(run_id)
    return True


def test_graphql_submit_poll_and_read_artifacts(server, feeds):
    from dagster_graphql import DagsterGraphQLClient

    url = published_feed(feeds, "/graphql.xml", "GraphQL Show", [EPISODE])
    client = DagsterGraphQLClient("127.0.0.1", port_number=server.port)

    # Following the feed happens on the server: the catalog, feed snapshot and partitions are its.
    intake = client.submit_job_execution(
        "feed_intake_job", run_config={"ops": {"intake_feed": {"config": {"url": url}}}}
    )
    assert succeeded(client, server.url, intake)
    catalog = json.loads((server.data_dir / "catalog.json").read_text())
    assert [f["url"] for f in catalog["feeds"]] == [url]
    snapshot = json.loads((server.data_dir / "artifacts/graphql-show/feed.json").read_text())
    (key,) = snapshot["episodes"]

    run_id = client.submit_job_execution(
        "episode_job", tags={"dagster/partition": key, "podcast/queue": "published"}
    )
    assert isinstance(run_id, str) and run_id
    assert succeeded(client, server.url, run_id)

    artifacts = server.data_dir / "artifacts"
    transcript = json.loads((artifacts / episode_path(key, "transcript.json")).read_text())
    assert transcript["source"] == "published:vtt"
    assert "wizard" in transcript["text"].lower()
    assert (artifacts / episode_path(key, "audio.mp3")).stat().st_size > 0


def run_cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(PODCAST), "ingest", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_ingest_remote_json_exit_code_and_failure(server, feeds, tmp_path):
    from dagster_graphql import DagsterGraphQLClient

    url = published_feed(
        feeds,
        "/mixed.xml",
        "Remote Mixed",
        [
            EPISODE,
            {
                "title": "Gone",
                "guid": "gone",
                "audio": "/audio/gone.mp3",
                "pub_date": "Tue, 03 Nov 2026 10:00:00 GMT",
            },
        ],
    )
    # The client's own environment points elsewhere: everything happens on the server.
    client_env = podcast_env(tmp_path / "client")
    proc = run_cli(url, "--limit", "2", "--remote", server.url, "--json", env=client_env)
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["feed"] == "remote-mixed" and summary["url"] == url
    by_title = {e["title"]: e for e in summary["episodes"]}
    assert [e["title"] for e in summary["episodes"]] == ["Gone", "Two Voices"]  # newest first
    good, gone = by_title["Two Voices"], by_title["Gone"]
    assert good["status"] == "ok" and good["transcript_source"] == "published:vtt"
    assert good["run_id"] and good["enrichment_run_id"]
    assert gone["status"] == "failed" and "HTTP 404" in gone["error"]
    assert f"episode {gone['key']} (Gone) failed" in proc.stderr
    assert "audio download failed" in proc.stderr and "HTTP 404" in proc.stderr
    assert not (tmp_path / "client/data/catalog.json").exists()

    artifacts = server.data_dir / "artifacts"
    transcript = artifacts / episode_path(good["key"], "transcript.json")
    assert json.loads(transcript.read_text())["source"] == "published:vtt"
    assert json.loads((artifacts / episode_path(good["key"], "summary.json")).read_text())
    # The runs are the server's, tagged as the sensor would tag them.
    client = DagsterGraphQLClient("127.0.0.1", port_number=server.port)
    tags = client._execute(
        "query($id: ID!) { runOrError(runId: $id) { ... on Run { jobName tags { key value } } } }",
        {"id": good["run_id"]},
    )["runOrError"]
    assert tags["jobName"] == "episode_job"
    tag_map = {t["key"]: t["value"] for t in tags["tags"]}
    assert tag_map["dagster/partition"] == good["key"]
    assert tag_map["podcast/queue"] == "published"

    # Nothing is redone: the good episode is up to date, the failed one is retried and fails again.
    again = run_cli(url, "--limit", "2", "--remote", server.url, "--json", env=client_env)
    assert again.returncode == 1, again.stderr
    statuses = {e["title"]: e["status"] for e in json.loads(again.stdout)["episodes"]}
    assert statuses == {"Two Voices": "up-to-date", "Gone": "failed"}


def test_ingest_remote_unreachable_server_names_the_url(tmp_path, feeds):
    dead = f"http://127.0.0.1:{free_port()}"
    proc = run_cli(feeds.url("/any.xml"), "--remote", dead, env=podcast_env(tmp_path), timeout=60)
    assert proc.returncode == 1
    assert f"cannot reach the Dagster webserver at {dead}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_job_and_bad_feed_are_clear_errors(server, feeds):
    from podcast_assets.remote import RemoteDagster, RemoteError

    remote = RemoteDagster(server.url)
    with pytest.raises(RemoteError, match=f"job no_such_job not found on {server.url}"):
        remote.submit("no_such_job", {})

    proc = run_cli(
        feeds.url("/missing.xml"), "--remote", server.url, env=podcast_env(server.data_dir.parent)
    )
    assert proc.returncode == 1
    assert "feed_intake_job run" in proc.stderr and server.url in proc.stderr
    assert "HTTP 404" in proc.stderr


def test_webserver_defaults_bind_loopback():
    """`dagster dev` and `dagster-webserver` bind 127.0.0.1 unless told otherwise."""
    from dagster._cli.dev import dev_command
    from dagster_webserver.cli import cli as webserver_cli

    def host(command) -> str | None:
        return command.make_context("cmd", [], resilient_parsing=True).params["host"]

    assert host(webserver_cli) == "127.0.0.1"
    assert host(dev_command) is None  # dagster dev then passes no --host: the webserver's default
    compose = (ROOT / "docker-compose.yml").read_text()
    assert '"127.0.0.1:3000:3000"' in compose
    # No command the README shows or the demo prints binds every interface (the README's prose
    # warns against it).
    blocks = re.findall(r"^```.*?^```", (ROOT / "README.md").read_text(), flags=re.M | re.S)
    assert blocks and not [block for block in blocks if "0.0.0.0" in block]
    assert "0.0.0.0" not in (ROOT / "podcast_assets/demo.py").read_text()
