"""Hybrid search: chunking, BM25, RRF and vectors by hand, then the real MiniLM end to end."""

from __future__ import annotations

import itertools
import math
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from podcast_core.search import (
    BM25Index,
    SearchIndex,
    VectorIndex,
    cached_index,
    chunk_table,
    chunk_transcript,
    clear_index_cache,
    embed_chunks,
    reciprocal_rank_fusion,
    tokenize,
    write_parquet,
)
from podcast_core.text import count_tokens

# ---------------------------------------------------------------------------------------------
# Chunking

# Twelve sentences of exactly 10 tokens each (9 words and a period), one segment per sentence.
WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
]
SENTENCES = [f"Sentence {w} talks about bees and honey in spring." for w in WORDS]


def crafted_transcript() -> dict:
    text = " ".join(SENTENCES)
    segments = [
        {"start": 5.0 * i, "end": 5.0 * i + 4.5, "text": s, "speaker": None, "words": None}
        for i, s in enumerate(SENTENCES)
    ]
    return {
        "key": "demo--000000000001",
        "feed": "demo",
        "title": "T",
        "text": text,
        "segments": segments,
    }


def test_chunk_transcript_whole_sentences_overlap_and_times():
    assert all(count_tokens(s) == 10 for s in SENTENCES)
    transcript = crafted_transcript()
    rows = chunk_transcript(transcript, target_tokens=40, overlap_tokens=10)
    # By hand: 4 sentences (40 tokens) per chunk, the next one restarts at the last sentence
    # (10 tokens of overlap): sentences 0-3, 3-6, 6-9, 9-11.
    groups = [(0, 3), (3, 6), (6, 9), (9, 11)]
    assert [r["chunk_id"] for r in rows] == [0, 1, 2, 3]
    assert [r["tokens"] for r in rows] == [40, 40, 40, 30]
    for row, (first, last) in zip(rows, groups, strict=True):
        assert row["key"] == "demo--000000000001"
        assert row["text"] == " ".join(SENTENCES[first : last + 1])  # whole sentences
        assert transcript["text"][row["char_start"] : row["char_end"]] == row["text"]
        # Each chunk starts where its first sentence's segment starts and ends with its last one.
        assert row["start"] == pytest.approx(5.0 * first)
        assert row["end"] == pytest.approx(5.0 * last + 4.5)
    for a, b in itertools.pairwise(rows):
        assert b["char_start"] < a["char_end"]  # overlap
        assert a["text"].endswith(b["text"][: b["text"].index(".") + 1])
        assert a["start"] < b["start"] and a["end"] < b["end"]
    assert chunk_transcript({**transcript, "text": "", "segments": []}) == []


# ---------------------------------------------------------------------------------------------
# Tokens and BM25


def test_tokenize_lowercases_drops_stopwords_and_plurals():
    assert tokenize("The Bees' honey and the bee's STORIES, glasses & boxes!") == [
        "bee",
        "honey",
        "bee",
        "story",
        "glass",
        "box",
    ]
    assert tokenize("Don't stop: it is what it is") == ["stop"]
    assert tokenize("gas bus 1990s") == ["gas", "bus", "1990s"]


DOCS = [
    "apple banana",  # dl 2
    "apple apple banana cherry",  # dl 4
    "apple banana cherry date elderberry fig",  # dl 6
]  # N = 3, avgdl = 4


def _w(idf: float, tf: int, dl: int, k1: float = 1.5, b: float = 0.75, avgdl: float = 4.0):
    return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))


IDF_ALL = math.log(1 + (3 - 3 + 0.5) / (3 + 0.5))  # apple, banana: df 3 -> ln(8/7)
IDF_TWO = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))  # cherry: df 2 -> ln(1.6)
IDF_ONE = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))  # date: df 1 -> ln(8/3)


def test_bm25_scores_by_hand():
    index = BM25Index(["d0", "d1", "d2"], DOCS)
    assert index.avgdl == pytest.approx(4.0)
    assert index.term_idf("apple") == pytest.approx(IDF_ALL) == pytest.approx(math.log(8 / 7))
    assert index.term_idf("cherry") == pytest.approx(math.log(1.6))
    assert index.term_idf("date") == pytest.approx(math.log(8 / 3))
    # A term in every document has the lowest IDF (still positive).
    assert 0 < index.term_idf("apple") < index.term_idf("cherry") < index.term_idf("date")

    # Term frequency beats length (d1: tf 2, dl 4 over d0: tf 1, dl 2); at equal tf the shorter
    # document wins (d0 over d2).
    top = index.top("apple", 10)
    assert [d for d, _ in top] == ["d1", "d0", "d2"]
    expected = [_w(IDF_ALL, 2, 4), _w(IDF_ALL, 1, 2), _w(IDF_ALL, 1, 6)]
    assert [s for _, s in top] == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx([0.19076, 0.17230, 0.10901], abs=1e-5)

    # Only documents containing a query term are returned; stopwords and plurals are ignored.
    assert [d for d, _ in index.top("the cherries", 10)] == ["d1", "d2"]
    assert index.top("cherry", 10)[0][1] == pytest.approx(_w(IDF_TWO, 1, 4))  # = ln 1.6 exactly

    # A rare term dominates a common one; scores add over distinct query terms.
    top = index.top("date apple apple", 10)
    assert [d for d, _ in top] == ["d2", "d1", "d0"]
    assert top[0][1] == pytest.approx(_w(IDF_ONE, 1, 6) + _w(IDF_ALL, 1, 6), rel=1e-6)
    assert index.top("apple", 1) == top[1:2]

    # The mask removes documents before ranking.
    mask = np.array([True, False, True])
    assert [d for d, _ in index.top("apple", 10, mask=mask)] == ["d0", "d2"]
    assert index.top("unknown words", 10) == []


def test_bm25_batches_agree_with_tokenize(monkeypatch):
    texts = [
        "  Hello,   WORLD!  the world's\tbees\n",
        "",
        "Ça va? naïve café-au-lait; e-mail  bees' knees",
        "the of and",  # stopwords only
        "Bees bees BEES honey",
    ]
    whole = BM25Index(list(range(5)), texts)
    monkeypatch.setattr(BM25Index, "BATCH", 2)
    batched = BM25Index(list(range(5)), texts)
    assert whole.doc_lengths.tolist() == [len(tokenize(t)) for t in texts] == [4, 0, 10, 0, 4]
    assert set(whole.vocabulary) == {t for text in texts for t in tokenize(text)}
    assert set(batched.vocabulary) == set(whole.vocabulary)
    for query in ["bee", "world", "café lait", "honey bees"]:
        got, want = batched.top(query, 5), whole.top(query, 5)
        assert [d for d, _ in got] == [d for d, _ in want]
        assert [v for _, v in got] == pytest.approx([v for _, v in want])
    assert [d for d, _ in whole.top("bee", 5)] == [4, 0, 2]


# ---------------------------------------------------------------------------------------------
# Fusion and vectors


def test_reciprocal_rank_fusion_by_hand():
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["c", "a", "d"]]))
    assert fused == pytest.approx(
        {"a": 1 / 61 + 1 / 62, "c": 1 / 63 + 1 / 61, "b": 1 / 62, "d": 1 / 63}
    )
    assert [i for i, _ in reciprocal_rank_fusion([["a", "b", "c"], ["c", "a", "d"]])] == [
        "a",
        "c",
        "b",
        "d",
    ]
    # Ties: equal scores go to the better single rank, then to the first seen. With k=2,
    # b scores 1/6 + 1/6 = 1/3 like a and z (rank 1 once) but its best rank is only 4.
    ranked = reciprocal_rank_fusion([["a", "x", "y", "b"], ["z", "w", "v", "b"]], k=2)
    assert [i for i, _ in ranked] == ["a", "z", "b", "x", "w", "y", "v"]
    assert ranked[0][1] == ranked[1][1] == ranked[2][1] == pytest.approx(1 / 3)
    # A repeated item counts once per ranking, at its first rank.
    assert reciprocal_rank_fusion([["a", "a"]]) == [("a", pytest.approx(1 / 61))]
    assert reciprocal_rank_fusion([]) == []


def test_vector_index_ranks_ties_and_masks():
    s = 1 / math.sqrt(2)
    matrix = np.array(
        [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1], [s, s, 0], [-1, 0, 0]], dtype=np.float32
    )
    index = VectorIndex(["x", "z1", "y", "z2", "xy", "-x"], matrix)
    e1 = np.array([1, 0, 0], dtype=np.float32)
    top = index.top(e1, 10)
    # cos: x 1, xy 0.707, then y, z1, z2 all 0 (ties by position), -x -1.
    assert [i for i, _ in top] == ["x", "xy", "z1", "y", "z2", "-x"]
    assert [v for _, v in top] == pytest.approx([1, s, 0, 0, 0, -1], abs=1e-6)
    # Ties at the cut: of the two identical z vectors the earlier one is kept.
    assert index.top(np.array([0, 0, 1.0]), 1) == [("z1", pytest.approx(1.0))]
    assert [i for i, _ in index.top(np.array([0, 0, 1.0]), 2)] == ["z1", "z2"]
    # Masks: a selective one (gathered rows) and a broad one (full product).
    few = np.zeros(6, bool)
    few[[2, 4]] = True
    assert [i for i, _ in index.top(e1, 10, mask=few)] == ["xy", "y"]
    most = np.ones(6, bool)
    most[0] = False
    assert [i for i, _ in index.top(e1, 3, mask=most)] == ["xy", "z1", "y"]
    assert index.top(e1, 10, mask=np.zeros(6, bool)) == []
    with pytest.raises(ValueError, match="dims"):
        index.top(np.ones(4), 3)
    # Nine equal best rows after a worse one: the cut keeps the first five of them (a plain
    # argpartition returns positions 1, 2, 3, 4 and 6 here).
    tied = VectorIndex(list(range(10)), np.array([[0.0, 1.0]] + [[1.0, 0.0]] * 9))
    assert [i for i, _ in tied.top(np.array([1.0, 0.0]), 5)] == [1, 2, 3, 4, 5]


def test_identical_chunks_rank_by_key_whatever_the_table_order():
    rows = [
        {
            "key": key,
            "chunk_id": i,
            "start": 0.0,
            "end": 1.0,
            "char_start": 0,
            "char_end": len(text),
            "text": text,
            "tokens": 2,
        }
        for key in ("b--000000000002", "a--000000000001")
        for i, text in enumerate(["a rerun of the lava talk", "quiet evening"])
    ]
    vectors = np.tile(np.eye(2, 384, dtype=np.float32), (2, 1))
    table_b, table_a = chunk_table(rows[:2], vectors[:2]), chunk_table(rows[2:], vectors[2:])
    for tables in ([table_a, table_b], [table_b, table_a]):
        index = SearchIndex.from_tables(tables, {})
        hits = index.search("lava", query_vector=vectors[0], limit=4)
        assert [(h.key[0], h.chunk_id) for h in hits] == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]
        # Equal BM25 and cosine scores: the tie goes to the lower row, i.e. the smaller key.
        (_, s1), (_, s2) = index.bm25.top("lava", 2)
        assert s1 == s2 and hits[0].text == hits[1].text and hits[0].title is None
        ranks = [(h.bm25_rank, h.vector_rank) for h in hits]
        assert ranks == [(1, 1), (2, 2), (None, 3), (None, 4)]
    # An episode repeated in another table (a stale copy) is indexed once.
    assert len(SearchIndex.from_tables([table_a, table_b, table_a], {})) == 4


# ---------------------------------------------------------------------------------------------
# End to end with the packaged MiniLM

MODEL = "packaged:all-MiniLM-L6-v2"

EPISODES = {
    "nature--00000000bee5": {
        "feed": "nature",
        "title": "Inside the hive",
        "published": "2024-01-10T08:00:00Z",
        "sentences": [
            "The colony spends the summer foraging nectar from clover and lavender fields.",
            "Back in the hive, workers fan their wings until the nectar thickens and is capped "
            "in wax cells.",
            "A beekeeper in a veiled suit lifts the frames and spins them in an extractor.",
            "Our guest has kept hives on her rooftop for thirty years.",
        ],
    },
    "nature--000000001a7a": {
        "feed": "nature",
        "title": "Fire mountain",
        "published": "2024-03-31T23:59:59Z",
        "sentences": [
            "Magma rises through cracks in the crust and collects in a chamber beneath the peak.",
            "When pressure builds, the eruption throws ash kilometres into the sky.",
            "Lava pours down the slopes and buries the vineyards on its way to the sea.",
            "Villagers near Etna watch seismographs for the tremors that come first.",
        ],
    },
    "culture--00000000a225": {
        "feed": "culture",
        "title": "Blue notes",
        "published": "2024-04-01T00:00:00Z",
        "sentences": [
            "The quartet opened with a standard, then the saxophonist took a long solo over the "
            "chord changes.",
            "Bebop players reshaped harmony in the nineteen forties with fast tempos.",
            "The drummer keeps swing time with brushes on the snare while the bass walks.",
            "Every night the set list changed because the band listened to each other.",
        ],
    },
    "life--0000000b4ead": {
        "feed": "life",
        "title": "Crust and crumb",
        "published": None,
        "sentences": [
            "Mix flour, water, salt and a spoonful of sourdough starter, then let the dough rise "
            "overnight.",
            "Folding it every half hour builds gluten so the loaf holds its shape.",
            "Bake it in a hot cast iron pot until the crust crackles and turns deep brown.",
            "Let it cool for an hour before you slice it, or the crumb turns gummy.",
        ],
    },
    "culture--00000000c4e5": {
        "feed": "culture",
        "title": "Sixty-four squares",
        "published": "2024-05-20T12:00:00+00:00",
        "sentences": [
            "In the endgame a king and a single pawn can still win if the king leads the way.",
            "Grandmaster Ottoline Quillfeather explained why she sacrificed her queen on move "
            "twenty.",
            "Opening theory matters less than calculating tactics accurately under the clock.",
            "She resigned only once in that tournament, against a rook and bishop attack.",
        ],
    },
    "life--0000000042f2": {
        "feed": "life",
        "title": "The long run",
        "published": "2024-06-01T06:00:00Z",
        "sentences": [
            "Training for forty-two kilometres means weeks of slow runs and careful tapering "
            "before race day.",
            "Around the twentieth mile many runners hit the wall when their glycogen is gone.",
            "Energy gels and water stations along the course help you reach the finish line.",
            "Most first-timers finish in four to five hours.",
        ],
    },
}
BEES, VOLCANO, JAZZ, BREAD, CHESS, MARATHON = EPISODES
META = {k: {f: v[f] for f in ("feed", "title", "published")} for k, v in EPISODES.items()}


def _transcript(key: str, spec: dict) -> dict:
    segments, t = [], 0.0
    for sentence in spec["sentences"]:
        duration = 0.4 * len(sentence.split())
        segments.append(
            {"start": t, "end": t + duration, "text": sentence, "speaker": None, "words": None}
        )
        t += duration + 0.5
    return {
        "key": key,
        "feed": spec["feed"],
        "title": spec["title"],
        "text": " ".join(spec["sentences"]),
        "segments": segments,
    }


@pytest.fixture(scope="module")
def embedder():
    from podcast_core.embed import Embedder

    return Embedder(MODEL)


@pytest.fixture(scope="module")
def tables(embedder):
    out = {}
    for key, spec in EPISODES.items():
        # Small chunks so every episode has several overlapping ones.
        rows = chunk_transcript(_transcript(key, spec), target_tokens=40, overlap_tokens=25)
        assert len(rows) >= 2
        out[key] = embed_chunks(rows, embedder)
    return out


@pytest.fixture(scope="module")
def index(tables):
    return SearchIndex.from_tables(tables.values(), META)


PARAPHRASES = [
    ("how is honey made by insects", BEES),
    ("molten rock exploding out of a mountain", VOLCANO),
    ("improvising musicians and their instruments", JAZZ),
    ("baking homemade bread with yeast", BREAD),
    ("board game strategy and checkmate", CHESS),
    # Not "long distances": "long" is in the jazz episode, and BM25 rank 1 there plus vector rank
    # 4 outscores vector rank 1 alone under RRF.
    ("endurance running over great distances", MARATHON),
]


@pytest.mark.parametrize(("query", "expected"), PARAPHRASES)
def test_paraphrased_queries_find_their_episode(index, embedder, query, expected):
    hits = index.search(query, embedder, limit=5)
    assert hits[0].key == expected, [(h.key, h.bm25_rank, h.vector_rank) for h in hits]
    # The query shares no index term with the episode: the vectors found it.
    assert hits[0].vector_rank == 1 and hits[0].bm25_rank is None
    top = hits[0]
    spec = EPISODES[expected]
    assert (top.feed, top.title, top.published) == (spec["feed"], spec["title"], spec["published"])
    assert top.text in " ".join(spec["sentences"])
    assert 0 <= top.start < top.end
    assert top.score == pytest.approx(
        sum(1 / (60 + r) for r in (top.bm25_rank, top.vector_rank) if r is not None)
    )
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_rare_proper_noun_found_through_bm25(index, embedder):
    hits = index.search("Quillfeather", embedder, limit=3)
    assert hits[0].key == CHESS and hits[0].bm25_rank == 1
    assert "Quillfeather" in hits[0].text
    # Only chunks containing the word have a BM25 rank.
    assert all(("Quillfeather" in h.text) == (h.bm25_rank is not None) for h in hits)


def test_filters(index, embedder):
    bees = PARAPHRASES[0][0]
    hits = index.search(bees, embedder, feed="culture", limit=50)
    assert {h.key for h in hits} == {JAZZ, CHESS}
    # 2024-04-01: jazz (exactly midnight UTC) is in, the volcano (one second earlier) and the
    # undated bread episode are out.
    hits = index.search(bees, embedder, since="2024-04-01", limit=50)
    assert {h.key for h in hits} == {JAZZ, CHESS, MARATHON}
    hits = index.search("lava", embedder, feed="nature", since="2024-02-01", limit=50)
    assert {h.key for h in hits} == {VOLCANO} and hits[0].bm25_rank == 1
    assert index.search(bees, embedder, feed="no-such-feed") == []
    assert index.search(bees, embedder, since="2030-01-01") == []
    with pytest.raises(ValueError, match="since"):
        index.search(bees, embedder, since="last week")


def test_query_vector_and_model_checks(index, embedder):
    query = "molten rock exploding out of a mountain"
    vector = embedder.encode([query])[0]
    assert index.search(query, query_vector=vector) == index.search(query, embedder)
    assert index.model == MODEL and index.dimension == 384

    class Other:
        model_id = "some/other-model"

    with pytest.raises(ValueError, match="other-model"):
        index.search(query, Other())
    with pytest.raises(ValueError, match="embedder or a query_vector"):
        index.search(query)


QUERIES = [q for q, _ in PARAPHRASES] + ["Quillfeather", "the crust", "lava"]


def _write_all(tables: dict, root) -> dict:
    paths = {}
    for key, table in tables.items():
        feed, episode = key.split("--")
        paths[key] = root / feed / episode / "chunks.parquet"
        write_parquet(table, paths[key])
    return paths


def test_parquet_round_trip_gives_identical_results(tables, index, embedder, tmp_path):
    _write_all(tables, tmp_path)
    (tmp_path / "nature" / "ignored.parquet").write_bytes(b"not matched by the pattern")
    loaded = SearchIndex.from_directory(tmp_path, episodes=META)
    assert len(loaded) == len(index) == sum(t.num_rows for t in tables.values())
    assert loaded.model == MODEL
    # Tables in another order build the same index: rows are sorted by (key, chunk_id).
    reordered = SearchIndex.from_tables(list(tables.values())[::-1], META)
    for query, vector in zip(QUERIES, embedder.encode(QUERIES), strict=True):
        for filters in ({}, {"feed": "life"}, {"since": "2024-03-01"}):
            expected = index.search(query, query_vector=vector, limit=20, **filters)
            assert loaded.search(query, query_vector=vector, limit=20, **filters) == expected
            assert reordered.search(query, query_vector=vector, limit=20, **filters) == expected
    table = pq.read_table(tmp_path / "life" / "0000000042f2" / "chunks.parquet")
    assert table.schema.field("vector").type.list_size == 384
    assert table.schema.metadata[b"podcast.embeddings_version"] == b"1"


def test_cached_index_reuses_until_files_change(tables, tmp_path):
    clear_index_cache()
    paths = _write_all({k: tables[k] for k in (BEES, VOLCANO, JAZZ)}, tmp_path)
    first = cached_index(tmp_path, META)
    assert cached_index(tmp_path, META) is first
    assert set(first.keys) == {BEES, VOLCANO, JAZZ}

    # Same content, new modification time: rebuilt.
    stat = paths[JAZZ].stat()
    os.utime(paths[JAZZ], ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    second = cached_index(tmp_path, META)
    assert second is not first and len(second) == len(first)
    assert cached_index(tmp_path, META) is second

    # A new file: rebuilt with it; but not while the recheck interval has not passed.
    _write_all({CHESS: tables[CHESS]}, tmp_path)
    assert cached_index(tmp_path, META, recheck_seconds=3600) is second
    third = cached_index(tmp_path, META)
    assert third is not second and CHESS in third.keys

    # A removed file: rebuilt without it.
    paths[BEES].unlink()
    fourth = cached_index(tmp_path, META)
    assert BEES not in fourth.keys and cached_index(tmp_path, META) is fourth

    # New metadata: a new object sharing the same arrays, with the new titles.
    renamed = {**META, JAZZ: {**META[JAZZ], "title": "Blue notes, revisited"}}
    fifth = cached_index(tmp_path, renamed)
    assert fifth is not fourth and fifth.vectors is fourth.vectors
    # Row 0 is the jazz episode's first chunk (rows are sorted by key).
    hit = fifth.search("saxophonist", query_vector=fifth.vectors.matrix[0])[0]
    assert (hit.key, hit.chunk_id, hit.title) == (JAZZ, 0, "Blue notes, revisited")
    assert first.search("saxophonist", query_vector=first.vectors.matrix[0])[0].title == (
        "Blue notes"
    )
    assert cached_index(tmp_path, renamed) is fifth
    clear_index_cache()
