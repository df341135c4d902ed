"""The run queue holds a second Whisper run while one is in progress.

Everything here is Dagster's own code path, configured by the project's ``dagster.yaml``:

* sensor runs are created and submitted by the sensor daemon's ``_submit_run_request`` from the
  ``RunRequest`` that ``sensors.rss.run_request`` builds (resolved against ``episode_job`` the way
  a sensor evaluation resolves it);
* a run "from the UI" goes through the webserver's GraphQL ``launchPipelineExecution`` mutation
  with no ``podcast/queue`` tag;
* the queue is drained by ``QueuedRunCoordinatorDaemon.run_iteration``, with a run launcher that
  records launches instead of starting processes.

Nothing sleeps or polls: each daemon iteration is synchronous, so the test does not depend on
machine speed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.test_utils import MockedRunLauncher, create_test_daemon_workspace_context
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.utils import make_new_run_id
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)
from dagster._daemon.sensor import _submit_run_request

ROOT = Path(__file__).resolve().parents[1]
LOCATION = "podcast"
QUEUE_TAG = "podcast/queue"


def _instance_overrides() -> dict:
    """The project's run coordinator and run queue, with a launcher that only records launches."""
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    return {
        "run_coordinator": config["run_coordinator"],
        "concurrency": config["concurrency"],
        "run_launcher": {
            "module": "dagster._core.test_utils",
            "class": "MockedRunLauncher",
        },
    }


@contextmanager
def _workspace(instance: dg.DagsterInstance) -> Iterator[WorkspaceProcessContext]:
    """The code location ``podcast`` loaded from ``podcast_assets.definitions`` in process."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            module_name="podcast_assets.definitions",
            attribute="defs",
            working_directory=str(ROOT),
        ),
        location_name=LOCATION,
    )
    with create_test_daemon_workspace_context(
        InProcessWorkspaceLoadTarget(origin), instance
    ) as context:
        entry = context.create_request_context().get_code_location_entries()[LOCATION]
        assert entry.code_location is not None, entry.load_error
        yield context


def repository(context: WorkspaceProcessContext):
    """The project's repository, as the daemon sees it in ``context``."""
    location = context.create_request_context().get_code_location(LOCATION)
    return next(iter(location.get_repositories().values()))


def submit_run_request(context, sensor, request: dg.RunRequest, job_name: str) -> str:
    """Create and submit ``request`` the way the sensor daemon does; returns the run id."""
    from podcast_assets.definitions import defs

    resolved = request.with_resolved_tags_and_config(
        target_definition=defs.resolve_job_def(job_name),
        dynamic_partitions_requests=[],
        dynamic_partitions_store=context.instance,
    )
    result = _submit_run_request(
        make_new_run_id(), resolved, context, sensor, {}, logging.getLogger("test_queue"), None
    )
    assert result.error_info is None, result.error_info
    return result.run.run_id


class Queue:
    """Submits runs of ``episode_job`` the way the sensor and the UI do, and drains the queue."""

    def __init__(self, instance: dg.DagsterInstance, context: WorkspaceProcessContext):
        self.instance = instance
        self.context = context
        self.daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
        self.logger = logging.getLogger("test_queue")
        self.repo = repository(context)
        self.sensor = self.repo.get_sensor("rss_sensor")

    def from_sensor(self, key: str, *, needs_whisper: bool) -> str:
        """A run for one new episode, created and submitted by the sensor daemon's code."""
        from podcast_core.discovery import EpisodeRequest
        from sensors.rss import run_request

        self.instance.add_dynamic_partitions("episodes", [key])
        request = run_request(EpisodeRequest(key=key, needs_whisper=needs_whisper))
        return submit_run_request(self.context, self.sensor, request, "episode_job")

    def from_ui(self, key: str) -> str:
        """A run launched from the launchpad: only the partition tag, no queue tag."""
        from dagster_graphql.client.query import LAUNCH_PIPELINE_EXECUTION_MUTATION
        from dagster_graphql.test.utils import execute_dagster_graphql

        self.instance.add_dynamic_partitions("episodes", [key])
        result = execute_dagster_graphql(
            self.context.create_request_context(),
            LAUNCH_PIPELINE_EXECUTION_MUTATION,
            variables={
                "executionParams": {
                    "selector": {
                        "repositoryLocationName": LOCATION,
                        "repositoryName": self.repo.name,
                        "pipelineName": "episode_job",
                    },
                    "executionMetadata": {"tags": [{"key": "dagster/partition", "value": key}]},
                }
            },
        )
        launched = result.data["launchPipelineExecution"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return launched["run"]["runId"]

    def backfill_from_ui(self, keys: list[str]) -> list[str]:
        """An asset backfill of ``transcript`` launched from the UI; the backfill daemon's code
        creates and submits its runs (8 partitions per run)."""
        from dagster._daemon.backfill import execute_backfill_iteration
        from dagster_graphql.client.query import LAUNCH_PARTITION_BACKFILL_MUTATION
        from dagster_graphql.test.utils import execute_dagster_graphql

        self.instance.add_dynamic_partitions("episodes", keys)
        result = execute_dagster_graphql(
            self.context.create_request_context(),
            LAUNCH_PARTITION_BACKFILL_MUTATION,
            variables={
                "backfillParams": {
                    "partitionNames": keys,
                    "assetSelection": [{"path": ["transcript"]}],
                }
            },
        )
        launched = result.data["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        list(execute_backfill_iteration(self.context, self.logger))
        runs = self.instance.get_runs(
            filters=dg.RunsFilter(tags={"dagster/backfill": launched["backfillId"]})
        )
        return [run.run_id for run in reversed(runs)]

    def iterate(self) -> None:
        """One pass of the run queue daemon."""
        list(self.daemon.run_iteration(self.context))

    def status(self, run_id: str) -> DagsterRunStatus:
        return self.instance.get_run_by_id(run_id).status

    def tags(self, run_id: str) -> dict[str, str]:
        return dict(self.instance.get_run_by_id(run_id).tags)

    def launched(self) -> list[str]:
        launcher = self.instance.run_launcher
        assert isinstance(launcher, MockedRunLauncher)
        return [run.run_id for run in launcher.queue()]

    def report(self, run_id: str, event_type: DagsterEventType) -> None:
        """What the run worker reports: the run started, succeeded or failed."""
        self.instance.report_dagster_event(
            DagsterEvent(event_type_value=event_type.value, job_name="episode_job"),
            run_id=run_id,
        )


@pytest.fixture
def queue(env) -> Iterator[Queue]:
    with (
        dg.instance_for_test(
            overrides=_instance_overrides(), temp_dir=str(env.dagster_home)
        ) as instance,
        _workspace(instance) as context,
    ):
        yield Queue(instance, context)


def test_the_project_queue_is_configured_as_expected(queue: Queue):
    """Guard: the instance under test really runs dagster.yaml's queue, not a default one."""
    config = queue.instance.get_concurrency_config().run_queue_config
    assert config is not None
    assert {"key": QUEUE_TAG, "value": "whisper", "limit": 1} in config.tag_concurrency_limits
    coordinator = queue.instance.run_coordinator
    assert type(coordinator).__name__ == "PodcastRunCoordinator"
    assert isinstance(coordinator, QueuedRunCoordinator)
    assert {"key": "dagster/backfill", "limit": 1} in config.tag_concurrency_limits


def test_second_whisper_run_waits_for_the_first(queue: Queue):
    # A Whisper run is dequeued, launched and reports that it started.
    first = queue.from_sensor("feed-a--000000000001", needs_whisper=True)
    assert queue.tags(first)[QUEUE_TAG] == "whisper"
    assert queue.status(first) == DagsterRunStatus.QUEUED
    queue.iterate()
    assert queue.launched() == [first]
    queue.report(first, DagsterEventType.RUN_START)
    assert queue.status(first) == DagsterRunStatus.STARTED

    # While it runs: a second Whisper run, a publisher-transcript run and a UI launch arrive.
    second = queue.from_sensor("feed-a--000000000002", needs_whisper=True)
    published = queue.from_sensor("feed-b--000000000003", needs_whisper=False)
    from_ui = queue.from_ui("feed-c--000000000004")
    assert queue.tags(second)[QUEUE_TAG] == "whisper"
    assert queue.tags(published)[QUEUE_TAG] == "published"
    # The launchpad sent no queue tag: the job's default tag routes it to the Whisper queue.
    ui_tags = queue.tags(from_ui)
    assert ui_tags[QUEUE_TAG] == "whisper"
    assert ui_tags["dagster/partition"] == "feed-c--000000000004"
    assert {queue.status(r) for r in (second, published, from_ui)} == {DagsterRunStatus.QUEUED}

    queue.iterate()
    assert queue.launched() == [first, published]
    assert queue.status(published) == DagsterRunStatus.STARTING
    assert queue.status(second) == DagsterRunStatus.QUEUED
    assert queue.status(from_ui) == DagsterRunStatus.QUEUED

    # Another pass changes nothing while the first Whisper run is still in progress.
    queue.iterate()
    assert queue.launched() == [first, published]

    # The first run succeeds: the next Whisper run (first in, first out) takes its place.
    queue.report(first, DagsterEventType.RUN_SUCCESS)
    assert queue.status(first) == DagsterRunStatus.SUCCESS
    queue.iterate()
    assert queue.launched() == [first, published, second]
    assert queue.status(second) == DagsterRunStatus.STARTING
    assert queue.status(from_ui) == DagsterRunStatus.QUEUED

    # A failed run gives its place back too; then the UI launch goes.
    queue.report(second, DagsterEventType.RUN_START)
    queue.report(second, DagsterEventType.RUN_FAILURE)
    assert queue.status(second) == DagsterRunStatus.FAILURE
    queue.iterate()
    assert queue.launched() == [first, published, second, from_ui]
    assert queue.status(from_ui) == DagsterRunStatus.STARTING


def test_a_run_that_is_starting_already_holds_the_whisper_slot(queue: Queue):
    """Launched but not yet reporting RUN_START (a slow worker) still counts as in progress."""
    first = queue.from_sensor("feed-a--000000000011", needs_whisper=True)
    queue.iterate()
    assert queue.status(first) == DagsterRunStatus.STARTING
    second = queue.from_ui("feed-a--000000000012")
    queue.iterate()
    assert queue.launched() == [first]
    assert queue.status(second) == DagsterRunStatus.QUEUED


def test_backfill_runs_are_whisper_runs_with_their_own_limit_and_lower_priority(queue: Queue):
    # A Whisper run from the sensor is in progress.
    first = queue.from_sensor("feed-a--000000000021", needs_whisper=True)
    queue.iterate()
    queue.report(first, DagsterEventType.RUN_START)

    # A backfill of 10 episodes from the UI: two runs (8 + 2 partitions), queued behind it.
    backfill = queue.backfill_from_ui([f"feed-b--0000000001{i:02d}" for i in range(10)])
    assert len(backfill) == 2
    for run_id in backfill:
        tags = queue.tags(run_id)
        # Dagster's implicit asset job has no queue tag: the coordinator routed it.
        assert queue.instance.get_run_by_id(run_id).job_name == "__ASSET_JOB"
        assert tags[QUEUE_TAG] == "whisper"
        assert tags["dagster/priority"] == "-1"
        assert queue.status(run_id) == DagsterRunStatus.QUEUED
    # Then the sensor finds a new Whisper episode and a publisher-transcript one.
    later = queue.from_sensor("feed-a--000000000022", needs_whisper=True)
    published = queue.from_sensor("feed-c--000000000023", needs_whisper=False)
    queue.iterate()
    assert queue.launched() == [first, published]

    # The Whisper slot frees: the sensor's run goes first although the backfill queued earlier.
    queue.report(first, DagsterEventType.RUN_SUCCESS)
    queue.iterate()
    assert queue.launched() == [first, published, later]
    assert {queue.status(r) for r in backfill} == {DagsterRunStatus.QUEUED}
    queue.report(later, DagsterEventType.RUN_START)
    queue.report(later, DagsterEventType.RUN_SUCCESS)
    queue.iterate()
    # One backfill run at a time (its own limit), and never beside another Whisper run.
    assert queue.launched() == [first, published, later, backfill[0]]
    queue.report(backfill[0], DagsterEventType.RUN_START)
    other = queue.from_sensor("feed-a--000000000024", needs_whisper=True)
    queue.iterate()
    assert queue.status(other) == DagsterRunStatus.QUEUED
    assert queue.status(backfill[1]) == DagsterRunStatus.QUEUED


@pytest.mark.parametrize(
    ("selection", "tags", "expected_queue", "gpu"),
    [
        # Materialize from the UI: the implicit asset job, no queue tag.
        ({"episode_metadata", "raw_audio", "transcript"}, {}, "whisper", True),
        ({"summary", "embeddings"}, {}, "enrichment", False),
        # Backfills: of the ingestion assets, of the enrichment chain, of a tagged job.
        ({"raw_audio", "transcript"}, {"dagster/backfill": "abc"}, "whisper", True),
        ({"summary"}, {"dagster/backfill": "abc"}, "enrichment", False),
        (None, {"dagster/backfill": "abc", QUEUE_TAG: "enrichment"}, None, False),
        # A job with its own queue tag (episode_job from the sensor) is left as it is.
        ({"transcript"}, {QUEUE_TAG: "published"}, None, False),
    ],
)
def test_runs_without_a_queue_tag_are_routed_by_what_they_materialize(
    selection, tags, expected_queue, gpu
):
    from podcast_assets.k8s import K8S_CONFIG_TAG
    from podcast_assets.queue import queue_tags

    run = dg.DagsterRun(
        job_name="__ASSET_JOB",
        tags=tags,
        asset_selection=frozenset(dg.AssetKey(k) for k in selection) if selection else None,
    )
    added = queue_tags(run)
    assert added.get(QUEUE_TAG) == expected_queue
    assert (K8S_CONFIG_TAG in added) == gpu
    assert ("dagster/priority" in added) == ("dagster/backfill" in tags)
