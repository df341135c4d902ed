"""Episode summaries: a lead, key-point bullets and a short paragraph.

Three backends, chosen by configuration and never silently swapped for another:

- ``extractive``: verbatim transcript sentences picked by centrality (similarity to the document
  centroid) with maximal marginal relevance for diversity; each keeps its character offsets so
  downstream grounding can cite it.
- ``transformers``: a Hugging Face seq2seq summarizer (BART and friends), map-reduced over chunks
  that fit the model's input so a long episode is never silently truncated.
- ``llm``: an OpenAI-compatible chat completions endpoint (Ollama, vLLM) asked for JSON.

torch, transformers and sentence-transformers are imported only when a backend first needs them.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podcast_core.embed import Embedder, ModelLoadError, loaded_embedding_models
from podcast_core.text import Sentence, count_tokens, split_sentences

if TYPE_CHECKING:
    import numpy as np

SUMMARY_VERSION = "1"
"""Bump when the output changes for the same input and settings."""

BACKENDS = ("extractive", "transformers", "llm")
DEFAULT_MODELS = {
    "extractive": "sentence-transformers/all-MiniLM-L6-v2",
    "transformers": "facebook/bart-large-cnn",
}
MIN_CANDIDATE_WORDS = 4
SHORT_LEAD_WORDS = 8
MAX_INPUT_CAP = 1024
MAX_REDUCE_ROUNDS = 8
LLM_CHUNK_TOKENS = 6000
LLM_TIMEOUT = (10.0, 300.0)  # (connect, read) seconds: a local LLM on CPU can take minutes


class SummaryError(RuntimeError):
    """A summary could not be made; the message names the backend or model and the cause."""


@dataclass
class Summary:
    """A summary of one transcript and how it was made.

    Attributes:
        lead: One or two sentences.
        bullets: Key points, in document order for the extractive backend.
        paragraph: A short paragraph.
        backend: ``extractive``, ``transformers`` or ``llm``.
        model: The model that produced it.
        details: Provenance: timings (``load_seconds``, ``seconds``), chunk counts and, for the
            extractive backend, the selected sentences with their character offsets
            (``sentences``: ``[{"text", "char_start", "char_end", "score"}]``).
    """

    lead: str
    bullets: list[str]
    paragraph: str
    backend: str
    model: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable copy, with the summary version."""
        return {**dataclasses.asdict(self), "version": SUMMARY_VERSION}


@dataclass(frozen=True)
class SummarySettings:
    """How summaries are made.

    Attributes:
        backend: ``extractive``, ``transformers`` or ``llm``.
        model: Model id or local path; empty means the backend's default (the ``llm`` backend
            has none and requires one). The extractive model is an embedding model id as
            ``Embedder`` takes it, e.g. ``packaged:all-MiniLM-L6-v2`` (offline).
        max_bullets: Number of key points to aim for.
        llm_base_url: Base URL of an OpenAI-compatible API.
        llm_api_key: Bearer token for that API, if it needs one.
        chunk_tokens: Tokens per chunk for ``transformers`` (0 derives it from the model's
            maximum input, and a larger value is capped there) and ``llm`` (0 means
            ``LLM_CHUNK_TOKENS``).
        mmr_lambda: Extractive relevance/diversity trade-off; 1.0 ranks by centrality only.
    """

    backend: str = "extractive"
    model: str = ""
    max_bullets: int = 5
    llm_base_url: str = "http://127.0.0.1:11434/v1"
    llm_api_key: str = ""
    chunk_tokens: int = 0
    mmr_lambda: float = 0.7

    def resolved_model(self) -> str:
        """The configured model, or the backend's default when none is set."""
        return self.model or DEFAULT_MODELS.get(self.backend, "")

    def fingerprint(self) -> str:
        """A short stable string of the settings that change a summary's content."""
        # The endpoint and API key change where a summary is made, not what it says.
        parts = [self.backend, self.resolved_model(), f"bullets{self.max_bullets}"]
        if self.backend == "extractive":
            parts.append(f"mmr{self.mmr_lambda:g}")
        elif self.chunk_tokens:
            parts.append(f"chunk{self.chunk_tokens}")
        return "|".join(parts)


def summarize(text: str, settings: SummarySettings, *, embedder: Embedder | None = None) -> Summary:
    """Summarize a transcript with the configured backend.

    Args:
        text: The transcript.
        settings: Backend, model and knobs.
        embedder: For the extractive backend, an embedder to reuse instead of building one from
            ``settings.model``.

    Returns:
        The summary, with ``details["seconds"]`` the wall time of the whole call.

    Raises:
        SummaryError: The backend is unknown, its model cannot be loaded or answers badly, or
            the text is empty (an empty transcript has no summary; callers record that outcome).
    """
    if settings.backend not in BACKENDS:
        raise SummaryError(
            f"unknown summary backend {settings.backend!r}: use one of {', '.join(BACKENDS)}"
        )
    if settings.max_bullets < 1:
        raise SummaryError(f"{settings.backend} backend: max_bullets must be at least 1")
    if not text.strip():
        raise SummaryError(f"{settings.backend} backend: the transcript is empty")
    started = time.perf_counter()
    if settings.backend == "extractive":
        summary = _extractive(text, settings, embedder)
    elif settings.backend == "transformers":
        summary = _transformers(text, settings)
    else:
        summary = _llm(text, settings)
    summary.details["seconds"] = round(time.perf_counter() - started, 4)
    return summary


# --- extractive -----------------------------------------------------------------------------


def _extractive(text: str, settings: SummarySettings, embedder: Embedder | None) -> Summary:
    import numpy as np

    model = embedder.model_id if embedder is not None else settings.resolved_model()
    embedder = embedder or Embedder(model)
    sentences = split_sentences(text)
    models_before = loaded_embedding_models()
    try:
        vectors = embedder.encode([s.text for s in sentences])
    except ModelLoadError as exc:
        raise SummaryError(f"extractive backend: {exc}") from exc
    # A reused embedder keeps the load time of an earlier call; report it only if this call loaded.
    load_seconds = embedder.load_seconds if loaded_embedding_models() > models_before else 0.0

    # Short fillers ("Yeah, totally.") still shape the centroid but are never picked.
    candidates = [i for i, s in enumerate(sentences) if len(s.text.split()) >= MIN_CANDIDATE_WORDS]
    candidates = candidates or list(range(len(sentences)))
    centroid = vectors.mean(axis=0)
    centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
    centrality = vectors @ centroid
    picked = mmr_select(
        vectors[candidates], centrality[candidates], settings.max_bullets, settings.mmr_lambda
    )
    chosen = sorted(candidates[p] for p in picked)

    if len(sentences) <= 2:
        lead_start, lead_end = sentences[0].start, sentences[-1].end
    else:
        top = candidates[picked[0]]
        lead_start, lead_end = sentences[top].start, sentences[top].end
        if len(sentences[top].text.split()) < SHORT_LEAD_WORDS and top + 1 < len(sentences):
            lead_end = sentences[top + 1].end
    selected = [
        {
            "text": sentences[i].text,
            "char_start": sentences[i].start,
            "char_end": sentences[i].end,
            "score": round(float(centrality[i]), 4),
        }
        for i in chosen
    ]
    return Summary(
        lead=text[lead_start:lead_end],
        bullets=[sentences[i].text for i in chosen],
        paragraph=" ".join(sentences[i].text for i in chosen),
        backend="extractive",
        model=model,
        details={
            "load_seconds": round(load_seconds, 4),
            "sentence_count": len(sentences),
            "candidate_count": len(candidates),
            "mmr_lambda": settings.mmr_lambda,
            "lead": {"char_start": lead_start, "char_end": lead_end},
            "sentences": selected,
        },
    )


def mmr_select(vectors: np.ndarray, relevance: np.ndarray, k: int, lam: float) -> list[int]:
    """Select rows by maximal marginal relevance.

    Repeatedly takes the row that maximizes
    ``lam * relevance - (1 - lam) * max cosine similarity to the rows already taken``.

    Args:
        vectors: Unit-length rows.
        relevance: One score per row.
        k: How many rows to take (fewer when there are fewer rows).
        lam: 1.0 ranks by relevance alone; lower values favour diversity.

    Returns:
        Row indices in the order they were taken; the first is the most relevant row.
    """
    import numpy as np

    n = len(relevance)
    if n == 0:
        return []
    similarity = vectors @ vectors.T
    taken: list[int] = []
    redundancy = np.zeros(n, dtype=np.float64)
    available = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        scores = lam * relevance - (1.0 - lam) * redundancy
        scores[~available] = -np.inf
        best = int(np.argmax(scores))
        taken.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, similarity[best])
    return taken


# --- transformers ---------------------------------------------------------------------------

_SEQ2SEQ: dict[str, tuple[Any, Any, str]] = {}
_SEQ2SEQ_LOCK = threading.Lock()


def _load_seq2seq(model_id: str) -> tuple[Any, Any, str, float | None]:
    """(tokenizer, model, device, load seconds or None if cached), loaded once per process."""
    with _SEQ2SEQ_LOCK:
        if model_id in _SEQ2SEQ:
            return (*_SEQ2SEQ[model_id], None)
        started = time.perf_counter()
        looks_local = model_id.startswith(("/", "./", "../", "~")) or Path(model_id).exists()
        if looks_local and not Path(model_id).expanduser().is_dir():
            raise SummaryError(
                f"transformers backend: cannot load summarization model {model_id!r}: "
                "no such directory"
            )
        try:
            import torch
            from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

            path = str(Path(model_id).expanduser()) if looks_local else model_id
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForSeq2SeqLM.from_pretrained(path)
            device = "cuda" if torch.cuda.is_available() else "cpu"
            model.to(device).eval()
        except Exception as exc:
            raise SummaryError(
                f"transformers backend: cannot load summarization model {model_id!r}: {exc}"
            ) from exc
        _SEQ2SEQ[model_id] = (tokenizer, model, device)
        return tokenizer, model, device, time.perf_counter() - started


def loaded_summary_models() -> int:
    """How many seq2seq summarization models this process has loaded."""
    return len(_SEQ2SEQ)


def max_input_tokens(tokenizer: Any, model: Any) -> int:
    """The model's maximum input length in tokens.

    The smallest of the tokenizer's ``model_max_length`` (about 1e30 when a tokenizer sets no
    limit), the model's position embeddings and 1024.
    """
    limits = [MAX_INPUT_CAP, int(min(getattr(tokenizer, "model_max_length", MAX_INPUT_CAP), 1e9))]
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if positions:
        limits.append(int(positions))
    return min(limits)


def chunk_budget(tokenizer: Any, model: Any, chunk_tokens: int = 0) -> int:
    """Text tokens one chunk may hold.

    The maximum input minus special tokens and a margin, or ``chunk_tokens`` when it is set and
    smaller.
    """
    limit = max_input_tokens(tokenizer, model)
    budget = limit - tokenizer.num_special_tokens_to_add() - max(4, limit // 32)
    if budget < 8:
        raise SummaryError(f"transformers backend: model input of {limit} tokens is too small")
    return min(chunk_tokens, budget) if chunk_tokens > 0 else budget


def plan_chunks(text: str, count: Any, budget: int) -> list[dict[str, int]]:
    """Split ``text`` on sentence boundaries into chunks of at most ``budget`` tokens.

    A sentence longer than the budget is split between words. Chunks are consecutive character
    ranges, so every sentence lands in exactly one chunk and nothing is dropped.

    Args:
        text: The text to split.
        count: Token counter, ``count(str) -> int`` (the model's tokenizer, without special
            tokens).
        budget: Maximum tokens per chunk.

    Returns:
        ``[{"char_start", "char_end", "tokens", "sentences"}]`` in text order; ``tokens`` is
        ``count`` of the chunk's text.
    """
    units: list[Sentence] = []
    for sentence in split_sentences(text):
        units.extend(_fit_sentence(text, sentence, count, budget))
    chunks: list[dict[str, int]] = []
    i = 0
    while i < len(units):
        j, total = i + 1, count(units[i].text)
        # Greedy on per-sentence counts, then checked on the joined text: subword tokenizers
        # can count a sentence differently at a chunk's start than in the middle.
        while j < len(units):
            more = count(" " + units[j].text)
            if total + more > budget:
                break
            total += more
            j += 1
        while True:
            start, end = units[i].start, units[j - 1].end
            tokens = count(text[start:end])
            if tokens <= budget or j - i == 1:
                break
            j -= 1
        chunks.append({"char_start": start, "char_end": end, "tokens": tokens, "sentences": j - i})
        i = j
    return chunks


def _fit_sentence(text: str, sentence: Sentence, count: Any, budget: int) -> list[Sentence]:
    if count(sentence.text) <= budget:
        return [sentence]
    pieces: list[Sentence] = []
    words = [
        (sentence.start + m.start(), sentence.start + m.end())
        for m in re.finditer(r"\S+", sentence.text)
    ]
    first = 0
    while first < len(words):
        last = first
        while last + 1 < len(words) and count(text[words[first][0] : words[last + 1][1]]) <= budget:
            last += 1
        s, e = words[first][0], words[last][1]
        pieces.append(Sentence(text[s:e], s, e))
        first = last + 1
    return pieces


def _generate(
    texts: list[str], tokenizer: Any, model: Any, device: str, limit: int, budget: int
) -> list[str]:
    import torch

    config = model.generation_config
    # Each partial summary takes at most a third of a chunk, so every reduce round shrinks.
    max_new = min(max(int(config.max_length or 0), 64), max(8, budget // 3))
    kwargs: dict[str, Any] = {"max_new_tokens": max_new, "max_length": None}
    if (config.min_length or 0) >= max_new:
        kwargs["min_length"] = max_new // 2
    out: list[str] = []
    for i in range(0, len(texts), 4):
        batch = tokenizer(
            texts[i : i + 4], return_tensors="pt", padding=True, truncation=True, max_length=limit
        ).to(device)
        with torch.inference_mode():
            generated = model.generate(**batch, **kwargs)
        out.extend(t.strip() for t in tokenizer.batch_decode(generated, skip_special_tokens=True))
    return out


def _transformers(text: str, settings: SummarySettings) -> Summary:
    model_id = settings.resolved_model()
    tokenizer, model, device, load_seconds = _load_seq2seq(model_id)
    limit = max_input_tokens(tokenizer, model)
    budget = chunk_budget(tokenizer, model, settings.chunk_tokens)

    def count(s: str) -> int:
        return len(tokenizer(s, add_special_tokens=False)["input_ids"])

    rounds: list[dict[str, int]] = []
    first_chunks: list[dict[str, int]] = []
    partials: list[str] = []
    current = text
    try:
        while True:
            chunks = plan_chunks(current, count, budget)
            if not rounds:
                first_chunks = chunks
            elif len(chunks) >= rounds[-1]["chunks"] > 1:
                raise SummaryError(
                    f"transformers backend: model {model_id!r}: partial summaries stopped "
                    f"shrinking after {len(rounds)} rounds"
                )
            pieces = [current[c["char_start"] : c["char_end"]] for c in chunks]
            outputs = _generate(pieces, tokenizer, model, device, limit, budget)
            rounds.append({"chunks": len(chunks), "input_tokens": sum(c["tokens"] for c in chunks)})
            if len(outputs) == 1:
                final = outputs[0]
                break
            if len(rounds) >= MAX_REDUCE_ROUNDS:
                raise SummaryError(
                    f"transformers backend: model {model_id!r}: no single summary after "
                    f"{MAX_REDUCE_ROUNDS} reduce rounds"
                )
            partials = outputs
            current = " ".join(o for o in outputs if o)
    except SummaryError:
        raise
    except Exception as exc:
        raise SummaryError(f"transformers backend: model {model_id!r} failed: {exc}") from exc
    if not final:
        raise SummaryError(f"transformers backend: model {model_id!r} produced an empty summary")

    final_sentences = [s.text for s in split_sentences(final)]
    if partials:
        bullets = _spread_bullets(partials, settings.max_bullets)
    else:
        bullets = final_sentences[: settings.max_bullets]
    lead = " ".join(final_sentences[:2] if _words(final_sentences[0]) < 12 else final_sentences[:1])
    return Summary(
        lead=lead,
        bullets=bullets,
        paragraph=final,
        backend="transformers",
        model=model_id,
        details={
            "load_seconds": round(load_seconds or 0.0, 4),
            "model_cached": load_seconds is None,
            "device": device,
            "max_input_tokens": limit,
            "chunk_budget": budget,
            "chunk_count": len(first_chunks),
            "chunks": first_chunks,
            "rounds": rounds,
        },
    )


def _spread_bullets(partials: list[str], k: int) -> list[str]:
    # The first sentence of each partial (of k evenly spread ones if there are more), then the
    # second sentences and so on, back in document order.
    lists = [[s.text for s in split_sentences(p)] for p in partials if p.strip()]
    if len(lists) > k:
        lists = [lists[int(i * len(lists) / k)] for i in range(k)]
    picked: list[tuple[int, int, str]] = []
    depth = 0
    while len(picked) < k and any(depth < len(sents) for sents in lists):
        for part, sents in enumerate(lists):
            if depth < len(sents) and len(picked) < k:
                picked.append((part, depth, sents[depth]))
        depth += 1
    return _unique([sentence for _, _, sentence in sorted(picked)])


def _words(s: str) -> int:
    return len(s.split())


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- llm ------------------------------------------------------------------------------------

_SYSTEM = (
    "You summarize podcast transcripts. Answer with one JSON object and nothing else, with keys: "
    '"lead" (one or two sentences), "bullets" (a list of {n} short key points) and "paragraph" '
    "(a short paragraph). Use only facts stated in the text."
)
_MAP_PROMPT = "Summarize part {i} of {n} of a podcast episode transcript:\n\n{text}"
_FULL_PROMPT = "Summarize this podcast episode transcript:\n\n{text}"
_GROUP_PROMPT = (
    "These are summaries of consecutive parts of one podcast episode (group {i} of {n}). "
    "Combine them into one summary of this group:\n\n{text}"
)
_REDUCE_PROMPT = (
    "These are summaries of consecutive parts of one podcast episode. Combine them into one "
    "summary of the whole episode:\n\n{text}"
)


def _llm(text: str, settings: SummarySettings) -> Summary:
    import httpx

    model = settings.model
    if not model:
        raise SummaryError("llm backend: no model configured (set SummarySettings.model)")
    url = settings.llm_base_url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {settings.llm_api_key}"} if settings.llm_api_key else {}
    budget = settings.chunk_tokens or LLM_CHUNK_TOKENS
    system = _SYSTEM.format(n=f"{min(3, settings.max_bullets)}-{settings.max_bullets}")
    usage: dict[str, int] = {}
    requests = 0

    def ask(client: httpx.Client, prompt: str) -> dict[str, Any]:
        nonlocal requests
        requests += 1
        body = {
            "model": model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": prompt},
            ],
            "temperature": 0,
            "response_format": {"type": "json_object"},
        }
        try:
            response = client.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SummaryError(f"llm backend ({model}): request to {url} failed: {exc!r}") from exc
        if response.status_code >= 400:
            raise SummaryError(
                f"llm backend ({model}): {url} answered HTTP {response.status_code}: "
                f"{response.text[:200]}"
            )
        try:
            payload = response.json()
            content = payload["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise SummaryError(
                f"llm backend ({model}): {url} did not return a chat completion: {exc!r}"
            ) from exc
        for key, value in (payload.get("usage") or {}).items():
            if isinstance(value, int):
                usage[key] = usage.get(key, 0) + value
        return parse_llm_json(content, where=f"llm backend ({model}) at {url}")

    rounds: list[int] = []
    with httpx.Client(timeout=httpx.Timeout(LLM_TIMEOUT[1], connect=LLM_TIMEOUT[0])) as client:
        current = text
        while True:
            chunks = plan_chunks(current, count_tokens, budget)
            rounds.append(len(chunks))
            if len(chunks) == 1:
                final = _REDUCE_PROMPT if len(rounds) > 1 else _FULL_PROMPT
                result = ask(client, final.format(text=current))
                break
            if len(rounds) > 1 and len(chunks) >= rounds[-2]:
                raise SummaryError(
                    f"llm backend ({model}) at {url}: partial summaries stopped shrinking"
                )
            # The first round reads the transcript; later rounds merge groups of summaries.
            template = _MAP_PROMPT if len(rounds) == 1 else _GROUP_PROMPT
            parts = [
                ask(
                    client,
                    template.format(
                        i=k + 1, n=len(chunks), text=current[c["char_start"] : c["char_end"]]
                    ),
                )
                for k, c in enumerate(chunks)
            ]
            current = "\n\n".join(
                f"Part {k + 1}: {p['paragraph']}\n" + "\n".join(f"- {b}" for b in p["bullets"])
                for k, p in enumerate(parts)
            )
    return Summary(
        lead=result["lead"],
        bullets=result["bullets"][: settings.max_bullets],
        paragraph=result["paragraph"],
        backend="llm",
        model=model,
        details={
            "load_seconds": 0.0,
            "endpoint": url,
            "chunk_budget": budget,
            "chunk_count": rounds[0],
            "rounds": rounds,
            "requests": requests,
            "usage": usage,
        },
    )


_FENCE = re.compile(r"^\s*```[\w-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)
_BULLET_MARK = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def parse_llm_json(content: str, *, where: str = "llm backend") -> dict[str, Any]:
    """Parse an LLM's answer into ``{"lead": str, "bullets": list[str], "paragraph": str}``.

    Tolerates code fences, prose around the JSON object, bullets given as one string and bullet
    markers inside items; a missing lead or paragraph is filled from the other.

    Args:
        content: The message content.
        where: Names the backend and endpoint in errors.

    Raises:
        SummaryError: No JSON object, or one without any summary text.
    """
    fenced = _FENCE.match(content)
    raw = fenced.group(1) if fenced else content
    start, end = raw.find("{"), raw.rfind("}")
    try:
        data = json.loads(raw[start : end + 1]) if 0 <= start < end else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise SummaryError(f"{where}: answer is not a JSON object: {content[:200]!r}")
    bullets = data.get("bullets") or []
    if isinstance(bullets, str):
        bullets = bullets.splitlines()
    bullets = [_BULLET_MARK.sub("", str(b)).strip() for b in bullets if str(b).strip()]
    lead = str(data.get("lead") or "").strip()
    paragraph = str(data.get("paragraph") or "").strip()
    if not (lead or paragraph or bullets):
        raise SummaryError(f"{where}: answer has no lead, bullets or paragraph: {content[:200]!r}")
    if not lead:
        first = split_sentences(paragraph or " ".join(bullets))
        lead = " ".join(s.text for s in first[:2])
    return {"lead": lead, "bullets": bullets, "paragraph": paragraph or " ".join(bullets)}
