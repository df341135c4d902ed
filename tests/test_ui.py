"""The Dagster UI in a real browser: headless Chromium over a webserver on a demo instance.

Screenshots are kept in ``test-artifacts/`` (ui-asset-graph.png, ui-partitions.png,
ui-launch-dialog.png, ui-run.png).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pytest
from conftest import ROOT
from test_remote import podcast_env, run_cli, webserver

from podcast_assets.demo import DEMO_SITE, serve_directory
from podcast_core.storage import episode_path

CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "test-artifacts"
TIMEOUT_MS = 30_000
RUNS_FOR_PARTITION = """
query($key: String!) {
  runsOrError(filter: {tags: [{key: "dagster/partition", value: $key}]}) {
    ... on Runs { results { runId status jobName } }
  }
}
"""


@pytest.fixture(scope="module")
def demo_ui(tmp_path_factory):
    """The demo's voices feed, its newest episode ingested, and a webserver over that instance."""
    root = tmp_path_factory.mktemp("ui")
    env = podcast_env(root)
    with serve_directory(DEMO_SITE) as base:
        proc = run_cli(f"{base}/feeds/voices.xml", "--limit", "1", "--name", "voices", env=env)
        assert proc.returncode == 0, proc.stderr
        snapshot = json.loads((root / "data/artifacts/voices/feed.json").read_text())
        keys = {e["title"]: key for key, e in snapshot["episodes"].items()}
        with webserver(root, env) as server:
            yield server, keys


@pytest.fixture(scope="module")
def page(demo_ui):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install chromium (.ci/run installs it)")
    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(TIMEOUT_MS)
        # A fresh instance greets the first visitor with a newsletter dialog, a moment after the
        # first page loads; dismissed once, it stays dismissed in this browser context.
        page.goto(demo_ui[0].url)
        skip = page.get_by_role("button", name="Skip")
        with contextlib.suppress(PlaywrightTimeout):
            skip.click(timeout=20_000)
            skip.wait_for(state="hidden")
        yield page
        browser.close()


def test_asset_graph_shows_our_assets(demo_ui, page):
    server, _ = demo_ui
    page.goto(f"{server.url}/locations/podcast/asset-groups/ingestion")
    for name in ("episode_metadata", "raw_audio", "transcript"):
        page.get_by_text(name, exact=True).first.wait_for()
    # Downstream assets of other groups are drawn as links at the graph's edge.
    for name in ("summary", "grounded_insights", "knowledge_graph", "embeddings"):
        page.get_by_text(name, exact=True).first.wait_for()
    page.get_by_text("4 partitions").first.wait_for()
    page.screenshot(path=SHOTS / "ui-asset-graph.png")


def test_episode_partitions_are_listed(demo_ui, page):
    server, keys = demo_ui
    page.goto(f"{server.url}/assets/transcript?view=partitions")
    page.get_by_text("Materialized (1)").wait_for()
    page.get_by_text("Missing (3)").wait_for()
    assert len(keys) == 4
    for key in keys.values():
        page.get_by_text(key, exact=True).first.wait_for()
    page.screenshot(path=SHOTS / "ui-partitions.png")


def test_launch_a_partition_materialization_from_the_ui(demo_ui, page):
    from dagster_graphql import DagsterGraphQLClient

    server, keys = demo_ui
    key = keys["Two Voices"]  # a publisher transcript: no Whisper, a quick run
    page.goto(f"{server.url}/locations/podcast/asset-groups/ingestion")
    page.get_by_text("episode_metadata", exact=True).first.wait_for()
    page.get_by_role("button", name="Materialize all…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Launch runs to materialize 3 assets").wait_for()
    dialog.get_by_text("Select a partition or create one").click()
    page.keyboard.type(key)
    page.get_by_text(key, exact=True).filter(visible=True).last.click()
    dialog.get_by_text("1 partition", exact=True).wait_for()
    dialog.get_by_text("Launch runs to materialize 3 assets").click()  # closes the picker
    page.get_by_text("Select all (1)").wait_for(state="hidden")
    page.screenshot(path=SHOTS / "ui-launch-dialog.png")
    dialog.get_by_role("button", name="Launch 1 run").click()

    client = DagsterGraphQLClient("127.0.0.1", port_number=server.port)
    deadline = time.monotonic() + 180
    while True:
        runs = client._execute(RUNS_FOR_PARTITION, {"key": key})["runsOrError"]["results"]
        if runs and runs[0]["status"] in {"SUCCESS", "FAILURE", "CANCELED"}:
            break
        assert time.monotonic() < deadline, f"no finished run for {key}: {runs}"
        time.sleep(1)
    (run,) = runs
    assert run["status"] == "SUCCESS", run
    transcript = server.data_dir / "artifacts" / episode_path(key, "transcript.json")
    assert json.loads(transcript.read_text())["source"] == "published:vtt"

    page.goto(f"{server.url}/runs/{run['runId']}")
    page.get_by_text("Success", exact=True).first.wait_for()
    page.get_by_text("Loading run logs").wait_for(state="hidden")
    page.get_by_text("ASSET_MATERIALIZATION").first.wait_for()
    page.screenshot(path=SHOTS / "ui-run.png")
    assert Path(SHOTS / "ui-run.png").stat().st_size > 10_000
