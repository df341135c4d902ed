"""The RSS sensor, evaluated for real against feeds served on loopback.

Each tick is evaluated the way the sensor daemon does it: the sensor comes from the Definitions,
its resources are the Definitions' top-level resources, ``evaluate_tick`` resolves every run
request against the partitions (including the ones added by the same tick), and the dynamic
partition requests are applied to the instance before the next tick, with the cursor carried
forward.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from partitions import EPISODES
from podcast_assets.ingestion import INGESTION_ASSETS
from podcast_assets.jobs import PUBLISHED_QUEUE, QUEUE_TAG, WHISPER_QUEUE, episode_job
from podcast_core import discovery
from podcast_core.catalog import Catalog, FeedConfig
from podcast_core.keys import episode_identity, episode_key
from resources import CatalogResource, HttpResource, build_resources
from sensors.rss import rss_sensor
from tests.conftest import free_port, rss

EPOCH = dt.datetime(2024, 1, 1, 10, 0, tzinfo=dt.UTC)


# --- feeds ------------------------------------------------------------------------------------


def item(feed: str, n: int, *, audio: bool = True, transcript: bool = False) -> dict[str, Any]:
    """RSS item ``n`` of ``feed``, published on day ``n`` after 2024-01-01 (bigger is newer)."""
    entry: dict[str, Any] = {
        "title": f"{feed} episode {n}",
        "guid": f"{feed}-ep-{n}",
        "pub_date": format_datetime(EPOCH + dt.timedelta(days=n), usegmt=True),
    }
    if audio:
        entry["audio"] = f"https://cdn.example.com/{feed}/{n}.mp3"
    if transcript:
        entry["transcripts"] = [(f"https://cdn.example.com/{feed}/{n}.vtt", "text/vtt")]
    return entry


def feed_body(feed: str, numbers: list[int], **per_item: dict[str, Any]) -> str:
    """A feed with items ``numbers`` in document order; ``per_item["n3"]`` overrides item 3."""
    return rss(feed, [item(feed, n, **per_item.get(f"n{n}", {})) for n in numbers])


def key(feed: str, n: int) -> str:
    """The partition key of item ``n`` of ``feed``, derived independently of the parser."""
    return episode_key(feed, episode_identity(f"{feed}-ep-{n}"))


def keys(feed: str, numbers) -> set[str]:
    return {key(feed, n) for n in numbers}


# --- the sensor, ticking as the daemon runs it ------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Tick:
    """What one evaluation produced, after its partition requests were applied."""

    run_requests: list[dg.RunRequest]
    added: list[str]
    cursor: dict[str, dict[str, Any]]
    skip_message: str | None
    logs: list[tuple[int, str]]
    seconds: float

    @property
    def requested(self) -> set[str]:
        return {r.partition_key for r in self.run_requests}

    def warnings(self, feed: str) -> list[str]:
        return [m for level, m in self.logs if level >= logging.WARNING and f"feed {feed}:" in m]


@dataclass
class Harness:
    env: Any
    instance: dg.DagsterInstance
    catalog: Catalog
    defs: dg.Definitions
    resources: dict[str, Any]
    cursor: str | None = None
    requested_ever: set[str] = field(default_factory=set)

    def add_feed(self, name: str, url: str, **overrides: Any) -> None:
        self.catalog.add(FeedConfig(name=name, url=url, **overrides))

    def partitions(self) -> set[str]:
        return set(self.instance.get_dynamic_partitions(EPISODES.name))

    def tick(self) -> Tick:
        sensor = self.defs.get_sensor_def(rss_sensor.name)
        handler = _Records()
        started = time.perf_counter()
        with dg.build_sensor_context(
            instance=self.instance,
            instance_ref=self.instance.get_ref(),  # lets evaluate_tick check partition keys
            cursor=self.cursor,
            definitions=self.defs,
            resources=self.resources,
        ) as context:
            context.log.addHandler(handler)
            data = sensor.evaluate_tick(context)
        seconds = time.perf_counter() - started

        added: list[str] = []
        for request in data.dynamic_partitions_requests or []:
            assert isinstance(request, dg.AddDynamicPartitionsRequest)
            assert request.partitions_def_name == EPISODES.name
            added.extend(request.partition_keys)
        assert len(added) == len(set(added)), "a key was added twice in one tick"
        assert not set(added) & self.partitions(), "an existing partition was added again"
        if added:
            self.instance.add_dynamic_partitions(EPISODES.name, added)

        run_requests = list(data.run_requests or [])
        run_keys = [r.run_key for r in run_requests]
        assert len(run_keys) == len(set(run_keys))
        again = set(run_keys) & self.requested_ever
        assert not again, f"runs requested twice: {sorted(again)}"
        self.requested_ever |= set(run_keys)
        assert {r.partition_key for r in run_requests} <= self.partitions()

        assert data.cursor is not None
        self.cursor = data.cursor
        return Tick(
            run_requests=run_requests,
            added=added,
            cursor=json.loads(data.cursor),
            skip_message=data.skip_message,
            logs=[(r.levelno, r.getMessage()) for r in handler.records],
            seconds=seconds,
        )


@pytest.fixture(scope="module")
def shared_instance():
    # Creating an instance costs about a second; the tests share one and leave no partitions.
    with dg.instance_for_test(set_dagster_home=False) as instance:
        yield instance


@pytest.fixture
def instance(env, shared_instance):
    assert not shared_instance.get_dynamic_partitions(EPISODES.name)
    yield shared_instance
    for partition in shared_instance.get_dynamic_partitions(EPISODES.name):
        shared_instance.delete_dynamic_partition(EPISODES.name, partition)


@pytest.fixture
def make_harness(env, instance):
    """Build the code location with the sensor's limits overridden, like a deployment would."""

    def make(
        *,
        initial_episodes: int = 2,
        max_runs_per_tick: int = 50,
        instance: dg.DagsterInstance = instance,
        **http: Any,
    ) -> Harness:
        resources = build_resources(env)
        resources["catalog"] = CatalogResource(
            path=str(env.catalog_path),
            initial_episodes=initial_episodes,
            max_runs_per_tick=max_runs_per_tick,
        )
        if http:
            resources["http"] = HttpResource(**http)
        defs = dg.Definitions(
            assets=INGESTION_ASSETS, jobs=[episode_job], sensors=[rss_sensor], resources=resources
        )
        return Harness(env, instance, Catalog(env.catalog_path), defs, resources)

    return make


# --- 1. first sight ---------------------------------------------------------------------------


def test_first_tick_adds_every_item_and_requests_the_newest(env, feed_server, make_harness):
    h = make_harness(initial_episodes=2)
    # Document order is not date order: "newest" must come from pubDate.
    url = feed_server.set(
        "/show.xml",
        feed_body("show", [2, 4, 0, 3, 1], n4={"transcript": True}, n1={"transcript": True}),
    )
    h.add_feed("show", url)

    tick = h.tick()

    assert sorted(tick.added) == sorted(keys("show", range(5)))
    assert h.partitions() == keys("show", range(5))
    assert len(tick.run_requests) == 2
    assert tick.requested == {key("show", 4), key("show", 3)}
    queues = {}
    for request in tick.run_requests:
        assert request.run_key == request.partition_key
        assert request.tags["dagster/partition"] == request.partition_key
        queues[request.partition_key] = request.tags[QUEUE_TAG]
    # Episode 4 links a WebVTT transcript; episode 3 has none and needs Whisper.
    assert queues == {key("show", 4): PUBLISHED_QUEUE, key("show", 3): WHISPER_QUEUE}
    assert tick.skip_message is None
    assert tick.cursor["show"]["etag"]
    assert "last_error" not in tick.cursor["show"]

    snapshot = json.loads((Path(env.artifact_root) / "show" / "feed.json").read_text())
    assert snapshot["name"] == "show"
    assert snapshot["url"] == url
    assert set(snapshot["episodes"]) == keys("show", range(5))
    assert snapshot["episodes"][key("show", 0)]["title"] == "show episode 0"


# --- 2. idempotency ---------------------------------------------------------------------------


def test_second_tick_is_a_304_and_requests_nothing(feed_server, make_harness):
    h = make_harness()
    h.add_feed("show", feed_server.set("/show.xml", feed_body("show", range(5))))
    first = h.tick()
    assert len(first.run_requests) == 2
    etag = first.cursor["show"]["etag"]
    assert feed_server.conditional == [("/show.xml", None)]

    second = h.tick()

    # The validator of the first answer went back, and the unchanged body matches it: 304.
    assert feed_server.hits["/show.xml"] == 2
    assert feed_server.conditional[-1] == ("/show.xml", etag)
    assert second.run_requests == []
    assert second.added == []
    assert second.cursor["show"]["etag"] == etag
    assert "no new episodes" in (second.skip_message or "")
    assert h.partitions() == keys("show", range(5))


def test_without_validators_known_partitions_keep_ticks_idempotent(feed_server, make_harness):
    h = make_harness()
    h.add_feed("show", feed_server.set("/show.xml", feed_body("show", range(5)), etag=False))
    first = h.tick()
    assert first.requested == keys("show", [4, 3])
    assert len(first.added) == 5

    second = h.tick()
    third = h.tick()

    assert feed_server.hits["/show.xml"] == 3
    assert feed_server.conditional == [("/show.xml", None)] * 3  # nothing to send back: 200s
    for tick in (second, third):
        assert tick.run_requests == []
        assert tick.added == []


# --- 3. a new episode -------------------------------------------------------------------------


def test_an_episode_published_between_ticks_is_requested_once(env, feed_server, make_harness):
    h = make_harness()
    h.add_feed("show", feed_server.set("/show.xml", feed_body("show", range(5))))
    first = h.tick()
    old_etag = first.cursor["show"]["etag"]

    feed_server.set("/show.xml", feed_body("show", [5, 4, 3, 2, 1, 0]))
    second = h.tick()

    assert feed_server.conditional[-1] == ("/show.xml", old_etag)  # sent, but the body changed
    assert second.added == [key("show", 5)]
    assert [r.partition_key for r in second.run_requests] == [key("show", 5)]
    assert second.run_requests[0].tags[QUEUE_TAG] == WHISPER_QUEUE
    assert second.cursor["show"]["etag"] != old_etag
    snapshot = json.loads((Path(env.artifact_root) / "show" / "feed.json").read_text())
    assert set(snapshot["episodes"]) == keys("show", range(6))

    third = h.tick()
    assert third.run_requests == [] and third.added == []


# --- 4. failing feeds -------------------------------------------------------------------------


def test_failing_feeds_are_reported_and_picked_up_after_they_recover(feed_server, make_harness):
    h = make_harness(feed_timeout_seconds=0.5)
    h.add_feed("good", feed_server.set("/good.xml", feed_body("good", range(3))))
    h.add_feed("broken", feed_server.set("/broken.xml", "oops", status=500))
    h.add_feed("refused", f"http://127.0.0.1:{free_port()}/feed.xml")
    h.add_feed("slow", feed_server.set("/slow.xml", feed_body("slow", range(3)), delay=3.0))

    first = h.tick()

    # The tick did not wait for the slow feed: the per-request timeout cut it off.
    assert first.seconds < 2.5, first.seconds
    assert first.requested == keys("good", [2, 1])
    assert sorted(first.added) == sorted(keys("good", range(3)))
    assert "last_error" not in first.cursor["good"]
    assert "500" in first.cursor["broken"]["last_error"]
    assert first.cursor["refused"]["last_error"]
    assert "timed out" in first.cursor["slow"]["last_error"]
    for feed in ("broken", "refused", "slow"):
        assert "etag" not in first.cursor[feed]
        assert first.warnings(feed), f"no warning for {feed}: {first.logs}"
    assert not first.warnings("good")
    assert feed_server.hits["/broken.xml"] == 1

    feed_server.set("/broken.xml", feed_body("broken", range(3)))
    feed_server.set("/slow.xml", feed_body("slow", range(3)))
    second = h.tick()

    assert second.requested == keys("broken", [2, 1]) | keys("slow", [2, 1])
    assert sorted(second.added) == sorted(keys("broken", range(3)) | keys("slow", range(3)))
    for feed in ("broken", "slow"):
        assert "last_error" not in second.cursor[feed]
        assert second.cursor[feed]["etag"]
    assert second.cursor["refused"]["last_error"]
    assert second.warnings("refused")
    assert not second.warnings("broken") and not second.warnings("slow")

    third = h.tick()
    assert third.run_requests == []
    assert "1 failed: refused" in (third.skip_message or "")


def test_a_url_the_http_client_rejects_does_not_fail_the_tick(feed_server, make_harness):
    h = make_harness()
    h.add_feed("good", feed_server.set("/good.xml", feed_body("good", range(3))))
    # Passes the catalog's URL check, but httpx raises an IDNA error (a UnicodeError) on it.
    h.add_feed("badhost", "http://xn--/feed.xml")

    tick = h.tick()

    assert tick.requested == keys("good", [2, 1])
    assert tick.cursor["badhost"]["last_error"]
    assert tick.warnings("badhost")


# --- 5. not a feed ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (
            "<!DOCTYPE html><html><head><title>Moved</title></head>"
            "<body><h1>This podcast has moved</h1><p>Sorry.</p></body></html>",
            "text/html",
        ),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" * 8, "application/rss+xml"),
        ('{"error": "rate limited"}', "application/json"),
    ],
    ids=["html", "binary", "json"],
)
def test_garbage_is_an_error_naming_the_feed(feed_server, make_harness, body, content_type):
    h = make_harness()
    h.add_feed("good", feed_server.set("/good.xml", feed_body("good", range(3))))
    bad_url = feed_server.set("/bad.xml", body, content_type=content_type)
    h.add_feed("junk", bad_url)

    first = h.tick()

    assert first.requested == keys("good", [2, 1])
    assert sorted(first.added) == sorted(keys("good", range(3)))
    assert not any(k.startswith("junk--") for k in h.partitions())
    error = first.cursor["junk"]["last_error"]
    assert bad_url in error
    [warning] = first.warnings("junk")
    assert error in warning

    second = h.tick()
    assert second.run_requests == []
    assert second.skip_message == "no new episodes in 2 feeds (1 failed: junk)"


def test_a_parser_crash_on_one_feed_does_not_fail_the_tick(feed_server, make_harness, monkeypatch):
    real_parse = discovery.parse_feed

    def parse(content, *, feed_slug, base_url=None):
        if feed_slug == "crashy":
            # What the parser raised on <enclosure url="http://[::1"/> (urljoin's ValueError).
            raise ValueError("Invalid IPv6 URL")
        return real_parse(content, feed_slug=feed_slug, base_url=base_url)

    monkeypatch.setattr(discovery, "parse_feed", parse)
    h = make_harness()
    h.add_feed("good", feed_server.set("/good.xml", feed_body("good", range(3))))
    h.add_feed("crashy", feed_server.set("/crashy.xml", feed_body("crashy", range(3))))

    tick = h.tick()

    assert tick.requested == keys("good", [2, 1])
    assert "Invalid IPv6 URL" in tick.cursor["crashy"]["last_error"]
    assert "etag" not in tick.cursor["crashy"]  # retried in full next time
    assert tick.warnings("crashy")


# --- 6. fan-out cap ---------------------------------------------------------------------------


def test_cap_defers_the_rest_to_the_next_tick_without_advancing_validators(
    feed_server, make_harness
):
    h = make_harness(initial_episodes=2, max_runs_per_tick=3)
    h.add_feed("show", feed_server.set("/show.xml", feed_body("show", [1, 0])))
    first = h.tick()
    assert first.requested == keys("show", [1, 0])
    old_etag = first.cursor["show"]["etag"]

    feed_server.set("/show.xml", feed_body("show", [6, 5, 4, 3, 2, 1, 0]))
    second = h.tick()

    assert len(second.run_requests) == 3
    assert second.requested == keys("show", [6, 5, 4])  # newest first
    assert sorted(second.added) == sorted(keys("show", [6, 5, 4]))  # the rest are not known yet
    assert second.cursor["show"]["etag"] == old_etag  # validators not advanced
    assert any("2 deferred" in m for _, m in second.logs), second.logs

    third = h.tick()

    assert feed_server.conditional[-1] == ("/show.xml", old_etag)  # so the server sent the body
    assert third.requested == keys("show", [3, 2])
    assert sorted(third.added) == sorted(keys("show", [3, 2]))
    assert third.cursor["show"]["etag"] not in (None, old_etag)

    fourth = h.tick()
    assert fourth.run_requests == [] and fourth.added == []
    assert h.requested_ever == keys("show", range(7))


def test_cap_is_shared_across_feeds_on_first_sight(feed_server, make_harness):
    h = make_harness(initial_episodes=2, max_runs_per_tick=3)
    h.add_feed("alpha", feed_server.set("/alpha.xml", feed_body("alpha", range(5))))
    h.add_feed("beta", feed_server.set("/beta.xml", feed_body("beta", range(5))))

    first = h.tick()

    assert len(first.run_requests) == 3
    assert first.requested == keys("alpha", [4, 3]) | keys("beta", [4])
    # beta's older episodes became backfill partitions; its deferred newest one did not.
    assert sorted(first.added) == sorted(keys("alpha", range(5)) | keys("beta", [4, 2, 1, 0]))
    assert "etag" not in first.cursor["beta"]

    second = h.tick()

    assert second.requested == keys("beta", [3])  # beta got its initial two, no more
    assert second.added == [key("beta", 3)]

    third = h.tick()
    assert third.run_requests == [] and third.added == []


# --- 7. since ---------------------------------------------------------------------------------


def test_items_before_since_are_not_added(feed_server, make_harness):
    h = make_harness(initial_episodes=2)
    # Items 0..4 are published 2024-01-01 .. 2024-01-05.
    h.add_feed(
        "show", feed_server.set("/show.xml", feed_body("show", range(5))), since="2024-01-03"
    )

    tick = h.tick()

    assert tick.requested == keys("show", [4, 3])
    assert sorted(tick.added) == sorted(keys("show", [4, 3, 2]))  # 2024-01-03 itself is kept
    assert h.partitions() == keys("show", [4, 3, 2])


# --- 8. scale ---------------------------------------------------------------------------------


@pytest.fixture
def own_instance(env):
    # Thousands of partitions: a fresh instance is cheaper than deleting them one by one.
    with dg.instance_for_test(set_dagster_home=False) as instance:
        yield instance


def test_three_hundred_feeds_in_one_tick(env, feed_server, make_harness, own_instance):
    feeds, per_feed, initial = 300, 10, 3
    h = make_harness(initial_episodes=initial, max_runs_per_tick=1000, instance=own_instance)
    for i in range(feeds):
        name = f"feed-{i:03d}"
        h.add_feed(name, feed_server.set(f"/{name}.xml", feed_body(name, range(per_feed))))

    first = h.tick()

    assert len(first.run_requests) == feeds * initial
    assert len(first.added) == feeds * per_feed
    assert first.requested == {
        k for i in range(feeds) for k in keys(f"feed-{i:03d}", range(per_feed - initial, per_feed))
    }
    assert not [f for f, state in first.cursor.items() if "last_error" in state]
    assert len(list(Path(env.artifact_root).glob("*/feed.json"))) == feeds

    second = h.tick()

    print(
        f"\n{feeds} feeds x {per_feed} items: first tick {first.seconds:.2f}s "
        f"({len(first.run_requests)} runs, {len(first.added)} partitions), "
        f"second tick (all 304) {second.seconds:.2f}s"
    )
    assert first.seconds < 30, first.seconds
    assert second.run_requests == [] and second.added == []
    assert sum(feed_server.hits.values()) == 2 * feeds
    revalidated = [path for path, etag in feed_server.conditional[feeds:] if etag]
    assert len(revalidated) == feeds
    assert second.seconds < first.seconds


# --- 9. no enclosure --------------------------------------------------------------------------


def test_items_without_enclosure_are_skipped_and_reported(feed_server, make_harness):
    h = make_harness(initial_episodes=2)
    h.add_feed(
        "show",
        feed_server.set(
            "/show.xml", feed_body("show", range(5), n4={"audio": False}, n2={"audio": False})
        ),
    )

    tick = h.tick()

    assert tick.requested == keys("show", [3, 1])
    assert sorted(tick.added) == sorted(keys("show", [3, 1, 0]))
    assert not keys("show", [4, 2]) & h.partitions()
    skipped = [m for m in tick.warnings("show") if "no audio enclosure" in m]
    assert len(skipped) == 2
    assert any(key("show", 4) in m and "show episode 4" in m for m in skipped)
    assert any(key("show", 2) in m for m in skipped)


# --- the poll deadline ------------------------------------------------------------------------


def test_feeds_cut_off_by_the_deadline_go_first_next_tick(feed_server, make_harness):
    # One feed at a time, each answering after 0.4 s, 0.6 s per tick: a tick completes about one
    # feed. If the feeds the deadline never reached were stamped as polled, the catalog order
    # would come back every tick and the same tail would never be polled.
    h = make_harness(feed_concurrency=1, poll_deadline_seconds=0.6, feed_timeout_seconds=5)
    names = ["one", "two", "three"]
    for name in names:
        h.add_feed(name, feed_server.set(f"/{name}.xml", feed_body(name, range(2)), delay=0.4))
    everything = set().union(*(keys(name, [1, 0]) for name in names))

    ticks = [h.tick()]
    assert "not polled" in ticks[0].cursor["three"]["last_error"]
    assert ticks[0].warnings("three")
    while h.requested_ever != everything and len(ticks) < 6:
        ticks.append(h.tick())

    assert h.requested_ever == everything, [t.cursor for t in ticks]
    assert len(ticks) <= 4
