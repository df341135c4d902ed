"""Step retries on the network-facing assets: transient failures retried, permanent ones not.

(Killing a run worker and run monitoring are exercised with a real daemon in
``test_queue_load.py``.)
"""

from __future__ import annotations

import dagster as dg
import pytest
from conftest import Route, rss
from dagster._core.events import DagsterEventType

from partitions import EPISODES
from podcast_assets.batch import each_episode
from podcast_assets.definitions import build_definitions
from podcast_assets.ingestion import NETWORK_RETRY
from podcast_assets.runner import _interrupted, add_feed
from resources import build_resources
from sensors.rss import poll_catalog, run_request


@pytest.fixture(autouse=True)
def no_retry_waits(monkeypatch):
    """The retry policy as configured, without its random 0-35 s waits between attempts."""
    monkeypatch.setattr(dg.RetryPolicy, "calculate_delay", lambda self, attempt_num: 0)


class FailFirst(dict):
    """Routes where the first request to each path in ``flaky`` gets ``status`` instead."""

    def __init__(self, routes: dict, flaky: set[str], status: int):
        super().__init__(routes)
        self.flaky, self.status, self.failed = flaky, status, set()

    def get(self, path, default=None):
        if path in self.flaky and path not in self.failed:
            self.failed.add(path)
            return Route(b"try again later", content_type="text/plain", status=self.status)
        return super().get(path, default)


def _ingest(env, feed_server, flaky: set[str], status: int) -> tuple[dg.DagsterInstance, object]:
    feed_server.set_two_voices(audio="/a.mp3", vtt="/a.vtt")
    url = feed_server.set(
        "/feed.xml",
        rss(
            "Flaky",
            [
                {
                    "title": "Two Voices",
                    "guid": "flaky-1",
                    "pub_date": "Thu, 19 Nov 2026 17:00:00 +0000",
                    "audio": feed_server.url("/a.mp3"),
                    "transcripts": [(feed_server.url("/a.vtt"), "text/vtt")],
                }
            ],
        ),
    )
    feed_server.routes = FailFirst(feed_server.routes, flaky, status)
    resources = build_resources(env)
    add_feed(resources["catalog"].catalog(), resources["http"], url, name="flaky")
    instance = dg.DagsterInstance.get()
    found = poll_catalog(
        instance, None, resources["artifacts"], resources["catalog"], resources["http"]
    )
    instance.add_dynamic_partitions(EPISODES.name, found.add_keys)
    [request] = found.requests
    result = (
        build_definitions(env)
        .resolve_job_def("episode_job")
        .execute_in_process(
            instance=instance,
            partition_key=request.key,
            tags=run_request(request).tags,
            raise_on_error=False,
        )
    )
    return instance, result


def _retried_steps(result) -> list[str]:
    return [
        e.step_key for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY
    ]


def test_a_503_on_audio_and_transcript_is_retried_and_the_run_succeeds(env, feed_server):
    instance, result = _ingest(env, feed_server, {"/a.mp3", "/a.vtt"}, 503)
    with instance:
        assert result.success
        assert sorted(_retried_steps(result)) == ["raw_audio", "transcript"]
        assert feed_server.hits["/a.mp3"] == 2
        assert feed_server.hits["/a.vtt"] == 2
        # The retry fetched the publisher transcript: no fall back to Whisper on a 503.
        [materialization] = result.asset_materializations_for_node("transcript")
        assert materialization.metadata["source"].value == "published:vtt"
        assert materialization.metadata["fallback_reason"].value == ""


@pytest.mark.parametrize("status", [404, 410])
def test_a_permanent_http_error_fails_at_once(env, feed_server, status):
    instance, result = _ingest(env, feed_server, {"/a.mp3"}, status)
    with instance:
        assert not result.success
        assert _retried_steps(result) == []
        assert feed_server.hits["/a.mp3"] == 1
        [failure] = [e for e in result.all_events if e.is_step_failure]
        assert failure.step_key == "raw_audio"
        assert f"HTTP {status}" in failure.step_failure_data.user_failure_data.description


def test_a_missing_publisher_transcript_goes_to_whisper_without_a_retry(env, feed_server):
    instance, result = _ingest(env, feed_server, {"/a.vtt"}, 404)
    with instance:
        assert result.success
        assert _retried_steps(result) == []
        # Fetched once: the 404 is permanent, so Whisper runs in the same attempt.
        assert feed_server.hits["/a.vtt"] == 1
        [materialization] = result.asset_materializations_for_node("transcript")
        assert materialization.metadata["source"].value == "whisper"
        assert "HTTP 404" in materialization.metadata["fallback_reason"].value


def test_an_interrupted_step_fails_without_a_retry():
    """A terminated run's step must not start again: Dagster retries interrupts by RetryPolicy.

    The run worker gets an interrupt when its run is cancelled or over its maximum runtime
    (exercised with a real daemon in ``test_queue_load.py``); here the stage raises it directly.
    """
    keys = ["stall--000000000000", "stall--111111111111"]
    calls: list[str] = []

    @dg.asset(partitions_def=dg.StaticPartitionsDefinition(keys), retry_policy=NETWORK_RETRY)
    def stalled(context):
        def stage(key: str) -> dict:
            calls.append(key)
            raise dg.DagsterExecutionInterruptedError()

        return each_episode(context, stage, lambda key, record: {})

    result = dg.materialize(
        [stalled],
        partition_key=keys[0],
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    assert calls == [keys[0]]
    assert _retried_steps(result) == []
    # Failed as an interrupt (Dagster then ends the run as interrupted), naming the episode.
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_failure_data.error.cls_name == "EpisodeInterrupted"
    assert f"{keys[0]}: interrupted" in failure.step_failure_data.error.message


class _Stage(dg.ConfigurableResource):
    """Where the test's run is interrupted: its resource's setup, its asset, or nowhere."""

    where: str

    def setup_for_execution(self, context) -> None:
        if self.where == "resource":
            raise dg.DagsterExecutionInterruptedError()


@dg.asset
def _staged(stage: _Stage) -> None:
    if stage.where == "asset":
        raise dg.DagsterExecutionInterruptedError()
    raise RuntimeError("an ordinary failure")


@pytest.mark.parametrize(
    ("where", "interrupted"),
    [("asset", True), ("resource", True), ("failure", False)],
)
def test_the_runner_tells_an_interrupted_run_from_a_failed_one(where, interrupted):
    """``podcast ingest`` stops on Ctrl-C wherever it lands, and goes on after a failure."""
    result = dg.materialize(
        [_staged],
        resources={"stage": _Stage(where=where)},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    assert _interrupted(result) is interrupted
