"""Hybrid search latency on a synthetic corpus of 100,000+ chunks.

Builds a corpus of about 2,000 episodes in 50 feeds (feed sizes skewed, publication dates spread
over 2020-2025) whose transcripts are sentences composed from a vocabulary (function words,
topic words, rare made-up names), cuts them with the real ``chunk_transcript`` (300-token chunks,
50-token overlap), and gives every chunk a random unit vector of dimension 384. The vectors are
synthetic: they only have to cost what MiniLM vectors cost in the matrix product; the embedding
of the query is timed separately with the real packaged all-MiniLM-L6-v2.

Then, in one process:

1. builds ``SearchIndex.from_tables`` in memory (wall time, RSS growth, bytes per part);
2. writes one ``{feed}/{episode}/chunks.parquet`` per episode to a temporary directory and times
   ``SearchIndex.from_directory``, the first ``cached_index`` call (a build) and cache hits
   (directory scan: a glob and a stat per file, and with ``recheck_seconds``);
3. runs the queries (default 300: a third plain, a third with a feed filter, a third with a
   ``since`` filter; 1-4 random vocabulary words and a random unit vector each) through
   ``SearchIndex.search(..., query_vector=...)``, so the timings exclude the query embedding,
   after 10 untimed warm-up queries; the parts (filter mask, BM25 top-k, vector top-k) are also
   timed on their own;
4. loads the real MiniLM and times ``Embedder.encode([query])`` followed by the search for every
   query, once with torch's default thread count and once with ``torch.set_num_threads(1)``.

Run from the repository root::

    .venv/bin/python bench/search.py                      # about 2 minutes on 2 cores
    .venv/bin/python bench/search.py --chunks 20000 --episodes 400 --no-embed   # quick

Prints a markdown table and writes ``bench/results/search.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from podcast_core.search import (  # noqa: E402
    SearchIndex,
    cached_index,
    chunk_table,
    chunk_transcript,
    clear_index_cache,
    write_parquet,
)

RESULTS = ROOT / "bench" / "results" / "search.json"
MODEL = "packaged:all-MiniLM-L6-v2"
DIMENSION = 384

FUNCTION_WORDS = """
the of and to a in that is it you for on with as was this we they be at have but not are so
what from or by one all there about like if just can he she do my more would when which your
their our out up them some know then think very really because people its how now well into
also than other right time even much only any these where here could over those after back
going said way get most yes actually things thing lot kind sort something
""".split()  # noqa: SIM905

TOPICS = {
    "tech": "software cloud server database latency startup developer code release bug api "
    "kubernetes compiler python rust network encryption protocol chip silicon processor",
    "science": "experiment hypothesis molecule genome protein telescope galaxy particle "
    "physicist laboratory theory evidence climate ocean fossil species evolution neuron",
    "history": "empire dynasty revolution treaty archive medieval century monarch colony war "
    "battle parliament manuscript pharaoh republic siege castle chronicle rebellion",
    "food": "recipe flour oven sourdough butter garlic spice fermentation kitchen chef "
    "restaurant harvest tomato pastry broth noodle vinegar roast dumpling",
    "sport": "marathon coach league season goal striker tournament stadium training sprint "
    "referee championship injury transfer defender keeper playoff medal",
    "music": "album guitar chord melody studio drummer saxophone jazz concert tour vinyl "
    "producer lyric rhythm orchestra symphony bass harmony",
    "business": "revenue margin investor founder market pricing customer quarter merger "
    "acquisition valuation strategy supply inflation budget equity dividend",
    "health": "sleep nutrition vaccine clinic patient therapy hormone exercise diet "
    "cardiology diagnosis symptom surgery immune microbiome anxiety",
    "politics": "election senate campaign policy voter ballot minister coalition debate "
    "legislation governor referendum diplomacy sanction budget reform",
    "nature": "forest river glacier volcano beekeeping pollinator wetland migration "
    "predator habitat drought wildfire coral reef meadow",
    "film": "director screenplay cinema actor festival camera editing documentary sequel "
    "premiere animation casting soundtrack studio trailer",
    "books": "novel chapter author publisher poetry memoir fiction library editor plot "
    "narrator manuscript translation essay bestseller",
    "space": "rocket orbit astronaut satellite launch mars lunar probe capsule booster "
    "payload telescope comet asteroid gravity",
    "games": "chess puzzle console strategy tabletop dice level quest multiplayer "
    "speedrun controller arcade tournament checkmate",
    "crime": "detective verdict trial witness evidence jury prosecutor alibi forensic "
    "heist suspect investigation courtroom testimony",
}

SYLLABLES = """
ka lo mi ra ven tor sa lin qu ell dor ba nix ur zel pho tam gri os we
""".split()  # noqa: SIM905


def vocabulary(rng: np.random.Generator, names: int = 3000) -> dict[str, list[str]]:
    """Function words, topic words and made-up proper names (the long tail)."""
    made_up = set()
    while len(made_up) < names:
        parts = rng.choice(SYLLABLES, size=rng.integers(2, 5))
        made_up.add("".join(parts).capitalize())
    return {
        "function": FUNCTION_WORDS,
        **{f"topic:{t}": words.split() for t, words in TOPICS.items()},
        "names": sorted(made_up),
    }


def zipf_weights(n: int, s: float = 1.1) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


class TextGenerator:
    """Sentences of 6-22 words: 45% function words, 45% words of the episode's two topics,
    7% words of any topic, 3% names; each part Zipf-distributed."""

    def __init__(self, vocab: dict[str, list[str]], rng: np.random.Generator):
        self.rng = rng
        self.vocab = vocab
        self.topics = [k for k in vocab if k.startswith("topic:")]
        self.all_topic_words = [w for t in self.topics for w in vocab[t]]
        self.weights = {k: zipf_weights(len(v)) for k, v in vocab.items()}

    def _draw(self, category: str, n: int) -> np.ndarray:
        words = self.vocab[category]
        return np.asarray(words, dtype=object)[
            self.rng.choice(len(words), n, p=self.weights[category])
        ]

    def sentences(self, topics: list[str], count: int) -> list[str]:
        rng = self.rng
        lengths = rng.integers(6, 23, size=count)
        total = int(lengths.sum())
        kind = rng.choice(4, size=total, p=[0.45, 0.45, 0.07, 0.03])
        words = np.empty(total, dtype=object)
        words[kind == 0] = self._draw("function", int((kind == 0).sum()))
        topical = np.flatnonzero(kind == 1)
        which = rng.integers(0, len(topics), size=len(topical))
        for i, topic in enumerate(topics):
            at = topical[which == i]
            words[at] = self._draw(topic, len(at))
        anywhere = np.flatnonzero(kind == 2)
        words[anywhere] = np.asarray(self.all_topic_words, dtype=object)[
            rng.integers(0, len(self.all_topic_words), size=len(anywhere))
        ]
        words[kind == 3] = self._draw("names", int((kind == 3).sum()))
        out, at = [], 0
        enders = rng.choice([".", "?", "!"], size=count, p=[0.85, 0.1, 0.05])
        for length, ender in zip(lengths.tolist(), enders.tolist(), strict=True):
            sentence = " ".join(words[at : at + length])
            out.append(sentence[0].upper() + sentence[1:] + ender)
            at += length
        return out


def make_corpus(
    target_chunks: int, episodes: int, feeds: int, seed: int
) -> tuple[list[list[dict[str, Any]]], dict[str, dict[str, Any]], dict[str, list[str]]]:
    """Chunk rows per episode (real chunker) and episode metadata, until ``target_chunks``."""
    rng = np.random.default_rng(seed)
    vocab = vocabulary(rng)
    gen = TextGenerator(vocab, rng)
    feed_names = [f"feed-{i:02d}" for i in range(feeds)]
    feed_weights = zipf_weights(feeds, 0.8)
    feed_topics = {f: list(rng.choice(gen.topics, size=3, replace=False)) for f in feed_names}
    start = datetime(2020, 1, 1, tzinfo=UTC)
    span_days = (datetime(2025, 12, 31, tzinfo=UTC) - start).days
    # Sentences of 6-22 words average ~15 tokens; a 300/50 chunk advances ~240 tokens.
    sentences_per_episode = max(int(target_chunks / episodes * 240 / 15), 20)
    chunks: list[list[dict[str, Any]]] = []
    meta: dict[str, dict[str, Any]] = {}
    total, n = 0, 0
    while n < episodes or total < target_chunks:
        feed = str(rng.choice(feed_names, p=feed_weights))
        key = f"{feed}--{n:012x}"
        topics = [str(t) for t in rng.choice(feed_topics[feed], size=2, replace=False)]
        count = int(rng.integers(sentences_per_episode // 2, sentences_per_episode * 3 // 2 + 1))
        sentences = gen.sentences(topics, count)
        segments, t = [], 0.0
        for s in sentences:
            duration = 0.35 * s.count(" ") + 0.6
            segments.append({"start": t, "end": t + duration, "text": s})
            t += duration + 0.2
        transcript = {"key": key, "text": " ".join(sentences), "segments": segments}
        rows = chunk_transcript(transcript)
        chunks.append(rows)
        published = start + timedelta(days=int(rng.integers(0, span_days)), hours=9)
        meta[key] = {
            "feed": feed,
            "title": f"{feed} episode {n}",
            # A few episodes without a date, as with real feeds.
            "published": None if rng.random() < 0.01 else published.isoformat(),
        }
        total += len(rows)
        n += 1
    return chunks, meta, vocab


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def percentiles(values_ms: list[float]) -> dict[str, float]:
    a = np.asarray(values_ms)
    return {
        "n": len(a),
        "mean": float(a.mean()),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "p99": float(np.percentile(a, 99)),
        "max": float(a.max()),
    }


def unit_vectors(rng: np.random.Generator, n: int, dim: int = DIMENSION) -> np.ndarray:
    v = rng.standard_normal((n, dim), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "pyarrow", "sentence-transformers", "torch"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000, help="at least this many chunks")
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--feeds", type=int, default=50)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-embed", action="store_true", help="skip the real MiniLM timing")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": {k: str(v) for k, v in vars(args).items()},
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "versions": versions(),
        "loadavg_before": os.getloadavg()[0],
    }

    # ---- corpus
    t0 = time.perf_counter()
    chunks, meta, vocab = make_corpus(args.chunks, args.episodes, args.feeds, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    tables = []
    for rows in chunks:
        tables.append(chunk_table(rows, unit_vectors(rng, len(rows))))
    n_chunks = sum(t.num_rows for t in tables)
    tokens = np.array([r["tokens"] for rows in chunks for r in rows])
    corpus = {
        "episodes": len(meta),
        "feeds": len({m["feed"] for m in meta.values()}),
        "chunks": n_chunks,
        "tokens_per_chunk_mean": float(tokens.mean()),
        "text_mb": sum(len(r["text"]) for rows in chunks for r in rows) / 1e6,
        "generate_and_chunk_s": time.perf_counter() - t0,
    }
    del chunks
    result["corpus"] = corpus
    print(
        f"corpus: {n_chunks} chunks, {len(meta)} episodes, {corpus['feeds']} feeds, "
        f"{corpus['tokens_per_chunk_mean']:.0f} tokens/chunk "
        f"({corpus['generate_and_chunk_s']:.1f} s)",
        flush=True,
    )

    # ---- build in memory
    gc.collect()
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    index = SearchIndex.from_tables(tables, meta)
    build_s = time.perf_counter() - t0
    gc.collect()
    parts = index.nbytes()
    result["build"] = {
        "from_tables_s": build_s,
        "rss_growth_mb": (rss_bytes() - rss0) / 1e6,
        "index_mb": {k: v / 1e6 for k, v in parts.items()},
        "index_total_mb": sum(parts.values()) / 1e6,
        "vocabulary_terms": len(index.bm25.vocabulary),
        "postings": int(index.bm25.matrix.nnz),
    }
    print(f"from_tables: {build_s:.2f} s, index {sum(parts.values()) / 1e6:.0f} MB", flush=True)

    # ---- Parquet directory and cache
    tmp = Path(tempfile.mkdtemp(prefix="search-bench-"))
    try:
        t0 = time.perf_counter()
        for table in tables:
            feed, episode = table.column("key")[0].as_py().split("--")
            write_parquet(table, tmp / feed / episode / "chunks.parquet")
        write_s = time.perf_counter() - t0
        disk = sum(p.stat().st_size for p in tmp.glob("*/*/chunks.parquet"))
        del tables
        gc.collect()
        t0 = time.perf_counter()
        loaded = SearchIndex.from_directory(tmp, episodes=meta)
        from_directory_s = time.perf_counter() - t0
        assert len(loaded) == len(index)
        del loaded
        gc.collect()
        clear_index_cache()
        t0 = time.perf_counter()
        cached = cached_index(tmp, meta)
        first_cached_s = time.perf_counter() - t0
        hits_ms, recheck_ms = [], []
        for _ in range(20):
            t0 = time.perf_counter()
            assert cached_index(tmp, meta) is cached
            hits_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            assert cached_index(tmp, meta, recheck_seconds=60) is cached
            recheck_ms.append((time.perf_counter() - t0) * 1000)
        del cached
        clear_index_cache()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["parquet"] = {
        "files": len(meta),
        "write_s": write_s,
        "disk_mb": disk / 1e6,
        "from_directory_s": from_directory_s,
        "cached_index_first_s": first_cached_s,
        "cached_index_hit_ms": percentiles(hits_ms),
        "cached_index_hit_recheck60_ms": percentiles(recheck_ms),
    }
    print(f"parquet: write {write_s:.1f} s, from_directory {from_directory_s:.2f} s", flush=True)

    # ---- queries
    qrng = np.random.default_rng(args.seed + 2)
    topic_words = [w for k, words in vocab.items() if k.startswith("topic:") for w in words]
    pools = [topic_words, vocab["names"], vocab["function"]]
    feeds = sorted({m["feed"] for m in meta.values()})
    kinds = ["plain", "feed", "since"]
    queries = []
    for i in range(args.queries + 10):
        # Each word: a topic word (75%), a made-up name (15%) or a function word (10%).
        picks = qrng.choice(3, size=int(qrng.integers(1, 5)), p=[0.75, 0.15, 0.10])
        words = [str(qrng.choice(pools[p])) for p in picks]
        kind = kinds[i % 3]
        filters: dict[str, str] = {}
        if kind == "feed":
            filters["feed"] = str(qrng.choice(feeds))
        elif kind == "since":
            day = datetime(2020, 1, 1) + timedelta(days=int(qrng.integers(0, 2190)))
            filters["since"] = day.date().isoformat()
        queries.append((" ".join(words), kind, filters))
    vectors = unit_vectors(qrng, len(queries))
    for (text, _, filters), vector in zip(queries[:10], vectors[:10], strict=True):  # warm-up
        index.search(text, query_vector=vector, **filters)
    queries, vectors = queries[10:], vectors[10:]

    timings: dict[str, list[float]] = {k: [] for k in [*kinds, "all"]}
    parts_ms: dict[str, list[float]] = {"mask": [], "bm25": [], "vector": []}
    selectivity, returned = [], []
    for (text, kind, filters), vector in zip(queries, vectors, strict=True):
        t0 = time.perf_counter()
        hits = index.search(
            text, query_vector=vector, limit=args.limit, candidates=args.candidates, **filters
        )
        elapsed = (time.perf_counter() - t0) * 1000
        timings[kind].append(elapsed)
        timings["all"].append(elapsed)
        returned.append(len(hits))
        t0 = time.perf_counter()
        mask = index.mask(**filters)
        t1 = time.perf_counter()
        index.bm25.top_indices(text, args.candidates, mask)
        t2 = time.perf_counter()
        index.vectors.top_indices(vector, args.candidates, mask)
        t3 = time.perf_counter()
        parts_ms["mask"].append((t1 - t0) * 1000)
        parts_ms["bm25"].append((t2 - t1) * 1000)
        parts_ms["vector"].append((t3 - t2) * 1000)
        selectivity.append(1.0 if mask is None else float(mask.mean()))
    result["search_ms"] = {k: percentiles(v) for k, v in timings.items()}
    result["search_parts_ms"] = {k: percentiles(v) for k, v in parts_ms.items()}
    result["queries"] = {
        "count": len(queries),
        "examples": [q for q, _, _ in queries[:5]],
        "filtered_fraction_mean": float(np.mean(selectivity)),
        "hits_mean": float(np.mean(returned)),
        "limit": args.limit,
        "candidates": args.candidates,
    }

    # ---- real query embedding, then the same search: what a query costs end to end
    if not args.no_embed:
        result["embed_query_ms"] = embed_queries(index, queries, args)
    result["loadavg_after"] = os.getloadavg()[0]

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(report(result))
    print(f"\nwrote {args.out}")


def embed_queries(
    index: SearchIndex, queries: list[tuple[str, str, dict[str, str]]], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Embed each query with the real MiniLM, then search with it; with torch's default thread
    count and with one thread (per-query batches of one gain little from threads, and spinning
    OpenMP threads suffer when the cores are shared)."""
    from podcast_core.embed import Embedder

    embedder = Embedder(MODEL)
    t0 = time.perf_counter()
    embedder.encode(["warm up"])
    load_s = time.perf_counter() - t0
    import torch  # loaded by the embedder already

    default = torch.get_num_threads()
    out = []
    try:
        for threads in dict.fromkeys([default, 1]):
            torch.set_num_threads(threads)
            for text, _, _ in queries[:5]:
                embedder.encode([text])
            embed_ms, total_ms = [], []
            for text, _, filters in queries:
                t0 = time.perf_counter()
                vector = embedder.encode([text])[0]
                t1 = time.perf_counter()
                index.search(
                    text,
                    query_vector=vector,
                    limit=args.limit,
                    candidates=args.candidates,
                    **filters,
                )
                t2 = time.perf_counter()
                embed_ms.append((t1 - t0) * 1000)
                total_ms.append((t2 - t0) * 1000)
            out.append(
                {
                    "model": MODEL,
                    "load_s": load_s,
                    "torch_threads": threads,
                    "embed": percentiles(embed_ms),
                    "total": percentiles(total_ms),
                }
            )
    finally:
        torch.set_num_threads(default)
    return out


def report(r: dict[str, Any]) -> str:
    c, b, p = r["corpus"], r["build"], r["parquet"]
    lines = [
        f"Corpus: {c['chunks']:,} chunks ({c['tokens_per_chunk_mean']:.0f} tokens each on "
        f"average), {c['episodes']:,} episodes, {c['feeds']} feeds; vectors: random, dim "
        f"{DIMENSION}; {r['cpus']} CPUs; load average {r['loadavg_before']:.1f} -> "
        f"{r['loadavg_after']:.1f}",
        "",
        "| Build | Value |",
        "|---|---:|",
        f"| `SearchIndex.from_tables` | {b['from_tables_s']:.2f} s |",
        f"| index memory (vectors / BM25 / texts / rows) | {b['index_total_mb']:.0f} MB "
        f"({b['index_mb']['vectors']:.0f} / {b['index_mb']['bm25']:.0f} / "
        f"{b['index_mb']['texts']:.0f} / {b['index_mb']['rows']:.0f}) |",
        f"| RSS growth during build | {b['rss_growth_mb']:.0f} MB |",
        f"| BM25 vocabulary / postings | {b['vocabulary_terms']:,} / {b['postings']:,} |",
        f"| write {p['files']:,} Parquet files | {p['write_s']:.1f} s ({p['disk_mb']:.0f} MB) |",
        f"| `SearchIndex.from_directory` | {p['from_directory_s']:.2f} s |",
        f"| `cached_index` first call (build) | {p['cached_index_first_s']:.2f} s |",
        f"| `cached_index` hit, scan p50 / p95 | {p['cached_index_hit_ms']['p50']:.1f} / "
        f"{p['cached_index_hit_ms']['p95']:.1f} ms |",
        f"| `cached_index` hit, `recheck_seconds=60` p50 | "
        f"{p['cached_index_hit_recheck60_ms']['p50']:.2f} ms |",
        "",
        "| Query latency (ms) | n | p50 | p95 | p99 | max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    names = {
        "all": "**search, all queries**",
        "plain": "search, no filter",
        "feed": "search, feed filter",
        "since": "search, since filter",
    }
    for key, label in names.items():
        s = r["search_ms"][key]
        lines.append(
            f"| {label} | {s['n']} | {s['p50']:.1f} | {s['p95']:.1f} | {s['p99']:.1f} | "
            f"{s['max']:.1f} |"
        )
    for key in ("mask", "bm25", "vector"):
        s = r["search_parts_ms"][key]
        lines.append(
            f"| part: {key} | {s['n']} | {s['p50']:.2f} | {s['p95']:.2f} | {s['p99']:.2f} | "
            f"{s['max']:.2f} |"
        )
    for e in r.get("embed_query_ms", []):
        threads = f"torch {e['torch_threads']} thread{'s' if e['torch_threads'] > 1 else ''}"
        for key, label in (("embed", "query embedding (real MiniLM)"), ("total", "embed + search")):
            t = e[key]
            lines.append(
                f"| {label}, {threads} | {t['n']} | {t['p50']:.1f} | {t['p95']:.1f} | "
                f"{t['p99']:.1f} | {t['max']:.1f} |"
            )
    q = r["queries"]
    lines += [
        "",
        f"Search timings exclude the query embedding (`query_vector=`); limit {q['limit']}, "
        f"{q['candidates']} candidates per side; filters keep {q['filtered_fraction_mean']:.0%} "
        f"of chunks on average; example queries: {', '.join(repr(x) for x in q['examples'][:3])}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
