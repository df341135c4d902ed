"""The weekly digest on a crafted corpus: artifact files written by hand, expectations by hand.

Corpus (three feeds, ISO weeks 2026-W45 to W48; W47 is Mon 16 Nov to Sun 22 Nov 2026):

=====  ========  ====================  =========  =====  =============================
name   feed      published (UTC)       week       min    role
=====  ========  ====================  =========  =====  =============================
a      newsdesk  2026-11-17 07:00      W47        30     volcano story, worded one way
b      geotalk   2026-11-18 12:00      W47        40     same story, worded another way
c      kitchen   2026-11-16 00:00      W47 start  25     sourdough (unrelated)
d      newsdesk  2026-11-20 18:00      W47        75     markets; no chunks; <script> title
e      geotalk   2026-11-10 09:00      W46        20     plate tectonics
f      kitchen   2026-11-15 23:59:59   W46 end    20     knife skills
g      kitchen   2026-11-23 00:00      W48 start  20     pies
h      geotalk   2026-11-08 23:59:59   W45 end    20     old volcano episode
=====  ========  ====================  =========  =====  =============================

a, b and c carry real all-MiniLM-L6-v2 chunk vectors (so the volcano pair really clusters); the
threshold test uses vectors written by hand.
"""

from __future__ import annotations

import html.parser
import json
import re
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow.parquet as pq
import pytest

from podcast_core.corpus import connect
from podcast_core.digest import (
    CLUSTER_THRESHOLD,
    DIGEST_VERSION,
    build_digest,
    render_html,
    render_markdown,
    week_bounds,
    week_of,
)
from podcast_core.embed import Embedder
from podcast_core.keys import episode_identity, episode_key
from podcast_core.search import chunk_table, chunk_transcript, embed_chunks, write_parquet
from podcast_core.storage import LocalArtifactStore, episode_path

MODEL = "packaged:all-MiniLM-L6-v2"
FEED_TITLES = {"newsdesk": "The Newsdesk", "geotalk": "Geo Talk", "kitchen": "Kitchen Table"}


def key_of(feed: str, guid: str) -> str:
    return episode_key(feed, episode_identity(guid))


def audio(name: str) -> str:
    return f"https://media.example.com/{name}.mp3"


def write_episode(
    store: LocalArtifactStore,
    *,
    feed: str,
    guid: str,
    title: str,
    published: str,
    minutes: float,
    text: str,
    lead: str | None = None,
    insights: list[tuple] = (),
    quotes: list[tuple] = (),
    mentions: list[tuple] = (),
    duration_in_metadata: bool = True,
    feed_title: str | None = None,
) -> str:
    """Write metadata, transcript, summary, gi and kg artifacts of one episode; return its key.

    insights: (id, text, type, support, grounded); quotes: (id, insight_id, text, start_ms,
    end_ms, speaker, confidence); mentions: (entity_id, type, name, count).
    """
    key = key_of(feed, guid)
    seconds = minutes * 60
    episode = {
        "key": key,
        "guid": guid,
        "title": title,
        "published": published,
        "audio_url": audio(guid),
        "description": f"{title} description",
    }
    if duration_in_metadata:
        episode["duration_seconds"] = seconds
    store.write_json(
        episode_path(key, "metadata.json"),
        {
            "key": key,
            "feed": feed,
            "feed_url": f"https://feeds.example.com/{feed}.xml",
            "feed_info": {"title": feed_title or FEED_TITLES[feed], "language": "en"},
            "episode": episode,
            "created_at": "2026-11-24T00:00:00+00:00",
        },
    )
    store.write_json(
        episode_path(key, "transcript.json"),
        {
            "key": key,
            "feed": feed,
            "title": title,
            "text": text,
            "segments": [{"start": 0.0, "end": seconds, "text": text, "speaker": None}],
            "source": "published:vtt",
            "language": "en",
            "model": None,
            "duration_seconds": seconds,
        },
    )
    store.write_json(
        episode_path(key, "summary.json"),
        {
            "key": key,
            "lead": lead or text.split(". ")[0] + ".",
            "bullets": [lead or text],
            "paragraph": text,
            "backend": "extractive",
            "model": MODEL,
        },
    )
    store.write_json(
        episode_path(key, "gi.json"),
        {
            "key": key,
            "insights": [
                {
                    "id": i,
                    "text": t,
                    "insight_type": kind,
                    "position_hint": 0.0,
                    "grounded": grounded,
                    "support_score": support,
                }
                for i, t, kind, support, grounded in insights
            ],
            "quotes": [
                {
                    "id": q,
                    "text": t,
                    "char_start": 0,
                    "char_end": len(t),
                    "timestamp_start_ms": start,
                    "timestamp_end_ms": end,
                    "speaker": speaker,
                }
                for q, _, t, start, end, speaker, _ in quotes
            ],
            "edges": [
                {"type": "SUPPORTED_BY", "source": i, "target": q, "confidence": confidence}
                for q, i, _, _, _, _, confidence in quotes
            ],
        },
    )
    store.write_json(
        episode_path(key, "kg.json"),
        {
            "key": key,
            "nodes": [
                {"id": f"episode:{key}", "type": "Episode", "name": title},
                {"id": f"podcast:{feed}", "type": "Podcast", "name": FEED_TITLES.get(feed, feed)},
                *({"id": e, "type": t, "name": n} for e, t, n, _ in mentions),
            ],
            "edges": [
                {"type": "MENTIONS", "source": f"episode:{key}", "target": e, "count": c}
                for e, _, _, c in mentions
            ],
        },
    )
    return key


VOLCANO_A = (
    "Iceland volcano eruption: lava flows toward Grindavik. "
    "A volcanic eruption began on Sunday night on the Reykjanes Peninsula in Iceland, north of "
    "Grindavik. Lava fountains rose from a three kilometre fissure and flowed toward the town. "
    "Police evacuated the residents of Grindavik and the Blue Lagoon closed. "
    "The lava stopped at the defensive walls built around the town."
)
VOLCANO_B = (
    "The Icelandic volcano near Grindavik erupted again this week. "
    "Molten rock poured from a long crack in the ground on the Reykjanes Peninsula. "
    "Everyone in Grindavik had to leave their homes as the lava advanced. "
    "The earth barriers engineers raised around the town held back the lava. "
    "The Icelandic Met Office says more eruptions on the peninsula are likely."
)
SOURDOUGH = (
    "Today we bake a simple sourdough loaf. Feed your starter the night before so it is bubbly "
    "and active. Mix flour, water and salt, then fold the dough every half hour. "
    "Let it proof slowly in the fridge overnight for a tangy flavour. "
    "Bake it in a very hot cast iron pot with the lid on for the first twenty minutes."
)
MARKETS = (
    "Stocks fell sharply on Friday as investors worried about interest rates. "
    "The central bank signalled that borrowing costs would stay high for longer."
)
D_TITLE = "<script>alert('x')</script> Markets & Rates"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    store = LocalArtifactStore(tmp_path_factory.mktemp("digest") / "artifacts")
    keys = {}
    keys["a"] = write_episode(
        store,
        feed="newsdesk",
        guid="nd-101",
        title="Eruption on the Reykjanes Peninsula",
        published="2026-11-17T07:00:00Z",
        minutes=30,
        text=VOLCANO_A,
        lead="A volcanic eruption began north of Grindavik.",
        insights=[
            ("ins-1", "The lava stopped at the town's defensive walls.", "claim", 0.9, True),
            ("ins-2", "Grindavik was evacuated.", "observation", 0.7, True),
            ("ins-3", "The airport will close for a month.", "claim", 0.3, False),
        ],
        quotes=[
            ("q-1", "ins-1", "The lava stopped at the walls.", 125000, 131500, "Anna", 0.8),
            ("q-2", "ins-1", "The defensive walls held.", 312400, 318000, "Anna", 0.95),
            ("q-3", "ins-2", "Police evacuated the residents.", 60000, 64000, "Anna", 0.9),
            ("q-4", "ins-3", "The airport may close.", 90000, 93000, "Anna", 0.4),
        ],
        mentions=[
            ("topic:volcano", "Topic", "volcano", 4),
            ("person:jane-doe", "Person", "Jane Doe", 1),
        ],
    )
    keys["b"] = write_episode(
        store,
        feed="geotalk",
        guid="gt-7",
        title="Why Iceland's volcano woke up",
        published="2026-11-18T12:00:00Z",
        minutes=40,
        text=VOLCANO_B,
        insights=[("ins-1", "Magma had been collecting for weeks.", "claim", 0.95, True)],
        quotes=[("q-1", "ins-1", "Magma was collecting.", 95500, 99000, "Dr. Sigrun", 1.0)],
        mentions=[
            ("topic:volcano", "Topic", "volcano", 3),
            ("organization:icelandic-met-office", "Organization", "Icelandic Met Office", 2),
        ],
        duration_in_metadata=False,  # the transcript's duration stands in
    )
    keys["c"] = write_episode(
        store,
        feed="kitchen",
        guid="kt-3",
        title="Sourdough at home",
        published="2026-11-16T00:00:00Z",
        minutes=25,
        text=SOURDOUGH,
        insights=[("ins-1", "A cold proof gives a tangy loaf.", "tip", 0.6, True)],
        quotes=[("q-1", "ins-1", "Let it proof slowly.", 30000, 33000, None, 0.9)],
        mentions=[("topic:bread", "Topic", "bread", 2)],
    )
    keys["d"] = write_episode(
        store,
        feed="newsdesk",
        guid="nd-102",
        title=D_TITLE,
        published="2026-11-20T18:00:00Z",
        minutes=75,
        text=MARKETS,
        insights=[
            (f"ins-{n}", f"Markets claim {n}.", "claim", support, True)
            for n, support in enumerate((0.99, 0.98, 0.97, 0.96), start=1)
        ],
        quotes=[
            (f"q-{n}", f"ins-{n}", f"Stocks quote {n}.", n * 10000, n * 10000 + 2000, "Bo", 1.0)
            for n in range(1, 5)
        ],
        mentions=[("topic:markets", "Topic", "markets", 1)],
    )
    keys["e"] = write_episode(
        store,
        feed="geotalk",
        guid="gt-6",
        title="Plate tectonics 101",
        published="2026-11-10T09:00:00Z",
        minutes=20,
        text="Plate tectonics explains why volcanoes cluster along plate edges.",
        insights=[("ins-1", "Old week insight.", "claim", 1.0, True)],
        quotes=[("q-1", "ins-1", "Plate tectonics explains.", 1000, 2000, None, 1.0)],
        mentions=[
            ("topic:volcano", "Topic", "volcano", 1),
            ("person:jane-doe", "Person", "Jane Doe", 1),
        ],
    )
    keys["f"] = write_episode(
        store,
        feed="kitchen",
        guid="kt-2",
        title="Knife skills",
        published="2026-11-15T23:59:59Z",
        minutes=20,
        text="Keep your knives sharp and bake bread on Sundays.",
        mentions=[("topic:bread", "Topic", "bread", 3)],
    )
    keys["g"] = write_episode(
        store,
        feed="kitchen",
        guid="kt-4",
        title="Pie week",
        published="2026-11-23T00:00:00Z",
        minutes=20,
        text="Pies and bread.",
        mentions=[("topic:bread", "Topic", "bread", 5)],
    )
    keys["h"] = write_episode(
        store,
        feed="geotalk",
        guid="gt-5",
        title="Volcanoes of the world",
        published="2026-11-08T23:59:59Z",
        minutes=20,
        text="Volcanoes everywhere.",
        mentions=[("topic:volcano", "Topic", "volcano", 10)],
    )
    embedder = Embedder(MODEL)
    for name, text in (("a", VOLCANO_A), ("b", VOLCANO_B), ("c", SOURDOUGH)):
        transcript = {
            "key": keys[name],
            "text": text,
            "segments": [{"start": 0.0, "end": 60.0, "text": text}],
        }
        # Small chunks so each episode has several vectors and the mean matters.
        rows = chunk_transcript(transcript, target_tokens=40, overlap_tokens=10)
        assert len(rows) >= 2
        write_parquet(
            embed_chunks(rows, embedder), store.path(episode_path(keys[name], "chunks.parquet"))
        )
    con = connect(store)
    yield store, con, keys, embedder
    con.close()


@pytest.fixture(scope="module")
def w47(corpus):
    store, con, _, embedder = corpus
    return build_digest(con, "2026-W47", store=store, embedder=embedder, budget_minutes=60)


# --------------------------------------------------------------------------------------------
# Weeks


def test_week_bounds_monday_start_and_year_boundaries():
    assert week_bounds("2026-W47") == (
        datetime(2026, 11, 16, tzinfo=UTC),
        datetime(2026, 11, 23, tzinfo=UTC),
    )
    # 2026 starts on a Thursday, so it has 53 ISO weeks; W53 runs into 2027.
    assert week_bounds("2026-W53") == (
        datetime(2026, 12, 28, tzinfo=UTC),
        datetime(2027, 1, 4, tzinfo=UTC),
    )
    assert week_bounds("2027-W01")[0] == datetime(2027, 1, 4, tzinfo=UTC)
    # 2025's week 1 starts in December 2024.
    assert week_bounds("2025-W01")[0] == datetime(2024, 12, 30, tzinfo=UTC)
    for week in ("2026-W01", "2026-W47", "2026-W53", "2027-W01"):
        start, end = week_bounds(week)
        assert start.weekday() == 0 and (start.hour, start.minute) == (0, 0)
        assert end - start == timedelta(days=7)
    for bad in ("2025-W53", "2026-W00", "2026-W54", "2026-47", "2026-W5", "W47", ""):
        with pytest.raises(ValueError):
            week_bounds(bad)


def test_week_of_labels():
    assert week_of(date(2027, 1, 1)) == "2026-W53"
    assert week_of(date(2027, 1, 3)) == "2026-W53"
    assert week_of(date(2027, 1, 4)) == "2027-W01"
    assert week_of(date(2024, 12, 30)) == "2025-W01"
    assert week_of(date(2026, 11, 16)) == "2026-W47"
    assert week_of(datetime(2026, 11, 22, 23, 59, 59)) == "2026-W47"
    assert week_of(datetime(2026, 11, 23)) == "2026-W48"
    # Aware moments count in UTC: Sunday 23:30 at UTC-2 is Monday 01:30 UTC.
    assert week_of("2026-11-22T23:30:00-02:00") == "2026-W48"
    assert week_of("2026-11-23T00:30:00+02:00") == "2026-W47"
    assert week_of("2026-11-16T00:00:00Z") == "2026-W47"
    assert week_of("2026-11-16") == "2026-W47"
    for week in ("2025-W01", "2026-W09", "2026-W53", "2027-W01"):
        start, end = week_bounds(week)
        assert week_of(start) == week_of(end - timedelta(microseconds=1)) == week
        assert week_of(end) != week


# --------------------------------------------------------------------------------------------
# The digest of W47


def test_digest_header_and_json(w47):
    assert w47["schema_version"] == DIGEST_VERSION == "1"
    assert (w47["week"], w47["start"], w47["end"]) == (
        "2026-W47",
        "2026-11-16T00:00:00Z",
        "2026-11-23T00:00:00Z",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", w47["generated_at"])
    assert json.loads(json.dumps(w47)) == w47
    assert set(w47) == {
        "schema_version",
        "week",
        "start",
        "end",
        "generated_at",
        "episodes",
        "insights",
        "clusters",
        "trends",
        "listen_list",
        "stats",
    }


def test_episodes_are_the_weeks_by_published_window(w47, corpus):
    _, _, keys, _ = corpus
    # f (Sunday 23:59:59 of W46) and g (Monday 00:00 of W48) are out; c (Monday 00:00) is in.
    assert [
        (f["feed"], f["feed_title"], [e["key"] for e in f["episodes"]]) for f in w47["episodes"]
    ] == [
        ("geotalk", "Geo Talk", [keys["b"]]),
        ("kitchen", "Kitchen Table", [keys["c"]]),
        ("newsdesk", "The Newsdesk", [keys["a"], keys["d"]]),
    ]
    by_key = {e["key"]: e for f in w47["episodes"] for e in f["episodes"]}
    assert by_key[keys["a"]] == {
        "key": keys["a"],
        "title": "Eruption on the Reykjanes Peninsula",
        "published": "2026-11-17T07:00:00Z",
        "audio_url": audio("nd-101"),
        "duration_seconds": 1800.0,
        "lead": "A volcanic eruption began north of Grindavik.",
    }
    assert by_key[keys["b"]]["duration_seconds"] == 2400.0  # from the transcript
    assert by_key[keys["c"]]["published"] == "2026-11-16T00:00:00Z"
    assert w47["stats"] == {
        "episodes": 4,
        "feeds": 3,
        "minutes": 170.0,
        "grounded_insights": 8,
        "insights_shown": 8,
        "episodes_with_vectors": 3,
        "clusters": 1,
        "trending_entities": 4,
        "listen_list_items": 2,
        "episodes_without_duration": 0,
    }


def test_insights_take_turns_across_feeds_with_best_quote(w47, corpus):
    store, con, keys, _ = corpus
    got = [(i["key"], i["text"]) for i in w47["insights"]]
    # Turn 1: each feed's strongest (newsdesk .99, geotalk .95, kitchen .6); then newsdesk's rest.
    assert got == [
        (keys["d"], "Markets claim 1."),
        (keys["b"], "Magma had been collecting for weeks."),
        (keys["c"], "A cold proof gives a tangy loaf."),
        (keys["d"], "Markets claim 2."),
        (keys["d"], "Markets claim 3."),
        (keys["d"], "Markets claim 4."),
        (keys["a"], "The lava stopped at the town's defensive walls."),
        (keys["a"], "Grindavik was evacuated."),
    ]
    lava = w47["insights"][6]
    # Two quotes support it; the one with the higher confidence (0.95) is shown.
    assert lava == {
        "key": keys["a"],
        "feed": "newsdesk",
        "title": "Eruption on the Reykjanes Peninsula",
        "text": "The lava stopped at the town's defensive walls.",
        "insight_type": "claim",
        "support_score": 0.9,
        "quote": {
            "text": "The defensive walls held.",
            "start_seconds": 312.4,
            "end_seconds": 318.0,
            "speaker": "Anna",
        },
        "link": audio("nd-101") + "#t=312",
    }
    assert w47["insights"][1]["link"] == audio("gt-7") + "#t=95"
    three = build_digest(con, "2026-W47", store=store, max_insights=3)
    # Not the top three by score (all newsdesk): one per feed.
    assert [i["feed"] for i in three["insights"]] == ["newsdesk", "geotalk", "kitchen"]


def test_cross_feed_story_clusters_and_unrelated_does_not(w47, corpus):
    store, _, keys, _ = corpus
    (cluster,) = w47["clusters"]
    assert cluster["id"] == "2026-W47-story-1"
    assert cluster["episodes"] == [keys["a"], keys["b"]]
    assert cluster["feeds"] == ["geotalk", "newsdesk"]
    assert cluster["titles"] == [
        "Eruption on the Reykjanes Peninsula",
        "Why Iceland's volcano woke up",
    ]

    # The similarity is that of the normalized mean chunk vectors, recomputed here.
    def episode_vector(key):
        matrix = np.asarray(
            pq.read_table(store.path(episode_path(key, "chunks.parquet")))["vector"].to_pylist()
        )
        mean = matrix.mean(axis=0)
        return mean / np.linalg.norm(mean)

    va, vb, vc = (episode_vector(keys[n]) for n in "abc")
    assert cluster["similarity"] == pytest.approx(float(va @ vb), abs=1e-4)
    assert float(va @ vb) > CLUSTER_THRESHOLD + 0.1
    assert max(float(va @ vc), float(vb @ vc)) < CLUSTER_THRESHOLD - 0.3


def test_only_this_weeks_chunk_files_are_read(corpus):
    store, con, keys, embedder = corpus

    class RecordingStore(LocalArtifactStore):
        def __init__(self, root):
            super().__init__(root)
            self.touched = []

        def exists(self, rel):
            self.touched.append(rel)
            return super().exists(rel)

        def local_copy(self, rel):
            self.touched.append(rel)
            return super().local_copy(rel)

        def list(self, pattern):
            raise AssertionError(f"the digest enumerated {pattern!r}")

    recording = RecordingStore(store.root)
    build_digest(con, "2026-W47", store=recording, embedder=embedder)
    assert {rel.split("/")[1] for rel in recording.touched} == {
        keys[n].split("--")[1] for n in "abcd"
    }
    assert all(rel.endswith("/chunks.parquet") for rel in recording.touched)


def test_no_embedder_or_other_model_means_no_clusters(corpus):
    store, con, _, _ = corpus
    plain = build_digest(con, "2026-W47", store=store)
    assert plain["clusters"] == [] and plain["stats"]["episodes_with_vectors"] == 0
    # Vectors of another model are not comparable: they are not used.
    other = build_digest(con, "2026-W47", store=store, embedder=Embedder("some/other-model"))
    assert other["clusters"] == [] and other["stats"]["episodes_with_vectors"] == 0


def test_trends_compare_with_the_previous_week(w47):
    # volcano: a 4 + b 3 vs e 1 (h's 10 are in W45); bread: c 2 vs f 3 (g's 5 are in W48);
    # Jane Doe 1 vs 1 is unchanged and left out; ties on |change| list rising first.
    assert [
        (t["entity_id"], t["name"], t["type"], t["this_week"], t["previous_week"], t["change"])
        for t in w47["trends"]
    ] == [
        ("topic:volcano", "volcano", "Topic", 7, 1, 6),
        ("organization:icelandic-met-office", "Icelandic Met Office", "Organization", 2, 0, 2),
        ("topic:markets", "markets", "Topic", 1, 0, 1),
        ("topic:bread", "bread", "Topic", 2, 3, -1),
    ]


def test_listen_list_greedy_within_budget(w47, corpus):
    store, con, keys, embedder = corpus
    # Scores (support sum + 1.0 in a cross-feed story + 0.5 per rising entity mentioned):
    # d 3.9 + 0.5 = 4.4 (75 min), a 1.6 + 1 + 0.5 = 3.1 (30), b 0.95 + 1 + 1.0 = 2.95 (40),
    # c 0.6 (25). Budget 60: d is longer than the budget (skipped, not cut), a fits (30),
    # b would make 70 (skipped), c makes 55.
    listen = w47["listen_list"]
    assert listen["budget_minutes"] == 60 and listen["total_minutes"] == 55.0
    assert [(i["key"], i["minutes"], i["score"]) for i in listen["items"]] == [
        (keys["a"], 30.0, 3.1),
        (keys["c"], 25.0, 0.6),
    ]
    first = listen["items"][0]
    assert (first["title"], first["feed"]) == ("Eruption on the Reykjanes Peninsula", "newsdesk")
    assert first["reason"] == "2 grounded insights; same story as geotalk; mentions rising volcano"
    assert listen["items"][1]["reason"] == "1 grounded insight"

    def picked(budget):
        digest = build_digest(
            con, "2026-W47", store=store, embedder=embedder, budget_minutes=budget
        )
        return [i["key"] for i in digest["listen_list"]["items"]], digest["listen_list"][
            "total_minutes"
        ]

    # Exactly filling the budget is allowed: d (75) + c (25) = 100.
    assert picked(100) == ([keys["d"], keys["c"]], 100.0)
    assert picked(29) == ([keys["c"]], 25.0)
    assert picked(0) == ([], 0)
    # Without clusters b loses its bonus: a 2.1, b 1.95 - the choice stays a + c.
    no_vectors = build_digest(con, "2026-W47", store=store, budget_minutes=60)
    assert [i["score"] for i in no_vectors["listen_list"]["items"]] == [2.1, 0.6]


# --------------------------------------------------------------------------------------------
# Threshold and same-feed rule, with vectors written by hand


def _unit(*values):
    v = np.array(values, dtype=np.float64)
    return v / np.linalg.norm(v)


def test_cluster_threshold_and_same_feed_rule(tmp_path):
    store = LocalArtifactStore(tmp_path / "artifacts")
    model = "hand-made-vectors"

    def episode(feed, guid, published, chunk_vectors):
        key = write_episode(
            store,
            feed=feed,
            feed_title=feed,
            guid=guid,
            title=guid,
            published=published,
            minutes=10,
            text=f"{guid} text.",
        )
        rows = [
            {
                "key": key,
                "chunk_id": n,
                "start": 0.0,
                "end": 1.0,
                "char_start": 0,
                "char_end": 1,
                "text": "x",
                "tokens": 1,
            }
            for n in range(len(chunk_vectors))
        ]
        table = chunk_table(rows, np.array(chunk_vectors, dtype=np.float32), model=model)
        write_parquet(table, store.path(episode_path(key, "chunks.parquet")))
        return key

    above, below = CLUSTER_THRESHOLD + 0.005, CLUSTER_THRESHOLD - 0.005
    v_above = np.array([above, np.sqrt(1 - above**2), 0, 0, 0])
    delta = np.array([0, 0, 0, 0, 0.5])  # orthogonal to v_above: the two chunks average to it
    day = "2026-11-18T10:00:00Z"
    p = episode("feed-one", "p", day, [_unit(1, 0, 0, 0, 0)] * 2)
    q = episode("feed-two", "q", day, [_unit(*(v_above + delta)), _unit(*(v_above - delta))])
    episode("feed-three", "r", day, [_unit(below, 0, np.sqrt(1 - below**2), 0, 0)])
    # t and u (one feed) are similar (0.70), but a show resembles itself whatever the story: they
    # are never linked directly, so t stays out of the u / v story (v is like u, not like t).
    t = episode("feed-four", "t", day, [_unit(0, 0, 0, 1, 0)])
    u = episode("feed-four", "u", day, [_unit(0, 0, 0, 0.7, 0.714)])
    v = episode("feed-five", "v", day, [_unit(0, 0, 0, 0, 1)])
    # W48: x1 and x2 (same feed) are joined through y (another feed).
    later = "2026-11-25T10:00:00Z"
    x1 = episode("feed-one", "x1", later, [_unit(1, 0, 0, 0, 0)])
    y = episode("feed-two", "y", later, [_unit(0.8, 0.6, 0, 0, 0)])
    x2 = episode("feed-one", "x2", "2026-11-26T10:00:00Z", [_unit(1, 0, 0, 0, 0)])

    con = connect(store)
    embedder = Embedder(model)  # only its model_id is read: never loaded
    digest = build_digest(con, "2026-W47", store=store, embedder=embedder)
    assert digest["stats"]["episodes_with_vectors"] == 6
    # Both clusters have two episodes: the more similar one comes first.
    assert [(c["id"], c["episodes"], c["feeds"]) for c in digest["clusters"]] == [
        ("2026-W47-story-1", [v, u], ["feed-five", "feed-four"]),  # same time: by key
        ("2026-W47-story-2", [p, q], ["feed-one", "feed-two"]),
    ]
    assert t not in digest["clusters"][0]["episodes"]
    assert digest["clusters"][0]["similarity"] == pytest.approx(0.714 / np.hypot(0.7, 0.714), 1e-4)
    assert digest["clusters"][1]["similarity"] == pytest.approx(above, abs=1e-4)

    later_digest = build_digest(con, "2026-W48", store=store, embedder=embedder)
    (cluster,) = later_digest["clusters"]
    assert cluster["episodes"] == [x1, y, x2]
    assert cluster["feeds"] == ["feed-one", "feed-two"]
    assert cluster["similarity"] == pytest.approx(0.8, abs=1e-4)  # cross-feed pairs only
    assert cluster["id"] == "2026-W48-story-1"
    con.close()


# --------------------------------------------------------------------------------------------
# Empty weeks


def test_empty_week_is_an_honest_empty_digest(corpus):
    store, con, _, embedder = corpus
    # W49 has no episodes; W48 (g) still had mentions, but nothing new means no trends either.
    digest = build_digest(con, "2026-W49", store=store, embedder=embedder, budget_minutes=45)
    assert digest["week"] == "2026-W49"
    assert (digest["start"], digest["end"]) == ("2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z")
    for section in ("episodes", "insights", "clusters", "trends"):
        assert digest[section] == [], section
    assert digest["listen_list"] == {"budget_minutes": 45, "total_minutes": 0, "items": []}
    assert digest["stats"] and set(digest["stats"].values()) == {0}
    message = "There were no new episodes in week 2026-W49: Mon 30 Nov 2026 to Sun 06 Dec 2026"
    md, page = render_markdown(digest), render_html(digest)
    assert message in md and message in page
    assert "## Listen list" not in md and "<h2>" not in page


def test_empty_store(tmp_path):
    store = LocalArtifactStore(tmp_path / "nothing")
    con = connect(store)
    digest = build_digest(con, "2027-W01", store=store, embedder=Embedder(MODEL))
    assert digest["episodes"] == [] and digest["stats"]["episodes"] == 0
    assert "no new episodes in week 2027-W01" in render_markdown(digest)


# --------------------------------------------------------------------------------------------
# Rendering


def test_markdown_sections_quotes_and_deep_links(w47):
    md = render_markdown(w47)
    assert md.startswith("# Podcast digest: week 2026-W47\n")
    for heading in (
        "## Listen list (55 of 60 minutes)",
        "## Top insights",
        "## Same story, different feeds",
        "## Trends",
        "## New episodes",
        "### The Newsdesk",
        "### Geo Talk",
    ):
        assert f"\n{heading}\n" in md, heading
    assert (
        "> The defensive walls held.\n>\n"
        "> \u2014 Anna, [5:12](https://media.example.com/nd-101.mp3#t=312)" in md
    )
    assert (
        "1. **[Eruption on the Reykjanes Peninsula](https://media.example.com/nd-101.mp3)**" in md
    )
    assert "> \u2014 [0:30](https://media.example.com/kt-3.mp3#t=30)" in md  # no speaker
    assert "(The Newsdesk) / [Why Iceland's volcano woke up]" in md
    assert "| volcano | Topic | 7 | 1 | +6 |" in md
    assert "| bread | Topic | 2 | 3 | -1 |" in md
    assert "<script>" not in md
    assert "&lt;script&gt;alert('x')&lt;/script&gt; Markets & Rates" in md


class _TagChecker(html.parser.HTMLParser):
    VOID = {"meta", "link", "br", "hr", "img", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.tags, self.errors, self.attrs = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend((tag, name, value) for name, value in attrs)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_html_is_self_contained_escaped_and_well_formed(w47):
    page = render_html(w47)
    checker = _TagChecker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [] and checker.stack == []
    assert page.startswith("<!DOCTYPE html>")
    # Nothing to fetch: no scripts, stylesheets, images, frames, imports or CSS urls.
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(checker.tags)
    assert not [a for a in checker.attrs if a[1] == "src"]
    assert "@import" not in page and "url(" not in page
    assert "<style>" in page
    for tag in ("header", "main", "section", "article", "blockquote", "table", "h1", "h2", "ol"):
        assert tag in checker.tags, tag
    # Links only point at the episodes' audio (plain or with a #t= deep link).
    hrefs = [value for tag, name, value in checker.attrs if name == "href"]
    assert hrefs and all(h.startswith("https://media.example.com/") for h in hrefs)
    assert "https://media.example.com/nd-101.mp3#t=312" in hrefs
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; Markets &amp; Rates" in page
    assert "There were no new episodes" not in page


def test_renderers_refuse_non_http_links(w47):
    digest = json.loads(json.dumps(w47))
    for feed in digest["episodes"]:
        for e in feed["episodes"]:
            e["audio_url"] = "javascript:alert(1)"
    for insight in digest["insights"]:
        insight["link"] = "javascript:alert(1)#t=5"
    assert "javascript:" not in render_html(digest)
    assert "javascript:" not in render_markdown(digest)
