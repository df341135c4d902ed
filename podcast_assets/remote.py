"""``podcast ingest --remote``: the same ingestion, done by a Dagster webserver over GraphQL.

Submit a job, get a run id, poll its status: ``feed_intake_job`` follows the feed on the server and
plans the episodes (see ``podcast_assets.api``), then one ``episode_job`` run per episode with the
tags the RSS sensor would give it, the enrichment chain after each, and the corpus rebuild. The
summary is the local ``IngestReport``, so ``--json`` is the same contract either way.
"""

import json
import sys
import time
from collections.abc import Callable, Iterable
from urllib.parse import unquote, urlsplit

from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
from requests.auth import HTTPBasicAuth

from podcast_assets.api import ENRICH, INGEST, INTAKE_JOB, INTAKE_OP, PLAN_LABEL
from podcast_assets.jobs import ENRICHMENT_QUEUE, QUEUE_TAG
from podcast_assets.runner import EpisodeStatus, IngestReport

LAUNCHED_BY = {"podcast/launched_by": "podcast-ingest-remote"}
FINAL = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}

RUN_EVENTS_QUERY = """
query PodcastRunEvents($runId: ID!, $cursor: String) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: 1000) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { message stepKey }
        ... on ExecutionStepFailureEvent {
          error { message cause { message cause { message } } }
          failureMetadata { description }
        }
        ... on ExecutionStepOutputEvent {
          outputName
          metadataEntries { label ... on JsonMetadataEntry { jsonString } }
        }
        ... on MaterializationEvent {
          assetKey { path }
          partition
          metadataEntries { label ... on TextMetadataEntry { text } }
        }
      }
    }
    ... on PythonError { message }
    ... on RunNotFoundError { message }
  }
}
"""

ACTIVE_RUNS_QUERY = """
query PodcastActiveRuns($job: String!, $partition: String!) {
  runsOrError(
    filter: {
      pipelineName: $job
      tags: [{key: "dagster/partition", value: $partition}]
      statuses: [QUEUED, NOT_STARTED, STARTING, STARTED]
    }
    limit: 1
  ) {
    __typename
    ... on Runs { results { runId } }
    ... on PythonError { message }
  }
}
"""

LOCATIONS_QUERY = """
query PodcastLocations {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
    ... on PythonError { message }
  }
}
"""


class RemoteError(RuntimeError):
    """The server cannot be reached or cannot do what was asked; the message names its URL."""


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else text.strip()


class RemoteDagster:
    """Jobs on a ``dagster-webserver``, through ``DagsterGraphQLClient``.

    Args:
        url: the webserver, e.g. ``http://127.0.0.1:3000``; a path prefix is kept, and
            ``https://user:password@host/`` sends HTTP basic auth (for an authenticating proxy).
        poll_seconds: how often run statuses are polled.
        timeout: seconds each HTTP request may take.
    """

    def __init__(self, url: str, poll_seconds: float = 1.0, timeout: int = 60) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise RemoteError("--remote: give the webserver's URL, e.g. http://127.0.0.1:3000")
        # Credentials in the URL go to an authenticating proxy, never into messages.
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.url = f"{parts.scheme}://{netloc}{parts.path}".rstrip("/")
        self.poll_seconds = poll_seconds
        auth = None
        if parts.username:
            auth = HTTPBasicAuth(unquote(parts.username), unquote(parts.password or ""))
        try:
            self.client = DagsterGraphQLClient(
                parts.hostname,
                port_number=parts.port,
                use_https=parts.scheme == "https",
                timeout=timeout,
                auth=auth,
                path_prefix=parts.path.rstrip("/"),
            )
        except DagsterGraphQLClientError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: Exception) -> RemoteError:
        cause = exc.__cause__ or exc
        return RemoteError(
            f"cannot reach the Dagster webserver at {self.url}: {type(cause).__name__}: "
            f"{_last_line(str(cause))[:300]}"
        )

    def _execute(self, query: str, variables: dict | None = None) -> dict:
        try:
            return self.client._execute(query, variables)
        except DagsterGraphQLClientError as exc:
            raise self._unreachable(exc) from exc

    def check(self) -> str:
        """Fail unless a Dagster webserver answers at the URL; returns its Dagster version."""
        return self._execute("query PodcastVersion { version }")["version"]

    def location_errors(self) -> list[str]:
        """Code locations on the server that failed to load, with their error."""
        data = self._execute(LOCATIONS_QUERY)["workspaceOrError"]
        if data["__typename"] != "Workspace":
            return [data.get("message", data["__typename"])]
        return [
            f"location {entry['name']}: {_last_line(entry['locationOrLoadError']['message'])}"
            for entry in data["locationEntries"]
            if (entry.get("locationOrLoadError") or {}).get("__typename") == "PythonError"
        ]

    def submit(self, job_name: str, tags: dict[str, str], run_config: dict | None = None) -> str:
        """Launch a run of ``job_name``; returns its run id."""
        try:
            return self.client.submit_job_execution(
                job_name, tags=tags | LAUNCHED_BY, run_config=run_config or {}
            )
        except DagsterGraphQLClientError as exc:
            if isinstance(exc.__cause__, OSError) or "connecting to url" in str(exc):
                raise self._unreachable(exc) from exc
            kind = exc.args[0] if exc.args else type(exc).__name__
            detail = exc.args[1] if len(exc.args) > 1 else ""
            if kind == "JobNotFoundError" or "not found" in str(exc).lower():
                broken = self.location_errors()
                hint = (
                    f"; code locations that failed to load: {'; '.join(broken)}"
                    if broken
                    else "; is the podcast code location (podcast_assets.definitions) loaded "
                    "and up to date? reload it from the UI's Deployment page"
                )
                raise RemoteError(f"job {job_name} not found on {self.url}{hint}") from exc
            raise RemoteError(
                f"{self.url} refused to launch {job_name}: {kind} {_last_line(str(detail))}"
            ) from exc

    def active_run(self, job_name: str, partition: str) -> str | None:
        """A queued or running run of ``job_name`` for ``partition`` (say, from a sensor)."""
        data = self._execute(ACTIVE_RUNS_QUERY, {"job": job_name, "partition": partition})
        results = data["runsOrError"].get("results") or []
        return results[0]["runId"] if results else None

    def status(self, run_id: str) -> DagsterRunStatus:
        """The run's status."""
        try:
            return self.client.get_run_status(run_id)
        except DagsterGraphQLClientError as exc:
            if "connecting to url" in str(exc):
                raise self._unreachable(exc) from exc
            raise RemoteError(f"run {run_id} on {self.url}: {_last_line(str(exc))}") from exc

    def wait(self, run_id: str) -> DagsterRunStatus:
        """Poll until the run reaches a final status (success, failure, canceled)."""
        while (status := self.status(run_id)) not in FINAL:
            time.sleep(self.poll_seconds)
        return status

    def events(self, run_id: str) -> list[dict]:
        """The run's event log."""
        events, cursor = [], None
        while True:
            data = self._execute(RUN_EVENTS_QUERY, {"runId": run_id, "cursor": cursor})
            logs = data["logsForRun"]
            if logs["__typename"] != "EventConnection":
                raise RemoteError(f"run {run_id} on {self.url}: {logs.get('message')}")
            events += logs["events"]
            cursor = logs["cursor"]
            if not logs["hasMore"]:
                return events

    def failure(self, run_id: str, events: list[dict] | None = None) -> str:
        """Why a run failed: the first step failure's description, else the run failure."""
        events = self.events(run_id) if events is None else events
        for event in events:
            if event["__typename"] == "ExecutionStepFailureEvent":
                description = (event.get("failureMetadata") or {}).get("description")
                if description:
                    return description
                error = event.get("error")
                if error:
                    # Dagster wraps the user's exception: its cause carries the real message.
                    while error.get("cause"):
                        error = error["cause"]
                    return _last_line(error["message"])
        for event in events:
            if event["__typename"] == "RunFailureEvent" and event.get("message"):
                return event["message"]
        return "run failed"

    def materialization_text(self, events: Iterable[dict], asset: str, label: str) -> str | None:
        """A text metadata value of the last materialization of ``asset`` in the events."""
        value = None
        for event in events:
            if event["__typename"] == "MaterializationEvent" and event["assetKey"]["path"] == [
                asset
            ]:
                for entry in event["metadataEntries"]:
                    if entry["label"] == label and "text" in entry:
                        value = entry["text"]
        return value

    def output_json(self, events: Iterable[dict], label: str) -> dict | None:
        """A JSON metadata value of a step output in the events."""
        for event in events:
            if event["__typename"] == "ExecutionStepOutputEvent":
                for entry in event["metadataEntries"]:
                    if entry["label"] == label and "jsonString" in entry:
                        return json.loads(entry["jsonString"])
        return None

    def run(self, job_name: str, tags: dict[str, str], run_config: dict | None = None):
        """Submit a run and wait for it.

        Returns:
            ``(run_id, ok, error, events)``.
        """
        run_id = self.submit(job_name, tags, run_config)
        status = self.wait(run_id)
        events = self.events(run_id)
        if status == DagsterRunStatus.SUCCESS:
            return run_id, True, None, events
        if status == DagsterRunStatus.CANCELED:
            return run_id, False, f"run {run_id} was canceled", events
        return run_id, False, self.failure(run_id, events), events


def ingest_remote(
    url: str,
    server: str,
    *,
    limit: int | None = None,
    name: str | None = None,
    whisper_model: str | None = None,
    poll_seconds: float = 1.0,
    echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> IngestReport:
    """``podcast ingest`` through the Dagster webserver at ``server``.

    Episode runs are all submitted first, so the server's run queue decides what runs in parallel
    (one Whisper run at a time with this repository's ``dagster.yaml``); each episode's enrichment
    run is launched as soon as its ingestion run succeeds, as ``enrichment_sensor`` would.

    Raises:
        RemoteError: the server is unreachable, lacks the jobs, or the feed cannot be followed.
    """
    remote = RemoteDagster(server, poll_seconds=poll_seconds)
    remote.check()
    config = {"url": url, "limit": limit, "name": name, "whisper_model": whisper_model}
    run_config = {
        "ops": {INTAKE_OP: {"config": {k: v for k, v in config.items() if v is not None}}}
    }
    intake_id, ok, error, events = remote.run(INTAKE_JOB, {}, run_config)
    if not ok:
        raise RemoteError(f"{INTAKE_JOB} run {intake_id} on {remote.url} failed: {error}")
    plan = remote.output_json(events, PLAN_LABEL)
    if plan is None:
        raise RemoteError(f"{INTAKE_JOB} run {intake_id} on {remote.url} returned no plan")
    if plan["followed"]:
        echo(f"{remote.url} follows {plan['url']} as {plan['feed']!r}")

    items = plan["episodes"]
    statuses = {
        i["key"]: EpisodeStatus(
            i["key"], i["title"], "up-to-date", transcript_source=i["transcript_source"]
        )
        for i in items
    }
    started = {i["key"]: time.perf_counter() for i in items}
    ingesting = {}
    for item in items:
        if item["action"] == INGEST:
            run_id = remote.submit("episode_job", item["tags"] | {"dagster/partition": item["key"]})
            statuses[item["key"]].run_id = run_id
            ingesting[run_id] = item["key"]
    enriching = {}

    def enrich(key: str) -> None:
        # The server's enrichment_sensor may have requested it already: follow that run instead.
        run_id = remote.active_run("enrichment_job", key)
        if run_id is None:
            tags = {QUEUE_TAG: ENRICHMENT_QUEUE, "dagster/partition": key}
            run_id = remote.submit("enrichment_job", tags)
        statuses[key].enrichment_run_id = run_id
        enriching[run_id] = key

    for item in items:
        if item["action"] == ENRICH:
            enrich(item["key"])
    if ingesting or enriching:
        echo(f"runs submitted to {remote.url}; follow them at {remote.url}/runs")

    finished = 0
    todo = sum(1 for i in items if i["action"] in {INGEST, ENRICH})
    while ingesting or enriching:
        for run_id, key in list(ingesting.items()) + list(enriching.items()):
            run_status = remote.status(run_id)
            if run_status not in FINAL:
                continue
            status = statuses[key]
            events = remote.events(run_id)
            source = remote.materialization_text(events, "transcript", "source")
            status.transcript_source = source or status.transcript_source
            if run_status != DagsterRunStatus.SUCCESS:
                status.status = "failed"
                status.error = (
                    f"run {run_id} was canceled"
                    if run_status == DagsterRunStatus.CANCELED
                    else remote.failure(run_id, events)
                )
            elif run_id in ingesting:
                status.status = "ok"
                enrich(key)
            else:
                status.status = "ok"
            ingesting.pop(run_id, None)
            enriching.pop(run_id, None)
            # An episode is done when a run fails or its enrichment run (the last one) ends.
            if status.status == "failed" or run_id == status.enrichment_run_id:
                finished += 1
                status.seconds = round(time.perf_counter() - started[key], 2)
                echo(
                    f"[{finished}/{todo}] {key} {status.status}"
                    f" ({status.error or status.transcript_source}) in {status.seconds:.1f}s"
                )
        if ingesting or enriching:
            time.sleep(poll_seconds)

    if any(s.status == "ok" for s in statuses.values()):
        begun = time.perf_counter()
        _, ok, error, _ = remote.run("corpus_graph_job", {QUEUE_TAG: ENRICHMENT_QUEUE})
        echo(
            f"corpus graph and database {'rebuilt' if ok else 'failed: ' + str(error)} "
            f"in {time.perf_counter() - begun:.1f}s"
        )
    targets = [k for k in plan["targets"] if k in statuses]
    ordered = [statuses[k] for k in targets]
    ordered += [s for k, s in statuses.items() if k not in set(targets)]
    return IngestReport(feed=plan["feed"], url=plan["url"], episodes=ordered)
