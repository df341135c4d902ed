"""Summaries: extractive with the real packaged MiniLM, transformers plumbing with a tiny BART built
here from scratch (it proves chunking, reduce and loading, never quality), and the LLM backend
against a fake OpenAI-compatible server on loopback."""

from __future__ import annotations

import dataclasses
import http.server
import itertools
import json
import math
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from podcast_core.embed import Embedder
from podcast_core.summarize import SummaryError, SummarySettings, summarize
from podcast_core.text import split_sentences

MINILM = "packaged:all-MiniLM-L6-v2"
EXTRACTIVE = SummarySettings(backend="extractive", model=MINILM)

TOPICS = {
    "baking": ("sourdough", "starter", "dough", "loaf", "bread", "oven", "bakers", "flour"),
    "mars": ("mars", "martian", "rover", "jezero", "crater", "nasa", "ingenuity", "samples"),
    "money": ("fund", "funds", "fee", "fees", "investing", "investors", "portfolio", "retirement"),
}

# Three topics; each opens with a near-duplicate pair or triple, plus short fillers.
EPISODE = """Welcome back to the show. Today we have three very different stories for you.
Let's start in the kitchen. Sourdough bread depends on a healthy starter of wild yeast and bacteria.
A healthy starter of wild yeast and bacteria is what sourdough bread depends on.
Sourdough bread really depends on having a healthy wild yeast starter.
You feed the starter with flour and water every day so it stays active.
The dough needs a long cold fermentation in the fridge overnight to develop its sour flavor.
Bakers score the loaf with a razor before it goes into a very hot oven.
A Dutch oven traps steam, which gives the bread a crisp, blistered crust.
Yeah. Right.
Now let's go to space. NASA's Perseverance rover is collecting rock samples in Jezero Crater.
The Perseverance rover on Mars keeps collecting rock samples inside Jezero Crater.
Jezero Crater was once a lake, so scientists hope the rocks preserve signs of ancient life.
The samples are sealed in titanium tubes and left on the surface for a future mission.
A sample return mission would fly the tubes back to Earth for laboratory analysis.
The small Ingenuity helicopter flew more than seventy times in the thin Martian atmosphere.
Exactly.
Finally, some money advice. Low-cost index funds beat most actively managed funds over decades.
Over decades, most actively managed funds are beaten by low-cost index funds.
Fees compound just like returns, so a one percent fee can eat a large share of retirement savings.
Investors should keep an emergency fund of several months of expenses in a savings account.
Diversifying across stocks and bonds keeps one bad year from wrecking your portfolio.
Rebalancing your portfolio once a year keeps the stock and bond mix where you planned it.
Automatic monthly contributions to a retirement account take emotion out of investing.
That's all for today. Thanks for listening and see you next week.
"""

NEAR_DUPLICATE = 0.85


def _topics_of(sentence: str) -> set[str]:
    words = {w.strip(".,").lower() for w in sentence.replace("'s", "").split()}
    return {topic for topic, keys in TOPICS.items() if words & set(keys)}


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(MINILM)


def _max_pairwise_similarity(embedder: Embedder, texts: list[str]) -> float:
    vectors = embedder.encode(texts)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1.0)
    return float(sims.max())


# --- extractive -----------------------------------------------------------------------------


def test_extractive_covers_every_topic_with_verbatim_diverse_sentences(embedder):
    assert 28 <= len(split_sentences(EPISODE)) <= 32
    summary = summarize(EPISODE, EXTRACTIVE, embedder=embedder)

    assert summary.backend == "extractive"
    assert summary.model == MINILM
    assert len(summary.bullets) == EXTRACTIVE.max_bullets
    covered = set().union(*(_topics_of(b) for b in summary.bullets))
    assert covered == set(TOPICS), f"bullets miss a topic: {summary.bullets}"
    assert _max_pairwise_similarity(embedder, summary.bullets) < NEAR_DUPLICATE

    picked = summary.details["sentences"]
    assert [p["text"] for p in picked] == summary.bullets
    starts = [p["char_start"] for p in picked]
    assert starts == sorted(starts), "bullets are not in document order"
    for p in picked:
        assert EPISODE[p["char_start"] : p["char_end"]] == p["text"]
        assert len(p["text"].split()) >= 4
    assert summary.paragraph == " ".join(summary.bullets)

    lead = summary.details["lead"]
    assert EPISODE[lead["char_start"] : lead["char_end"]] == summary.lead
    # Centrality computed here independently: similarity to the mean of all sentence vectors.
    sentences = split_sentences(EPISODE)
    vectors = embedder.encode([s.text for s in sentences])
    centroid = vectors.mean(axis=0)
    order = np.argsort(-(vectors @ (centroid / np.linalg.norm(centroid))))
    top3 = {sentences[i].text for i in order[:3]}
    assert any(summary.lead.startswith(t) for t in top3), (summary.lead, top3)

    json.dumps(summary.to_dict())
    assert summary.details["seconds"] >= 0


def test_without_mmr_the_same_ranking_repeats_itself(embedder):
    # The control for the test above: by centrality alone the picks are near-duplicates about
    # one topic, so the diversity there comes from MMR.
    plain = summarize(EPISODE, dataclasses.replace(EXTRACTIVE, mmr_lambda=1.0), embedder=embedder)
    assert _max_pairwise_similarity(embedder, plain.bullets) >= NEAR_DUPLICATE
    assert set().union(*(_topics_of(b) for b in plain.bullets)) != set(TOPICS)
    assert EXTRACTIVE.fingerprint() != dataclasses.replace(EXTRACTIVE, mmr_lambda=1.0).fingerprint()


def test_extractive_one_sentence_is_its_own_summary(embedder):
    text = "  Our guest explains why the city rebuilt its tram network after the war.\n"
    summary = summarize(text, EXTRACTIVE, embedder=embedder)
    assert summary.lead == text.strip()
    assert summary.bullets == [text.strip()]
    assert summary.paragraph == text.strip()
    (only,) = summary.details["sentences"]
    assert text[only["char_start"] : only["char_end"]] == text.strip()


def test_extractive_short_sentences_are_used_only_when_nothing_else_exists(embedder):
    summary = summarize("Yes. No way. Okay then.", EXTRACTIVE, embedder=embedder)
    assert summary.bullets and summary.lead
    mixed = summarize(
        "Yes. The tram network was rebuilt after the war. Okay then.", EXTRACTIVE, embedder=embedder
    )
    assert mixed.bullets == ["The tram network was rebuilt after the war."]


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_transcript_is_an_error_not_an_empty_summary(embedder, text):
    with pytest.raises(SummaryError, match="extractive backend: the transcript is empty"):
        summarize(text, EXTRACTIVE, embedder=embedder)


def test_extractive_unloadable_embedding_model_is_named():
    settings = dataclasses.replace(EXTRACTIVE, model="packaged:no-such-model")
    with pytest.raises(SummaryError, match="packaged:no-such-model"):
        summarize("One sentence that is long enough.", settings)


def test_unknown_backend_is_an_error():
    with pytest.raises(SummaryError, match="unknown summary backend 'abstractive-magic'"):
        summarize("Some text here.", SummarySettings(backend="abstractive-magic"))


def test_default_models_and_fingerprint():
    assert SummarySettings().resolved_model() == "sentence-transformers/all-MiniLM-L6-v2"
    assert SummarySettings(backend="transformers").resolved_model() == "facebook/bart-large-cnn"
    base = SummarySettings(backend="transformers")
    assert base.fingerprint() == SummarySettings(backend="transformers").fingerprint()
    changed = [
        dataclasses.replace(base, model="sshleifer/distilbart-cnn-12-6"),
        dataclasses.replace(base, max_bullets=7),
        dataclasses.replace(base, backend="extractive"),
    ]
    assert len({base.fingerprint(), *(c.fingerprint() for c in changed)}) == 4
    # Where an LLM runs does not change what it writes.
    llm = SummarySettings(backend="llm", model="qwen2.5:7b")
    assert (
        llm.fingerprint()
        == dataclasses.replace(llm, llm_base_url="http://gpu:8000/v1").fingerprint()
    )


# --- transformers (tiny local model) ----------------------------------------------------------

WORDS = [
    "river",
    "valley",
    "farmer",
    "cattle",
    "bridge",
    "market",
    "harvest",
    "winter",
    "storm",
    "village",
    "council",
    "road",
    "school",
    "teacher",
    "doctor",
    "station",
    "engine",
    "signal",
    "garden",
    "orchard",
    "mill",
    "baker",
    "lantern",
    "harbor",
    "ship",
    "sailor",
]
SENTENCE_WORDS = 9  # plus the full stop: 10 tokens per sentence with a word-level tokenizer
N_SENTENCES = 41
MAX_LENGTH = 64


def _long_text() -> str:
    sentences = []
    for i in range(N_SENTENCES):
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(SENTENCE_WORDS)]
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences)


@pytest.fixture(scope="module")
def tiny_bart(tmp_path_factory) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import (
        BartConfig,
        BartForConditionalGeneration,
        GenerationConfig,
        PreTrainedTokenizerFast,
    )

    path = tmp_path_factory.mktemp("tiny-bart")
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    raw = Tokenizer(models.WordLevel(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(
        [_long_text(), _long_text().lower()], trainers.WordLevelTrainer(special_tokens=specials)
    )
    raw.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    raw.decoder = decoders.WordPiece()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<s>",
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=MAX_LENGTH,
    )
    tokenizer.save_pretrained(path)
    torch.manual_seed(0)
    ids = {"pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "decoder_start_token_id": 2}
    config = BartConfig(
        vocab_size=raw.get_vocab_size(),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=MAX_LENGTH,
        **ids,
    )
    model = BartForConditionalGeneration(config)
    # min_length keeps a random model from answering with an immediate end-of-sequence.
    model.generation_config = GenerationConfig(min_length=5, max_length=40, num_beams=1, **ids)
    model.save_pretrained(path)
    return path


def test_transformers_chunks_fit_the_model_and_cover_every_sentence(tiny_bart):
    from transformers import AutoTokenizer

    text = _long_text()
    tokenizer = AutoTokenizer.from_pretrained(tiny_bart)
    sentences = split_sentences(text)
    assert len(sentences) == N_SENTENCES
    assert {len(tokenizer(s.text, add_special_tokens=False)["input_ids"]) for s in sentences} == {
        SENTENCE_WORDS + 1
    }

    summary = summarize(text, SummarySettings(backend="transformers", model=str(tiny_bart)))
    d = summary.details
    assert d["max_input_tokens"] == MAX_LENGTH
    budget = d["chunk_budget"]
    assert SENTENCE_WORDS + 1 <= budget <= MAX_LENGTH - 2
    per_chunk = budget // (SENTENCE_WORDS + 1)
    assert d["chunk_count"] == len(d["chunks"]) == math.ceil(N_SENTENCES / per_chunk)
    assert d["chunk_count"] > 1

    for chunk in d["chunks"]:
        piece = text[chunk["char_start"] : chunk["char_end"]]
        assert len(tokenizer(piece)["input_ids"]) <= MAX_LENGTH, "a chunk would be truncated"
    for s in sentences:
        holders = [c for c in d["chunks"] if c["char_start"] <= s.start and s.end <= c["char_end"]]
        assert len(holders) == 1, f"sentence at {s.start} is in {len(holders)} chunks"
    spans = [(c["char_start"], c["char_end"]) for c in d["chunks"]]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))

    # Several rounds: the map round, then reduce rounds until one summary remains.
    rounds = [r["chunks"] for r in d["rounds"]]
    assert rounds[0] == d["chunk_count"] and rounds[-1] == 1 and len(rounds) >= 2
    assert rounds == sorted(rounds, reverse=True)

    assert summary.backend == "transformers" and summary.model == str(tiny_bart)
    assert summary.paragraph.strip() and summary.lead.strip()
    assert 1 <= len(summary.bullets) <= 5


def test_transformers_short_input_is_one_chunk(tiny_bart):
    text = "The river flooded the valley. Farmers moved their cattle to higher ground."
    summary = summarize(text, SummarySettings(backend="transformers", model=str(tiny_bart)))
    assert summary.details["chunk_count"] == 1
    assert [r["chunks"] for r in summary.details["rounds"]] == [1]
    assert summary.paragraph.startswith(summary.lead)


def test_transformers_model_loads_once_per_process(tiny_bart, tmp_path, monkeypatch):
    import transformers

    copy = tmp_path / "bart-copy"  # a path no other test has loaded
    shutil.copytree(tiny_bart, copy)
    original = transformers.AutoModelForSeq2SeqLM.from_pretrained
    loads: list[str] = []

    def counting(path, *args, **kwargs):
        loads.append(str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForSeq2SeqLM, "from_pretrained", counting)
    settings = SummarySettings(backend="transformers", model=str(copy))
    first = summarize("Winter storm hit the harbor. The ship stayed in port.", settings)
    second = summarize("The baker lit a lantern. The market opened late.", settings)
    assert loads == [str(copy)]
    assert first.details["load_seconds"] > 0 and not first.details["model_cached"]
    assert second.details["load_seconds"] == 0 and second.details["model_cached"]


def test_transformers_bad_model_is_named(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(SummaryError, match="no-such-model"):
        summarize("Some text.", SummarySettings(backend="transformers", model=str(missing)))
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    with pytest.raises(SummaryError, match=r"transformers backend: cannot load .*empty-dir"):
        summarize("Some text.", SummarySettings(backend="transformers", model=str(empty)))


# --- llm (fake OpenAI-compatible server) ------------------------------------------------------

CANNED = {
    "lead": "The episode covers sourdough, Mars samples and index funds.",
    "bullets": ["- Starters need daily feeding.", "Rovers cache samples.", "Fees compound."],
    "paragraph": "Three stories: baking bread, collecting rocks on Mars and cheap investing.",
}


class FakeLLM:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict, dict]] = []
        self.status = 200
        self.content = "Here you go:\n```json\n" + json.dumps(CANNED, indent=2) + "\n```"
        handler = self._handler()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append((self.path, dict(self.headers), body))
                if fake.status != 200:
                    payload = b'{"error": "model crashed"}'
                else:
                    answer = {"role": "assistant", "content": fake.content}
                    payload = json.dumps(
                        {"choices": [{"index": 0, "message": answer}], "usage": {"total_tokens": 7}}
                    ).encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    thread = threading.Thread(target=fake.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()


def test_llm_parses_a_fenced_json_answer(fake_llm):
    settings = SummarySettings(
        backend="llm", model="tiny-llm", llm_base_url=fake_llm.base_url, llm_api_key="sk-test"
    )
    summary = summarize(EPISODE, settings)
    assert summary.lead == CANNED["lead"]
    assert summary.bullets == [
        "Starters need daily feeding.",
        "Rovers cache samples.",
        "Fees compound.",
    ]
    assert summary.paragraph == CANNED["paragraph"]
    assert (summary.backend, summary.model) == ("llm", "tiny-llm")
    assert summary.details["endpoint"] == fake_llm.base_url + "/chat/completions"

    ((path, headers, body),) = fake_llm.requests
    assert path == "/v1/chat/completions"
    assert headers["Authorization"] == "Bearer sk-test"
    assert body["model"] == "tiny-llm"
    assert EPISODE.strip() in body["messages"][-1]["content"]
    assert "json" in body["messages"][0]["content"].lower()


def test_llm_map_reduces_a_long_transcript(fake_llm):
    settings = SummarySettings(
        backend="llm", model="tiny-llm", llm_base_url=fake_llm.base_url, chunk_tokens=120
    )
    summary = summarize(EPISODE, settings)
    chunks, rounds = summary.details["chunk_count"], summary.details["rounds"]
    assert chunks > 1 and rounds[0] == chunks and rounds[-1] == 1
    assert len(fake_llm.requests) == sum(rounds) == summary.details["requests"]
    map_prompts = [body["messages"][-1]["content"] for _, _, body in fake_llm.requests[:chunks]]
    for sentence in split_sentences(EPISODE):
        assert sum(sentence.text in p for p in map_prompts) >= 1, sentence.text
    reduce_prompt = fake_llm.requests[-1][2]["messages"][-1]["content"]
    assert CANNED["paragraph"] in reduce_prompt and "Sourdough" not in reduce_prompt
    assert summary.details["usage"]["total_tokens"] == 7 * sum(rounds)


def test_llm_server_error_names_the_endpoint(fake_llm):
    fake_llm.status = 500
    settings = SummarySettings(backend="llm", model="tiny-llm", llm_base_url=fake_llm.base_url)
    url = fake_llm.base_url + "/chat/completions"
    with pytest.raises(SummaryError, match=rf"{url}.*HTTP 500"):
        summarize("A sentence about something.", settings)


def test_llm_unparseable_answer_and_unreachable_endpoint(fake_llm):
    fake_llm.content = "Sorry, I cannot help with that."
    settings = SummarySettings(backend="llm", model="tiny-llm", llm_base_url=fake_llm.base_url)
    with pytest.raises(SummaryError, match="not a JSON object"):
        summarize("A sentence about something.", settings)
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    with pytest.raises(SummaryError, match=rf"{dead}/chat/completions"):
        summarize("A sentence about something.", dataclasses.replace(settings, llm_base_url=dead))


def test_llm_needs_a_model():
    with pytest.raises(SummaryError, match="llm backend: no model"):
        summarize("A sentence about something.", SummarySettings(backend="llm"))
