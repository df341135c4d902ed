"""Grounded insights: retrieval, verifiers, span resolution, timestamps and gi.json checks.

The embedding tests use the real packaged MiniLM. The NLI tests use a tiny random BERT built in a
temp dir: they prove the loading and scoring plumbing, never quality.
"""

from __future__ import annotations

import contextlib
import copy
import http.server
import itertools
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from podcast_core.embed import Embedder
from podcast_core.insights import (
    GI_VERSION,
    GroundingError,
    GroundingSettings,
    build_insights,
    check_insights,
    classify_insight,
    loaded_nli_models,
    parse_llm_quotes,
    retrieval_windows,
)

SEGMENTS = [
    ("HOST", 0.0, 9.5, "Welcome back to the Garden Hour. Today we are talking about growing "
     "tomatoes on a small balcony."),
    ("GUEST", 9.5, 21.0, "Thanks for having me. The biggest mistake beginners make is watering "
     "their tomato plants every single day. Overwatering rots the roots faster than any pest "
     "could."),
    ("HOST", 21.0, 30.0, "So how often should people water? I always assumed more water meant "
     "more fruit."),
    ("GUEST", 30.0, 44.0, "Water deeply twice a week and let the top inch of soil dry out. In my "
     "trials, plants watered twice weekly produced forty percent more fruit."),
    ("HOST", 44.0, 52.0, "That's surprising. What about containers?"),
    ("GUEST", 52.0, 66.0, "Use a pot of at least twenty liters, because tomato roots don't like "
     "being cramped. Dark plastic pots get too hot in July, so I prefer terracotta or fabric "
     "bags."),
    ("HOST", 66.0, 74.0, "Let's talk about light. My balcony faces north."),
    ("GUEST", 74.0, 88.0, "A north-facing balcony is tough for tomatoes. They need at least six "
     "hours of direct sun, so try cherry varieties or grow herbs instead."),
    ("HOST", 88.0, 95.0, "Good advice. Any thoughts on fertilizer?"),
    ("GUEST", 95.0, 108.0, "Feed them with a tomato fertilizer once the first flowers appear. "
     "Too much nitrogen early on gives you big leaves and no tomatoes."),
    ("HOST", 108.0, 115.0, "We're out of time. Thanks so much for joining us today."),
]  # fmt: skip

WATERING = "The biggest mistake beginners make is watering their tomato plants every single day."
POT = "Use a pot of at least twenty liters, because tomato roots don't like being cramped."
PARAPHRASE = "Giving tomato plants water daily is the most common error new gardeners make."
NEVER_SAID = "The stock market crashed because interest rates rose sharply."
# The POT sentence with doubled spaces, a line break, a curly apostrophe and lower case.
POT_ODD = (
    "use a pot of at least  twenty liters,\nbecause tomato roots don\u2019t like being cramped."
)


def make_doc(duration: float | None = 115.0) -> dict:
    segments = [
        {"start": start, "end": end, "text": text, "speaker": speaker}
        for speaker, start, end, text in SEGMENTS
    ]
    return {
        "key": "garden-hour/ep-1",
        "feed": "garden-hour",
        "title": "Tomatoes on a balcony",
        "text": " ".join(s["text"] for s in segments),
        "segments": segments,
        "duration_seconds": duration,
    }


DOC = make_doc()
TEXT = DOC["text"]
# Two segments, for tests about failures, where retrieval quality does not matter.
SMALL_DOC = {
    **DOC,
    "text": " ".join(s[3] for s in SEGMENTS[:2]),
    "segments": DOC["segments"][:2],
}


def segment_range_ms(sentence: str) -> tuple[int, int]:
    for _, start, end, text in SEGMENTS:
        if sentence in text:
            return round(start * 1000), round(end * 1000)
    raise AssertionError(sentence)


def edges_of(gi: dict, insight_id: str) -> list[dict]:
    return [e for e in gi["edges"] if e["source"] == insight_id]


def quote(gi: dict, quote_id: str) -> dict:
    return next(q for q in gi["quotes"] if q["id"] == quote_id)


# --- classification -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Why do most podcasts stop after seven episodes?", "question"),
        ("It remains unclear whether ads hurt retention.", "question"),
        ("Whether terracotta beats plastic is still open.", "question"),
        ("Use a pot of at least twenty liters.", "recommendation"),
        ("Don\u2019t water tomatoes every day.", "recommendation"),
        ("Beginners should water twice a week.", "recommendation"),
        ("It's best to feed tomatoes once they flower.", "recommendation"),
        ("We noticed listeners drop off after twenty minutes.", "observation"),
        ("Remote work seems to make teams quieter.", "observation"),
        ("In my experience, fabric bags drain better.", "observation"),
        ("Overwatering rots the roots faster than pests.", "claim"),
        ("Plants watered twice weekly produced 40% more fruit.", "claim"),
        ("", "claim"),
    ],
)
def test_classify_insight(text, expected):
    assert classify_insight(text) == expected


# --- embedding verifier with the real packaged MiniLM ---------------------------------------


class CountingEmbedder(Embedder):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        return super().encode(texts)


@pytest.fixture(scope="module")
def embedder() -> CountingEmbedder:
    return CountingEmbedder("packaged:all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def gi(embedder) -> dict:
    before = embedder.calls
    result = build_insights(DOC, [PARAPHRASE, NEVER_SAID, POT_ODD], embedder, GroundingSettings())
    # Windows and insights are embedded in one call per build.
    assert embedder.calls - before == 1
    return result


def test_paraphrase_is_grounded_in_its_sentence(gi):
    insight = gi["insights"][0]
    assert insight["id"] == "ins-1" and insight["text"] == PARAPHRASE
    assert insight["grounded"] is True
    best = max(edges_of(gi, "ins-1"), key=lambda e: e["confidence"])
    assert best["confidence"] >= 0.6 and insight["support_score"] == best["confidence"]
    q = quote(gi, best["target"])
    start = TEXT.index(WATERING)
    # The sentence itself or a window of consecutive sentences that contains it.
    assert q["char_start"] <= start and start + len(WATERING) <= q["char_end"]
    assert TEXT[q["char_start"] : q["char_end"]] == q["text"]
    seg_start, seg_end = segment_range_ms(WATERING)
    assert seg_start <= q["timestamp_start_ms"] <= q["timestamp_end_ms"] <= seg_end
    assert q["speaker"] == "GUEST"
    assert q["transcript_ref"] == "garden-hour/ep-1"
    assert insight["position_hint"] == round(q["char_start"] / len(TEXT), 4)


def test_unsaid_insight_is_not_grounded(gi):
    insight = gi["insights"][1]
    assert insight["id"] == "ins-2" and insight["grounded"] is False
    assert insight["support_score"] < 0.5
    assert insight["position_hint"] is None
    assert edges_of(gi, "ins-2") == []


def test_verbatim_insight_with_odd_spacing_gets_the_exact_span(gi):
    insight = gi["insights"][2]
    assert insight["grounded"] is True
    assert insight["insight_type"] == "recommendation"
    best = max(edges_of(gi, "ins-3"), key=lambda e: e["confidence"])
    q = quote(gi, best["target"])
    start = TEXT.index(POT)
    assert (q["char_start"], q["char_end"], q["text"]) == (start, start + len(POT), POT)
    assert best["confidence"] > 0.9
    seg_start, seg_end = segment_range_ms(POT)
    assert seg_start == q["timestamp_start_ms"] and q["timestamp_end_ms"] <= seg_end
    assert q["speaker"] == "GUEST"
    assert insight["position_hint"] == round(start / len(TEXT), 4)


def test_gi_document_shape_and_stats(gi):
    assert check_insights(gi, TEXT, DOC["duration_seconds"]) == []
    assert gi["key"] == "garden-hour/ep-1" and gi["version"] == GI_VERSION
    assert [i["id"] for i in gi["insights"]] == ["ins-1", "ins-2", "ins-3"]
    assert [q["id"] for q in gi["quotes"]] == [f"q-{n}" for n in range(1, len(gi["quotes"]) + 1)]
    assert all(e["type"] == "SUPPORTED_BY" and e["confidence"] >= 0.6 for e in gi["edges"])
    for insight in gi["insights"]:
        spans = sorted(
            (quote(gi, e["target"])["char_start"], quote(gi, e["target"])["char_end"])
            for e in edges_of(gi, insight["id"])
        )
        assert len(spans) <= 2
        # A sentence and the window containing it are one piece of evidence, not two.
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), insight["id"]
    stats = gi["stats"]
    assert (stats["insights"], stats["grounded"], stats["grounded_rate"]) == (3, 2, 0.6667)
    assert stats["quotes"] == len(gi["quotes"])
    assert stats["quotes_per_insight"] == round(len(gi["edges"]) / 2, 4)
    # Retrieved windows are transcript spans already: all verbatim, none dropped.
    assert stats["verbatim_rate"] == 1.0 and stats["unresolved_quotes"] == 0
    assert stats["proposed_quotes"] == 3 * 3
    assert gi["provenance"]["verifier"] == "embedding"
    assert gi["provenance"]["embedding_model"] == "packaged:all-MiniLM-L6-v2"
    assert gi["provenance"]["settings"] == "embedding|k3|w2|min0.6|q2"
    json.dumps(gi)


def test_identical_span_is_one_quote_with_two_edges(embedder):
    gi = build_insights(DOC, [POT_ODD, POT.upper()], embedder, GroundingSettings(max_quotes=1))
    assert [len(edges_of(gi, i)) for i in ("ins-1", "ins-2")] == [1, 1]
    assert len(gi["quotes"]) == 1
    assert gi["quotes"][0]["text"] == POT
    assert {e["target"] for e in gi["edges"]} == {gi["quotes"][0]["id"]}
    assert check_insights(gi, TEXT, 115.0) == []


def test_timestamps_are_clamped_to_the_duration(embedder):
    # The audio is said to end at 100 s, before the last segment (108-115 s).
    doc = make_doc(duration=100.0)
    gi = build_insights(doc, ["We're out of time."], embedder, GroundingSettings(max_quotes=1))
    (q,) = gi["quotes"]
    assert q["text"] == "We're out of time."
    assert q["timestamp_start_ms"] == q["timestamp_end_ms"] == 100_000
    assert check_insights(gi, doc["text"], 100.0) == []


def test_windows_are_sentence_runs_of_one_speaker():
    windows = retrieval_windows(TEXT, DOC["segments"], 3)
    assert all(TEXT[w.start : w.end] == w.text for w in windows)
    # Segment 1 (GUEST) has three sentences: 3 + 2 + 1 windows start inside it.
    guest = SEGMENTS[1][3]
    inside = [w.text for w in windows if w.text in guest]
    assert len(inside) == 6 and guest in inside
    # Speakers alternate by segment here, so no window may span two segments.
    assert all(any(w.text in seg[3] for seg in SEGMENTS) for w in windows)
    # 23 sentences in segments of 2, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2 sentences.
    assert len(retrieval_windows(TEXT, DOC["segments"], 1)) == 23
    assert len(retrieval_windows(TEXT, DOC["segments"], 2)) == 23 + 12


def test_unknown_verifier_and_bad_settings(embedder):
    with pytest.raises(GroundingError, match="unknown insight verifier 'magic'"):
        build_insights(SMALL_DOC, [POT], embedder, GroundingSettings(verifier="magic"))
    with pytest.raises(GroundingError, match="top_k"):
        build_insights(SMALL_DOC, [POT], embedder, GroundingSettings(top_k=0))


# --- check_insights -------------------------------------------------------------------------


def test_check_catches_a_changed_character(gi):
    broken = copy.deepcopy(gi)
    q = broken["quotes"][0]
    q["text"] = q["text"][:5] + ("X" if q["text"][5] != "X" else "Y") + q["text"][6:]
    problems = check_insights(broken, TEXT, 115.0)
    assert len(problems) == 1 and q["id"] in problems[0] and "verbatim" in problems[0]


def test_check_catches_timestamps_past_the_duration(gi):
    broken = copy.deepcopy(gi)
    q = broken["quotes"][-1]
    q["timestamp_end_ms"] = 115_000 + 5_000
    problems = check_insights(broken, TEXT, 115.0)
    assert len(problems) == 1 and q["id"] in problems[0] and "duration" in problems[0]
    # Within the tolerance is fine; without a known duration nothing is past it.
    q["timestamp_end_ms"] = 115_000 + 200
    assert check_insights(broken, TEXT, 115.0) == []
    q["timestamp_end_ms"] = 10**9
    assert check_insights(broken, TEXT, None) == []


def test_check_catches_a_grounded_insight_without_edges(gi):
    broken = copy.deepcopy(gi)
    broken["edges"] = [e for e in broken["edges"] if e["source"] != "ins-1"]
    used = {e["target"] for e in broken["edges"]}
    broken["quotes"] = [q for q in broken["quotes"] if q["id"] in used]
    broken["stats"]["quotes"] = len(broken["quotes"])
    assert check_insights(broken, TEXT, 115.0) == [
        "insight ins-1: grounded but has no SUPPORTED_BY edge"
    ]


def test_check_catches_a_dangling_edge(gi):
    broken = copy.deepcopy(gi)
    broken["edges"].append(
        {"type": "SUPPORTED_BY", "source": "ins-1", "target": "q-99", "confidence": 0.9}
    )
    problems = check_insights(broken, TEXT, 115.0)
    assert len(problems) == 1 and "q-99" in problems[0] and "does not exist" in problems[0]
    broken["edges"][-1] = {**broken["edges"][-1], "source": "ins-42", "target": "q-1"}
    problems = check_insights(broken, TEXT, 115.0)
    assert len(problems) == 1 and "ins-42" in problems[0]


def test_check_catches_duplicate_ids(gi):
    broken = copy.deepcopy(gi)
    broken["insights"][1]["id"] = "ins-1"
    assert any("ins-1: duplicate id" in p for p in check_insights(broken, TEXT, 115.0))


# --- nli verifier with a tiny local model (plumbing only) -----------------------------------

NLI_LABELS = {0: "contradiction", 1: "entailment", 2: "neutral"}


def _tiny_nli(path, id2label: dict[int, str]) -> str:
    import torch
    from tokenizers.implementations import BertWordPieceTokenizer
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    corpus = [s[3] for s in SEGMENTS] + [PARAPHRASE, NEVER_SAID, POT]
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(
        corpus,
        vocab_size=400,
        min_frequency=1,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    )
    tokenizer = BertTokenizerFast(
        tokenizer_object=wordpiece._tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=wordpiece.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=3,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def tiny_nli(tmp_path_factory) -> str:
    return _tiny_nli(tmp_path_factory.mktemp("tiny-nli"), NLI_LABELS)


def test_nli_verifier_scores_entailment_probability(tiny_nli, embedder, monkeypatch):
    import torch
    import transformers

    loads = []
    real = transformers.AutoModelForSequenceClassification.from_pretrained

    def counting(*args, **kwargs):
        loads.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(
        transformers.AutoModelForSequenceClassification, "from_pretrained", counting
    )
    # min_support 0: every retrieved window supports, so the edges expose the raw scores.
    settings = GroundingSettings(verifier="nli", nli_model=tiny_nli, min_support=0.0)
    loaded = loaded_nli_models()
    gi = build_insights(DOC, [PARAPHRASE, NEVER_SAID], embedder, settings)
    again = build_insights(DOC, [POT], embedder, settings)
    assert loads == [tiny_nli] and loaded_nli_models() == loaded + 1
    assert gi["provenance"]["model_cached"] is False and again["provenance"]["model_cached"]
    assert gi["provenance"]["nli_model"] == tiny_nli
    assert gi["provenance"]["settings"] == f"nli|{tiny_nli}|k3|w2|min0|q2"

    assert check_insights(gi, TEXT, 115.0) == [] and check_insights(again, TEXT, 115.0) == []
    assert all(i["grounded"] for i in gi["insights"])
    assert all(0.0 <= i["support_score"] <= 1.0 for i in gi["insights"])
    # Each confidence is P(label 1, "entailment") for premise = quote, hypothesis = insight.
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_nli)
    model = real(tiny_nli).eval()
    texts = {i["id"]: i["text"] for i in gi["insights"]}
    for edge in gi["edges"]:
        premise = quote(gi, edge["target"])["text"]
        with torch.inference_mode():
            logits = model(**tokenizer(premise, texts[edge["source"]], return_tensors="pt")).logits
        probabilities = logits.softmax(-1)[0]
        assert edge["confidence"] == pytest.approx(float(probabilities[1]), abs=2e-4)
        assert 0.0 <= edge["confidence"] <= 1.0


def test_nli_bad_model_raises_naming_it(embedder, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for path in (tmp_path / "no-such-model", empty):
        settings = GroundingSettings(verifier="nli", nli_model=str(path))
        with pytest.raises(GroundingError) as info:
            build_insights(SMALL_DOC, [POT], embedder, settings)
        assert f"cannot load NLI model {str(path)!r}" in str(info.value)


def test_nli_model_without_entailment_label_raises(embedder, tmp_path):
    path = _tiny_nli(tmp_path / "unlabeled", {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    settings = GroundingSettings(verifier="nli", nli_model=path)
    with pytest.raises(GroundingError, match="no single entailment label"):
        build_insights(SMALL_DOC, [POT], embedder, settings)


# --- llm verifier against a local OpenAI-compatible server ----------------------------------


@dataclass
class ChatServer:
    base_url: str = ""
    answers: list[tuple[int, str]] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)

    def reply(self, content: dict | str, status: int = 200) -> None:
        if status != 200:
            self.answers.append((status, "model crashed"))
            return
        text = content if isinstance(content, str) else json.dumps(content)
        body = {"choices": [{"message": {"role": "assistant", "content": text}}]}
        self.answers.append((200, json.dumps(body)))


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    state = ChatServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            state.requests.append({"path": self.path, **json.loads(self.rfile.read(length))})
            status, body = state.answers.pop(0) if state.answers else (404, "no answer queued")
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def test_llm_quote_is_resolved_onto_the_exact_span(chat_server, embedder):
    paraphrase = "Tomato roots need a roomy pot of twenty liters or more."
    # Re-spaced, curly apostrophe, a line break and no final period.
    chat_server.reply(
        {
            "quotes": [
                {
                    "quote": "Use a pot of at least twenty  liters, because tomato roots "
                    "don\u2019t like\nbeing cramped",
                    "score": 0.9,
                }
            ]
        }
    )
    # An invented quote that occurs nowhere in the transcript is dropped.
    chat_server.reply(
        '```json\n{"quotes": [{"quote": "Interest rates rose sharply last year.", "score": 0.8}]}'
        "\n```"
    )
    settings = GroundingSettings(verifier="llm", llm_base_url=chat_server.base_url, llm_model="m1")
    gi = build_insights(DOC, [paraphrase, NEVER_SAID], embedder, settings)

    assert check_insights(gi, TEXT, 115.0) == []
    (q,) = gi["quotes"]
    expected = POT.removesuffix(".")
    start = TEXT.index(expected)
    assert (q["text"], q["char_start"], q["char_end"]) == (expected, start, start + len(expected))
    assert q["method"] == "normalized" and q["speaker"] == "GUEST"
    seg_start, seg_end = segment_range_ms(POT)
    assert seg_start <= q["timestamp_start_ms"] <= q["timestamp_end_ms"] <= seg_end
    assert gi["edges"] == [
        {"type": "SUPPORTED_BY", "source": "ins-1", "target": q["id"], "confidence": 0.9}
    ]
    assert [i["grounded"] for i in gi["insights"]] == [True, False]
    stats = gi["stats"]
    assert (stats["proposed_quotes"], stats["unresolved_quotes"]) == (2, 1)
    assert stats["resolution"] == {"exact": 0, "normalized": 1, "sub-phrase": 0}
    assert stats["verbatim_rate"] == 0.0 and stats["llm_requests"] == 2
    assert gi["provenance"]["llm_model"] == "m1"

    first = chat_server.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["model"] == "m1"
    prompt = first["messages"][-1]["content"]
    assert paraphrase in prompt and POT in prompt


def test_llm_low_score_does_not_ground(chat_server, embedder):
    chat_server.reply({"quote": WATERING, "score": 0.2})
    settings = GroundingSettings(verifier="llm", llm_base_url=chat_server.base_url, llm_model="m1")
    gi = build_insights(SMALL_DOC, [PARAPHRASE], embedder, settings)
    assert gi["insights"][0]["grounded"] is False and gi["insights"][0]["support_score"] == 0.2
    assert gi["edges"] == [] and gi["quotes"] == []
    assert check_insights(gi, SMALL_DOC["text"], 115.0) == []


def test_llm_http_error_names_the_url(chat_server, embedder):
    chat_server.reply({}, status=500)
    settings = GroundingSettings(verifier="llm", llm_base_url=chat_server.base_url, llm_model="m1")
    with pytest.raises(GroundingError) as info:
        build_insights(SMALL_DOC, [PARAPHRASE], embedder, settings)
    assert f"{chat_server.base_url}/chat/completions" in str(info.value)
    assert "500" in str(info.value)


def test_llm_without_model_or_with_garbage_answers_raises(chat_server, embedder):
    with pytest.raises(GroundingError, match="no model configured"):
        build_insights(SMALL_DOC, [PARAPHRASE], embedder, GroundingSettings(verifier="llm"))
    chat_server.reply("Sorry, I cannot help with that.")
    settings = GroundingSettings(verifier="llm", llm_base_url=chat_server.base_url, llm_model="m1")
    with pytest.raises(GroundingError, match="no answer was a JSON object"):
        build_insights(SMALL_DOC, [PARAPHRASE], embedder, settings)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"quotes": [{"quote": "a b c", "score": 0.7}]}', [("a b c", 0.7)]),
        ('```json\n{"quote": "a b c", "score": 3}\n```', [("a b c", 1.0)]),
        ('Here: [{"quote": "a b c"}, {"quote": ""}]', [("a b c", None)]),
        ('{"quotes": []}', []),
        ("no json here", None),
    ],
)
def test_parse_llm_quotes(content, expected):
    assert parse_llm_quotes(content) == expected


def test_module_import_loads_no_ml_libraries():
    code = (
        "import sys, podcast_core.insights; "
        "print([m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
