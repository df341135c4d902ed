"""Foreground ingestion for ``podcast ingest``.

The RSS sensor's logic runs for one feed, then its runs execute in this process through the Dagster
instance, recorded there exactly like runs launched from the UI.
"""

import datetime as dt
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import dagster as dg

from partitions import EPISODES
from podcast_assets.batch import EpisodeInterrupted
from podcast_assets.jobs import ENRICHMENT_QUEUE, QUEUE_TAG
from podcast_core.catalog import Catalog, CatalogError, FeedConfig, validate_url
from podcast_core.digest_feed import is_digest_feed
from podcast_core.discovery import FEED_SNAPSHOT, EpisodeRequest, needs_whisper
from podcast_core.feeds import parse_feed
from podcast_core.keys import slugify
from podcast_core.models import Episode
from podcast_core.settings import Settings
from podcast_core.storage import ArtifactStore, episode_path, feed_path
from resources import ArtifactStoreResource, CatalogResource, HttpResource, build_resources
from sensors.enrichment import TRANSCRIPT, needs_enrichment
from sensors.rss import SENSOR_NAME, poll_catalog, run_request

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The full event log is in the instance (and the UI); the terminal gets one line per episode.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class IngestError(RuntimeError):
    """Ingestion could not start (bad feed URL, unreachable or invalid feed)."""


@dataclass
class EpisodeStatus:
    """The outcome of one episode in ``podcast ingest``."""

    key: str
    title: str | None
    status: str
    transcript_source: str | None = None
    error: str | None = None
    run_id: str | None = None
    enrichment_run_id: str | None = None
    seconds: float | None = None


@dataclass
class IngestReport:
    """What ``podcast ingest`` did for one feed."""

    feed: str
    url: str
    episodes: list[EpisodeStatus]

    @property
    def failed(self) -> list[EpisodeStatus]:
        """Episodes whose run failed."""
        return [e for e in self.episodes if e.status == "failed"]

    def to_dict(self) -> dict:
        """The ``--json`` contract: ``{"feed", "episodes": [{"key", "title", "status", ...}]}``."""
        return {"feed": self.feed, "url": self.url, "episodes": [asdict(e) for e in self.episodes]}


def get_instance(settings: Settings) -> dg.DagsterInstance:
    """The Dagster instance: ``DAGSTER_HOME``, else ``{data_dir}/dagster_home``.

    A new home under the data directory gets the project's ``dagster.yaml`` (run queue limits), so
    ``dagster dev`` pointed at it behaves like production. An empty ``DAGSTER_HOME`` works too: it
    is an embedded SQLite instance.
    """
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    if "DAGSTER_HOME" not in os.environ:
        template = PROJECT_ROOT / "dagster.yaml"
        if template.exists() and not (home / "dagster.yaml").exists():
            shutil.copyfile(template, home / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


_INTERRUPTS = {"DagsterExecutionInterruptedError", "KeyboardInterrupt", EpisodeInterrupted.__name__}


def _interrupted(result: dg.ExecuteInProcessResult) -> bool:
    """Whether the run was interrupted (Ctrl-C) rather than failed, in a step or between steps."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            error = event.step_failure_data.error
        elif event.is_run_failure and event.event_specific_data:
            error = event.event_specific_data.error
        else:
            continue
        if error and error.cls_name in _INTERRUPTS:
            return True
    return False


def _step_failure(result: dg.ExecuteInProcessResult) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            data = event.step_failure_data
            if data.user_failure_data and data.user_failure_data.description:
                return data.user_failure_data.description
            if data.error:
                return data.error.message.strip().splitlines()[-1]
    return "run failed"


def add_feed(catalog: Catalog, http: HttpResource, url: str, **overrides) -> FeedConfig:
    """Fetch and validate a feed, name it from its title unless named, and add it to the catalog."""
    validate_url(url)
    name = overrides.pop("name", None)
    try:
        content = http.client().fetch(url)
        parsed = parse_feed(content, feed_slug=name or "feed", base_url=url)
    except Exception as exc:
        raise IngestError(f"cannot add feed {url}: {exc}") from exc
    if is_digest_feed(content):
        raise IngestError(
            f"cannot add feed {url}: it is this platform's own weekly digest feed, and ingesting "
            "it would loop the digest back into itself"
        )
    if name is None:
        base = slugify(parsed.feed.title or url.split("//", 1)[-1])
        taken = {f.name for f in catalog.feeds()}
        name, n = base, 2
        while name in taken:
            name, n = f"{base[:44]}-{n}", n + 1
    return catalog.add(FeedConfig(name=name, url=url, **overrides))


@dataclass
class FeedPlan:
    """What following a feed found, and which of its episodes need which runs."""

    feed: FeedConfig
    followed: bool
    """Whether the feed was added to the catalog by this call."""
    requests: dict[str, EpisodeRequest]
    """Episodes that need ``episode_job``, in launch order: new ones, then unfinished targets."""
    targets: list[str]
    """The newest ``limit`` episode keys, newest first."""
    titles: dict[str, str | None]

    @property
    def todo(self) -> list[str]:
        """Every episode to report on: the requested ones, then the rest of the targets."""
        return list(self.requests) + [k for k in self.targets if k not in self.requests]

    def run_tags(self, key: str) -> dict[str, str]:
        """The tags of ``key``'s ``episode_job`` run: those the RSS sensor would give it."""
        return dict(run_request(self.requests[key]).tags) | {"podcast/sensor": SENSOR_NAME}


def transcript_source(store: ArtifactStore, key: str) -> str | None:
    """The ``source`` of the episode's transcript, or None before it has one (one read)."""
    try:
        return store.read_json(episode_path(key, "transcript.json"))["source"]
    except FileNotFoundError:
        return None


def plan_feed(
    instance: dg.DagsterInstance,
    artifacts: ArtifactStoreResource,
    catalog_res: CatalogResource,
    http_res: HttpResource,
    url: str,
    *,
    limit: int | None = None,
    name: str | None = None,
    whisper_model: str | None = None,
) -> FeedPlan:
    """Follow ``url`` (adding it to the catalog if new) and plan its newest episodes.

    New episodes are found exactly as the RSS sensor finds them and become partitions; every
    requested episode, plus any of the newest ``limit`` that has no transcript yet (a failed run,
    a backfill never started), needs ``episode_job``. Shared by ``podcast ingest`` and the server
    side of ``podcast ingest --remote``.
    """
    catalog = catalog_res.catalog()
    feed = catalog.find_url(url)
    followed = feed is None
    if feed is None:
        overrides = {"name": name, "initial_episodes": limit, "whisper_model": whisper_model}
        feed = add_feed(
            catalog, http_res, url, **{k: v for k, v in overrides.items() if v is not None}
        )
    elif whisper_model and whisper_model != feed.whisper_model:
        feed = catalog.update(feed.name, whisper_model=whisper_model)

    found = poll_catalog(instance, None, artifacts, catalog_res, http_res, {feed.name})
    if found.errors:
        raise IngestError(f"feed {feed.name} ({feed.url}): {found.errors[0].error}")
    if found.add_keys:
        instance.add_dynamic_partitions(EPISODES.name, found.add_keys)
    requests = {r.key: r for r in found.requests}

    snapshot = artifacts.store().read_json(feed_path(feed.name, FEED_SNAPSHOT))
    known = set(instance.get_dynamic_partitions(EPISODES.name))
    episodes = [Episode.from_dict(e) for e in snapshot["episodes"].values()]
    episodes = [e for e in episodes if e.key in known]
    episodes.sort(key=lambda e: e.published or "", reverse=True)
    take = limit if limit is not None else (feed.initial_episodes or catalog_res.initial_episodes)
    targets = episodes[: max(take, 0)]
    done = instance.get_materialized_partitions(TRANSCRIPT)
    for episode in targets:
        if episode.key not in requests and episode.key not in done:
            requests[episode.key] = EpisodeRequest(
                episode.key, needs_whisper(episode, feed.language), episode.title
            )
    return FeedPlan(
        feed=feed,
        followed=followed,
        requests=requests,
        targets=[e.key for e in targets],
        titles={e.key: e.title for e in episodes},
    )


def ingest(
    url: str,
    settings: Settings,
    instance: dg.DagsterInstance,
    *,
    limit: int | None = None,
    name: str | None = None,
    whisper_model: str | None = None,
    echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> IngestReport:
    """Follow ``url`` (adding it to the catalog if new) and process its newest episodes.

    New episodes are found exactly as the RSS sensor finds them and become partitions; then every
    requested episode, plus any of the newest ``limit`` that has no transcript yet (a failed run,
    a backfill never started), runs ``episode_job`` in this process through the instance.
    """
    from podcast_assets.definitions import build_definitions

    resources = build_resources(settings)
    artifacts: ArtifactStoreResource = resources["artifacts"]
    plan = plan_feed(
        instance,
        artifacts,
        resources["catalog"],
        resources["http"],
        url,
        limit=limit,
        name=name,
        whisper_model=whisper_model,
    )
    if plan.followed:
        echo(f"following {plan.feed.url} as {plan.feed.name!r}")
    requests, titles, store = plan.requests, plan.titles, artifacts.store()

    definitions = build_definitions(settings)
    ingest_job = definitions.resolve_job_def("episode_job")
    enrich_job = definitions.resolve_job_def("enrichment_job")

    def execute(job, key: str | None, tags: dict[str, str]) -> tuple[bool, str | None, str]:
        tags = tags | {"podcast/launched_by": "podcast-ingest"}
        result = job.execute_in_process(
            instance=instance,
            partition_key=key,
            tags=tags,
            raise_on_error=False,
            run_config=QUIET,
        )
        if not result.success and _interrupted(result):
            # Ctrl-C ends the whole ingest, not only the episode it landed in.
            echo(f"interrupted: {key} stopped in {job.name} (run {result.run_id}, failed)")
            raise KeyboardInterrupt
        return result.success, None if result.success else _step_failure(result), result.run_id

    todo = plan.todo
    statuses: dict[str, EpisodeStatus] = {}
    for n, key in enumerate(todo, start=1):
        started = time.perf_counter()
        status = EpisodeStatus(key, titles.get(key), "up-to-date")
        if key in requests:
            ok, status.error, status.run_id = execute(ingest_job, key, plan.run_tags(key))
            status.status = "ok" if ok else "failed"
        # The chain continues as enrichment_sensor would continue it, in this process.
        if status.status != "failed" and needs_enrichment(instance, key):
            tags = {QUEUE_TAG: ENRICHMENT_QUEUE}
            ok, status.error, status.enrichment_run_id = execute(enrich_job, key, tags)
            status.status = "ok" if ok else "failed"
        status.transcript_source = transcript_source(store, key)
        status.seconds = round(time.perf_counter() - started, 2)
        statuses[key] = status
        if status.status != "up-to-date":
            echo(
                f"[{n}/{len(todo)}] {key} {status.status}"
                f" ({status.error or status.transcript_source}) in {status.seconds:.1f}s"
            )
    if any(s.status == "ok" for s in statuses.values()):
        started = time.perf_counter()
        ok, error, _ = execute(
            definitions.resolve_job_def("corpus_graph_job"), None, {QUEUE_TAG: ENRICHMENT_QUEUE}
        )
        echo(
            f"corpus graph and database {'rebuilt' if ok else 'failed: ' + str(error)} "
            f"in {time.perf_counter() - started:.1f}s"
        )
    ordered = [statuses[key] for key in plan.targets if key in statuses]
    ordered += [s for k, s in statuses.items() if k not in set(plan.targets)]
    return IngestReport(feed=plan.feed.name, url=plan.feed.url, episodes=ordered)


__all__ = ["CatalogError", "IngestError", "IngestReport", "get_instance", "ingest"]


class DigestError(RuntimeError):
    """The weekly digest could not be made; the message names the week and the cause."""


def resolve_week(week: str | None, since: str | None, today: dt.date | None = None) -> str:
    """An ISO week label from ``--week 2026-W47`` or ``--since 7d`` (the week that day fell in)."""
    from podcast_core.digest import week_bounds, week_of

    if week and since:
        raise DigestError("give --week or --since, not both")
    if week:
        try:
            week_bounds(week)
        except ValueError as exc:
            raise DigestError(f"--week {week!r}: {exc}") from exc
        return week
    spec = (since or "7d").strip().lower()
    if not spec.endswith("d") or not spec[:-1].isdigit():
        raise DigestError(f"--since {since!r}: use a number of days such as 7d")
    day = (today or dt.datetime.now(dt.UTC).date()) - dt.timedelta(days=int(spec[:-1]))
    return week_of(day)


def digest(
    week: str,
    settings: Settings,
    instance: dg.DagsterInstance,
    echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> dict:
    """Materialize the week's digest (text, audio, feed entry) when missing or stale.

    Returns:
        The digest document.
    """
    from partitions import WEEKS
    from podcast_assets.definitions import build_definitions
    from podcast_core import weekly
    from podcast_core.digest import week_bounds
    from resources import open_artifact_store

    start, _ = week_bounds(week)
    partition = start.date().isoformat()
    if partition not in WEEKS.get_partition_keys(dynamic_partitions_store=instance):
        raise DigestError(
            f"week {week} has no digest partition: weeks run from "
            f"{WEEKS.start.date().isoformat()} up to the last finished week"
        )
    store = open_artifact_store(settings)
    if weekly.is_current(store, week):
        echo(f"digest {week} is up to date")
    else:
        definitions = build_definitions(settings)
        for job_name, key in (("weekly_digest_job", partition), ("digest_feed_job", None)):
            started = time.perf_counter()
            result = definitions.resolve_job_def(job_name).execute_in_process(
                instance=instance,
                partition_key=key,
                raise_on_error=False,
                run_config=QUIET,
                tags={"podcast/launched_by": "podcast-digest"},
            )
            if not result.success:
                raise DigestError(f"digest {week}: {job_name} failed: {_step_failure(result)}")
            echo(f"{job_name} for {week} done in {time.perf_counter() - started:.1f}s")
    return store.read_json(f"{weekly.week_dir(week)}/digest.json")
