"""Grounded insights: candidate takeaways linked to verbatim, timestamped transcript quotes.

Each candidate insight (from a summary, an LLM or a person) is checked against the transcript:
retrieval finds the transcript windows most similar to it, a verifier scores how well each window
(or a quote the verifier picks from them) supports it, and every quote is resolved onto an exact
character span of the transcript before it is kept. An insight is *grounded* when at least one
quote supports it with a score of at least ``GroundingSettings.min_support``.

Verifiers, chosen by configuration and never silently swapped for another:

- ``embedding``: the cosine similarity of insight and window is the support score.
- ``nli``: a Hugging Face cross-encoder NLI model scores the retrieved windows;
  support = P(entailment) with the window as premise and the insight as hypothesis.
- ``llm``: an OpenAI-compatible chat endpoint is shown the retrieved windows and asked for
  verbatim supporting quotes with scores; quotes are then resolved onto exact spans (an LLM
  often re-spaces or re-punctuates what it quotes).

gi.json (``build_insights`` returns it; version ``GI_VERSION``)::

    {
      "key": str,                       # the transcript's key
      "version": "1",
      "insights": [{
        "id": "ins-1",                  # ins-1, ins-2, ... in candidate order
        "text": str,
        "insight_type": "claim" | "recommendation" | "observation" | "question",
        "position_hint": float | None,  # char_start of its best supporting quote / len(text);
                                        # else of the insight's own verbatim match; else None
        "grounded": bool,
        "support_score": float,         # best support score over all scored windows, 0..1
      }],
      "quotes": [{
        "id": "q-1",                    # q-1, q-2, ... in transcript order
        "text": str,                    # == transcript text[char_start:char_end]
        "char_start": int, "char_end": int,
        "timestamp_start_ms": int, "timestamp_end_ms": int,   # clamped to [0, duration]
        "speaker": str | None,          # speaker of the segment at char_start
        "transcript_ref": str,          # the transcript's key
        "method": "exact" | "normalized" | "sub-phrase",     # how the span was resolved
      }],
      "edges": [{"type": "SUPPORTED_BY", "source": "ins-1", "target": "q-1",
                 "confidence": float}],  # only quotes at or above min_support
      "stats": {
        "insights": int, "grounded": int, "grounded_rate": float,
        "quotes": int,
        "quotes_per_insight": float,    # edges per grounded insight (0.0 when none)
        "proposed_quotes": int,         # quotes the verifier proposed, before resolution
        "unresolved_quotes": int,       # proposed quotes with no transcript span (dropped)
        "verbatim_rate": float,         # proposed quotes found exactly as proposed
        "resolution": {"exact": int, "normalized": int, "sub-phrase": int},
        ...                             # llm only: "llm_requests", "llm_unparseable", ...
      },
      "provenance": {"verifier", "embedding_model", "nli_model" (nli), "llm_model" and
                     "llm_base_url" (llm), "settings" (fingerprint), "load_seconds",
                     "seconds"},
    }

torch, transformers and sentence-transformers are imported only when a verifier first needs them.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podcast_core.embed import Embedder, ModelLoadError
from podcast_core.text import Span, TimeMap, resolve_span, split_sentences

GI_VERSION = "1"
"""Bump when gi.json changes for the same input and settings."""

VERIFIERS = ("embedding", "nli", "llm")
INSIGHT_TYPES = ("claim", "recommendation", "observation", "question")
TIMESTAMP_TOLERANCE_MS = 500
NLI_BATCH = 16
LLM_TIMEOUT = (10.0, 300.0)  # (connect, read) seconds: a local LLM on CPU can take minutes
_METHOD_RANK = {"exact": 0, "normalized": 1, "sub-phrase": 2}


class GroundingError(RuntimeError):
    """Insights could not be grounded; the message names the verifier's model or endpoint."""


@dataclass(frozen=True)
class GroundingSettings:
    """How insights are grounded.

    Attributes:
        verifier: ``embedding``, ``nli`` or ``llm``.
        nli_model: Hugging Face id or local directory of a sequence-classification NLI model
            whose ``id2label`` names an entailment label.
        llm_base_url: Base URL of an OpenAI-compatible API.
        llm_model: Chat model for the ``llm`` verifier (required there).
        llm_api_key: Bearer token for that API, if it needs one.
        top_k: Transcript windows retrieved per insight.
        window_sentences: Windows are runs of 1..N consecutive sentences of one speaker.
        min_support: Support score at or above which a quote supports an insight. 0.6 because
            with MiniLM, sentences merely on the same topic score 0.55-0.58 (measured in tests).
        max_quotes: Supporting quotes kept per insight.
    """

    verifier: str = "embedding"
    nli_model: str = "cross-encoder/nli-deberta-v3-small"
    llm_base_url: str = "http://127.0.0.1:11434/v1"
    llm_model: str = ""
    llm_api_key: str = ""
    top_k: int = 3
    window_sentences: int = 2
    min_support: float = 0.6
    max_quotes: int = 2

    def fingerprint(self) -> str:
        """A short stable string of the settings that change gi.json's content.

        The embedding model is not part of these settings (callers pass an ``Embedder``), so
        callers add ``embedder.model_id`` to their own input fingerprint.
        """
        # The endpoint and API key change where insights are verified, not the answer.
        parts = [self.verifier]
        if self.verifier == "nli":
            parts.append(self.nli_model)
        elif self.verifier == "llm":
            parts.append(self.llm_model)
        parts += [
            f"k{self.top_k}",
            f"w{self.window_sentences}",
            f"min{self.min_support:g}",
            f"q{self.max_quotes}",
        ]
        return "|".join(parts)


# --- classification -------------------------------------------------------------------------

_QUESTION_START = re.compile(
    r"^(?:whether|open question|it remains unclear|it is unclear|it's unclear|nobody knows|"
    r"no one knows|unclear whether)\b",
    re.IGNORECASE,
)
_IMPERATIVE = {
    "avoid", "always", "ask", "be", "build", "buy", "check", "choose", "consider", "don't",
    "do", "focus", "get", "give", "invest", "keep", "learn", "let", "limit", "listen", "make",
    "never", "plan", "prefer", "prioritize", "read", "remember", "schedule", "skip", "start",
    "stop", "take", "talk", "track", "try", "use", "wait", "watch", "write",
}  # fmt: skip
_ADVICE = re.compile(
    r"\b(?:should|shouldn't|ought to|recommends?|recommended|suggests?|advises?|make sure|"
    r"you need to|you must|you have to|it's (?:best|better|worth|wise) to|"
    r"it is (?:best|better|worth|wise) to|the key is to|worth (?:trying|considering|doing))\b",
    re.IGNORECASE,
)
_OBSERVATION = re.compile(
    r"\b(?:(?:i|we|they|he|she)(?:'ve| have)? (?:noticed|saw|see|observed|found|watched|"
    r"experienced|realized|learned|heard)|seems?|seemed|appears?|appeared|looks like|"
    r"feels like|in (?:my|our) experience|anecdotally|interestingly|lately|these days|"
    r"more and more|increasingly)\b",
    re.IGNORECASE,
)


def classify_insight(text: str) -> str:
    """Classify an insight by surface cues, first match wins.

    1. ``question``: ends with ``?``, or opens with an open-question phrase ("It remains
       unclear", "Whether ...", "Nobody knows").
    2. ``recommendation``: opens with an imperative verb ("Use", "Avoid", "Don't", "Try"), or
       uses advice wording ("should", "recommend", "make sure", "you need to", "it's best to").
    3. ``observation``: reports experience or appearance ("we noticed", "I've seen", "seems",
       "appears", "in my experience", "lately", "increasingly").
    4. ``claim``: anything else: an assertion of fact, cause, number or evaluation.

    Args:
        text: The insight.

    Returns:
        One of ``INSIGHT_TYPES``.
    """
    stripped = text.strip().replace("\u2019", "'")
    if stripped.endswith("?") or _QUESTION_START.match(stripped):
        return "question"
    first = stripped.split(maxsplit=1)[0].lower().strip(",:;") if stripped else ""
    if first in _IMPERATIVE or _ADVICE.search(stripped):
        return "recommendation"
    if _OBSERVATION.search(stripped):
        return "observation"
    return "claim"


# --- building -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A retrieval window: ``text == transcript[start:end]``."""

    start: int
    end: int
    text: str


@dataclass
class _Proposal:
    """A quote a verifier proposed for one insight, before span resolution."""

    text: str
    score: float


def build_insights(
    transcript: dict[str, Any],
    candidates: Sequence[str],
    embedder: Embedder,
    settings: GroundingSettings,
) -> dict[str, Any]:
    """Ground candidate insights in a transcript.

    Args:
        transcript: A transcript doc with ``key``, ``text``, ``segments`` and, when known,
            ``duration_seconds``.
        candidates: Insight texts; blank ones are skipped.
        embedder: Embeds windows and insights for retrieval (for every verifier).
        settings: Verifier and knobs.

    Returns:
        gi.json as described in the module docstring.

    Raises:
        GroundingError: Unknown verifier or bad settings, a model that cannot be loaded or
            fails, or an LLM endpoint that cannot be reached or answers with errors.
    """
    started = time.perf_counter()
    _validate(settings)
    nli_load_seconds = 0.0
    if settings.verifier == "nli":
        # Load first, so a bad model fails before any embedding work.
        nli_load_seconds = _load_nli(settings.nli_model)[-1]
    key = str(transcript.get("key") or "")
    text = transcript.get("text") or ""
    duration = transcript.get("duration_seconds")
    insights_text = [c.strip() for c in candidates if c and c.strip()]

    windows = retrieval_windows(text, transcript.get("segments") or [], settings.window_sentences)
    # A candidate that occurs (nearly) verbatim is its own best evidence: make it a window too.
    own: list[Span | None] = []
    for candidate in insights_text:
        span = resolve_span(candidate, text) if text else None
        own.append(span if span is not None and span.method != "sub-phrase" else None)
    known = {(w.start, w.end) for w in windows}
    for span in own:
        if span is not None and (span.start, span.end) not in known:
            known.add((span.start, span.end))
            windows.append(Window(span.start, span.end, span.text))

    retrieved = _retrieve(windows, insights_text, embedder, settings.top_k)
    provenance: dict[str, Any] = {
        "verifier": settings.verifier,
        "embedding_model": embedder.model_id,
        "settings": settings.fingerprint(),
    }
    extra_stats: dict[str, Any] = {}
    if settings.verifier == "embedding":
        proposals = [
            [_Proposal(windows[i].text, max(s, 0.0)) for i, s in hits] for hits in retrieved
        ]
        provenance["load_seconds"] = round(embedder.load_seconds, 4)
    elif settings.verifier == "nli":
        proposals = _nli_proposals(windows, insights_text, retrieved, settings)
        provenance.update(
            nli_model=settings.nli_model,
            load_seconds=round(nli_load_seconds, 4),
            model_cached=nli_load_seconds == 0.0,
        )
    else:
        proposals, extra_stats = _llm_proposals(windows, insights_text, retrieved, settings)
        provenance.update(llm_model=settings.llm_model, llm_base_url=settings.llm_base_url)

    gi = _assemble(
        key, text, transcript, duration, insights_text, own, windows, proposals, settings
    )
    gi["stats"].update(extra_stats)
    provenance["seconds"] = round(time.perf_counter() - started, 4)
    gi["provenance"] = provenance
    return gi


def _validate(settings: GroundingSettings) -> None:
    if settings.verifier not in VERIFIERS:
        raise GroundingError(
            f"unknown insight verifier {settings.verifier!r}: use one of {', '.join(VERIFIERS)}"
        )
    if settings.top_k < 1 or settings.window_sentences < 1 or settings.max_quotes < 1:
        raise GroundingError(
            f"{settings.verifier} verifier: top_k, window_sentences and max_quotes must be >= 1"
        )
    if settings.verifier == "llm" and not settings.llm_model:
        raise GroundingError(
            f"llm verifier at {settings.llm_base_url}: no model configured "
            "(set GroundingSettings.llm_model)"
        )


def retrieval_windows(text: str, segments: Sequence[dict[str, Any]], size: int) -> list[Window]:
    """Runs of 1..``size`` consecutive sentences, never across a change of speaker.

    Args:
        text: The transcript text.
        segments: Its segments (for speakers); a quote is attributed to one speaker, so a
            window never mixes two.
        size: Most sentences per window.

    Returns:
        Windows in transcript order, shorter first at each starting sentence.
    """
    sentences = split_sentences(text)
    timemap = TimeMap(text, segments)
    speakers = [timemap.speaker_at(s.start) for s in sentences]
    windows: list[Window] = []
    for i, first in enumerate(sentences):
        for n in range(1, size + 1):
            last = i + n - 1
            if last >= len(sentences) or speakers[last] != speakers[i]:
                break
            end = sentences[last].end
            windows.append(Window(first.start, end, text[first.start : end]))
    return windows


def _retrieve(
    windows: list[Window], insights: list[str], embedder: Embedder, top_k: int
) -> list[list[tuple[int, float]]]:
    """For each insight, the top_k windows as (window index, cosine), best first."""
    import numpy as np

    if not windows or not insights:
        return [[] for _ in insights]
    try:
        # One encode call: windows are embedded once per build, together with the insights.
        vectors = embedder.encode([w.text for w in windows] + insights)
    except ModelLoadError as exc:
        raise GroundingError(f"retrieval: {exc}") from exc
    window_vectors, insight_vectors = vectors[: len(windows)], vectors[len(windows) :]
    similarity = insight_vectors @ window_vectors.T
    out: list[list[tuple[int, float]]] = []
    for row in similarity:
        # Stable sort, so ties keep transcript order.
        order = np.argsort(-row, kind="stable")[:top_k]
        out.append([(int(i), float(row[i])) for i in order])
    return out


def _assemble(
    key: str,
    text: str,
    transcript: dict[str, Any],
    duration: float | None,
    insights_text: list[str],
    own: list[Span | None],
    windows: list[Window],
    proposals: list[list[_Proposal]],
    settings: GroundingSettings,
) -> dict[str, Any]:
    timemap = TimeMap(text, transcript.get("segments") or [])
    resolution = {"exact": 0, "normalized": 0, "sub-phrase": 0}
    proposed = unresolved = 0
    spans: dict[tuple[int, int], Span] = {}
    per_insight: list[list[tuple[Span, float]]] = []
    support_scores: list[float] = []
    for found in proposals:
        scored: list[tuple[Span, float]] = []
        for proposal in found:
            proposed += 1
            span = _resolve(proposal.text, text, windows)
            if span is None:
                unresolved += 1
                continue
            resolution[span.method] += 1
            scored.append((span, proposal.score))
        support_scores.append(max((s for _, s in scored), default=0.0))
        scored.sort(key=lambda item: -item[1])
        chosen: list[tuple[Span, float]] = []
        for span, score in scored:
            if score < settings.min_support or len(chosen) >= settings.max_quotes:
                continue
            # Overlapping windows (a sentence and the pair containing it) are one piece of
            # evidence: keep the best-scoring one only.
            if any(span.start < c.end and c.start < span.end for c, _ in chosen):
                continue
            chosen.append((span, score))
            spans.setdefault((span.start, span.end), span)
        per_insight.append(chosen)

    # Quote ids in transcript order; an identical span supporting two insights is one quote.
    quote_ids: dict[tuple[int, int], str] = {}
    quotes: list[dict[str, Any]] = []
    limit_ms = round(float(duration) * 1000) if duration else None
    for n, (start, end) in enumerate(sorted(spans), start=1):
        span = spans[(start, end)]
        quote_ids[(start, end)] = f"q-{n}"
        t0, t1 = timemap.span_times(start, end)
        ms0, ms1 = _clamp_ms(t0, limit_ms), _clamp_ms(t1, limit_ms)
        quotes.append(
            {
                "id": f"q-{n}",
                "text": span.text,
                "char_start": start,
                "char_end": end,
                "timestamp_start_ms": ms0,
                "timestamp_end_ms": max(ms0, ms1),
                "speaker": timemap.speaker_at(start),
                "transcript_ref": key,
                "method": span.method,
            }
        )

    insights: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for n, (insight, chosen) in enumerate(zip(insights_text, per_insight, strict=True), start=1):
        insight_id = f"ins-{n}"
        if chosen:
            position: float | None = chosen[0][0].start / max(len(text), 1)
        elif own[n - 1] is not None:
            position = own[n - 1].start / max(len(text), 1)  # type: ignore[union-attr]
        else:
            position = None
        insights.append(
            {
                "id": insight_id,
                "text": insight,
                "insight_type": classify_insight(insight),
                "position_hint": None if position is None else round(position, 4),
                "grounded": bool(chosen),
                "support_score": round(min(support_scores[n - 1], 1.0), 4),
            }
        )
        for span, score in chosen:
            edges.append(
                {
                    "type": "SUPPORTED_BY",
                    "source": insight_id,
                    "target": quote_ids[(span.start, span.end)],
                    "confidence": round(min(score, 1.0), 4),
                }
            )

    grounded = sum(1 for i in insights if i["grounded"])
    exact = resolution["exact"]
    return {
        "key": key,
        "version": GI_VERSION,
        "insights": insights,
        "quotes": quotes,
        "edges": edges,
        "stats": {
            "insights": len(insights),
            "grounded": grounded,
            "grounded_rate": round(grounded / len(insights), 4) if insights else 0.0,
            "quotes": len(quotes),
            "quotes_per_insight": round(len(edges) / grounded, 4) if grounded else 0.0,
            "proposed_quotes": proposed,
            "unresolved_quotes": unresolved,
            "verbatim_rate": round(exact / proposed, 4) if proposed else 0.0,
            "resolution": resolution,
        },
    }


def _resolve(quote: str, text: str, windows: list[Window]) -> Span | None:
    """Resolve a quote onto the transcript, preferring a match inside a retrieved window.

    A short sub-phrase can occur in several places; the windows the verifier was shown are
    where it came from.
    """
    direct = resolve_span(quote, text)
    if direct is None or direct.method == "exact":
        return direct
    best = direct
    for window in windows:
        local = resolve_span(quote, window.text)
        if local is None:
            continue
        span = Span(window.start + local.start, window.start + local.end, local.text, local.method)
        better = (_METHOD_RANK[span.method], -(span.end - span.start)) < (
            _METHOD_RANK[best.method],
            -(best.end - best.start),
        )
        if better:
            best = span
    return best


def _clamp_ms(seconds: float, limit_ms: int | None) -> int:
    ms = max(round(seconds * 1000), 0)
    return min(ms, limit_ms) if limit_ms is not None else ms


# --- nli ------------------------------------------------------------------------------------

_NLI: dict[str, tuple[Any, Any, int, str]] = {}
_NLI_LOCK = threading.Lock()


def _load_nli(model_id: str) -> tuple[Any, Any, int, str, float]:
    """(tokenizer, model, entailment index, device, load seconds), loaded once per process."""
    with _NLI_LOCK:
        if model_id in _NLI:
            return (*_NLI[model_id], 0.0)
        started = time.perf_counter()
        looks_local = model_id.startswith(("/", "./", "../", "~")) or Path(model_id).exists()
        if looks_local and not Path(model_id).expanduser().is_dir():
            raise GroundingError(
                f"nli verifier: cannot load NLI model {model_id!r}: no such directory"
            )
        try:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            path = str(Path(model_id).expanduser()) if looks_local else model_id
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForSequenceClassification.from_pretrained(path)
            device = "cuda" if torch.cuda.is_available() else "cpu"
            model.to(device).eval()
        except Exception as exc:
            raise GroundingError(
                f"nli verifier: cannot load NLI model {model_id!r}: {exc}"
            ) from exc
        labels = {int(i): str(label).lower() for i, label in model.config.id2label.items()}
        entailment = [i for i, label in labels.items() if label.startswith("entail")]
        if len(entailment) != 1:
            raise GroundingError(
                f"nli verifier: model {model_id!r} has no single entailment label in "
                f"id2label {labels}"
            )
        _NLI[model_id] = (tokenizer, model, entailment[0], device)
        return tokenizer, model, entailment[0], device, time.perf_counter() - started


def loaded_nli_models() -> int:
    """How many NLI models this process has loaded."""
    return len(_NLI)


def nli_entailment(pairs: Sequence[tuple[str, str]], model_id: str) -> tuple[list[float], float]:
    """P(entailment) for (premise, hypothesis) pairs.

    Args:
        pairs: (premise, hypothesis) texts.
        model_id: Hugging Face id or local directory of a sequence-classification NLI model.

    Returns:
        One probability per pair, and the model's load seconds (0.0 when it was cached).

    Raises:
        GroundingError: The model cannot be loaded, has no entailment label, or fails.
    """
    import torch

    tokenizer, model, entail, device, load_seconds = _load_nli(model_id)
    limit = int(min(getattr(tokenizer, "model_max_length", 512), 512))
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions:
        limit = min(limit, int(positions))
    out: list[float] = []
    try:
        for i in range(0, len(pairs), NLI_BATCH):
            batch = pairs[i : i + NLI_BATCH]
            encoded = tokenizer(
                [p for p, _ in batch],
                [h for _, h in batch],
                truncation="only_first",  # keep the whole hypothesis, cut the window
                max_length=limit,
                padding=True,
                return_tensors="pt",
            ).to(device)
            with torch.inference_mode():
                logits = model(**encoded).logits
            out.extend(float(p) for p in logits.float().softmax(dim=-1)[:, entail].cpu())
    except Exception as exc:
        raise GroundingError(f"nli verifier: model {model_id!r} failed: {exc}") from exc
    return out, load_seconds


def _nli_proposals(
    windows: list[Window],
    insights: list[str],
    retrieved: list[list[tuple[int, float]]],
    settings: GroundingSettings,
) -> list[list[_Proposal]]:
    pairs = [(windows[i].text, insight) for insight, hits in zip(insights, retrieved, strict=True)
             for i, _ in hits]  # fmt: skip
    if not pairs:
        return [[] for _ in insights]
    probabilities, _ = nli_entailment(pairs, settings.nli_model)
    proposals: list[list[_Proposal]] = []
    k = 0
    for hits in retrieved:
        row = []
        for i, _ in hits:
            row.append(_Proposal(windows[i].text, probabilities[k]))
            k += 1
        proposals.append(row)
    return proposals


# --- llm ------------------------------------------------------------------------------------

_LLM_SYSTEM = (
    "You check whether a podcast transcript supports an insight. You get the insight and "
    "numbered transcript passages. Answer with one JSON object and nothing else: "
    '{"quotes": [{"quote": "...", "score": 0.0}]}. Each quote must be copied verbatim from '
    "one passage (a sentence or a phrase, not a paraphrase); score is 0.0-1.0, how strongly "
    "that quote on its own supports the insight. Give at most {max_quotes} quotes, best first. "
    'If no passage supports the insight, answer {"quotes": []}.'
)
_LLM_USER = "Insight: {insight}\n\nPassages:\n{passages}"


def _llm_proposals(
    windows: list[Window],
    insights: list[str],
    retrieved: list[list[tuple[int, float]]],
    settings: GroundingSettings,
) -> tuple[list[list[_Proposal]], dict[str, Any]]:
    import httpx

    model, url = settings.llm_model, settings.llm_base_url.rstrip("/") + "/chat/completions"
    where = f"llm verifier ({model}) at {url}"
    headers = {"Authorization": f"Bearer {settings.llm_api_key}"} if settings.llm_api_key else {}
    system = _LLM_SYSTEM.replace("{max_quotes}", str(settings.max_quotes))
    stats = {"llm_requests": 0, "llm_unparseable": 0, "llm_unscored_quotes": 0}
    proposals: list[list[_Proposal]] = []
    timeout = httpx.Timeout(LLM_TIMEOUT[1], connect=LLM_TIMEOUT[0])
    with httpx.Client(timeout=timeout) as client:
        for insight, hits in zip(insights, retrieved, strict=True):
            if not hits:
                proposals.append([])
                continue
            passages = "\n".join(f"[{n}] {windows[i].text}" for n, (i, _) in enumerate(hits, 1))
            body = {
                "model": model,
                "messages": [
                    {"role": "system", "content": system},
                    {
                        "role": "user",
                        "content": _LLM_USER.format(insight=insight, passages=passages),
                    },
                ],
                "temperature": 0,
                "response_format": {"type": "json_object"},
            }
            stats["llm_requests"] += 1
            try:
                response = client.post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                raise GroundingError(f"{where}: request failed: {exc!r}") from exc
            if response.status_code >= 400:
                raise GroundingError(f"{where}: HTTP {response.status_code}: {response.text[:200]}")
            try:
                content = response.json()["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise GroundingError(f"{where}: not a chat completion: {exc!r}") from exc
            quotes = parse_llm_quotes(content)
            if quotes is None:
                # One garbled answer leaves that insight ungrounded; counted, not hidden.
                stats["llm_unparseable"] += 1
                proposals.append([])
                continue
            row = []
            for quote, score in quotes[: settings.max_quotes]:
                if score is None:
                    stats["llm_unscored_quotes"] += 1
                row.append(_Proposal(quote, score or 0.0))
            proposals.append(row)
    if stats["llm_requests"] and stats["llm_unparseable"] == stats["llm_requests"]:
        raise GroundingError(f"{where}: no answer was a JSON object with quotes")
    return proposals, stats


_FENCE = re.compile(r"^\s*```[\w-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


def parse_llm_quotes(content: str) -> list[tuple[str, float | None]] | None:
    """Parse an LLM verifier answer into (quote, score) pairs.

    Accepts ``{"quotes": [{"quote", "score"}]}``, a single ``{"quote", "score"}`` object or a
    bare list of such objects, inside code fences or prose. Scores are clamped to [0, 1];
    a missing or non-numeric score is None.

    Args:
        content: The message content.

    Returns:
        The pairs (possibly empty), or None when the answer holds no such JSON.
    """
    fenced = _FENCE.match(content)
    raw = fenced.group(1) if fenced else content
    data: Any = None
    for open_, close in (("{", "}"), ("[", "]")):
        start, end = raw.find(open_), raw.rfind(close)
        if 0 <= start < end:
            try:
                data = json.loads(raw[start : end + 1])
                break
            except json.JSONDecodeError:
                continue
    if isinstance(data, dict):
        data = data.get("quotes", [data] if "quote" in data else None)
    if not isinstance(data, list):
        return None
    out: list[tuple[str, float | None]] = []
    for item in data:
        if isinstance(item, str):
            item = {"quote": item}
        if not isinstance(item, dict):
            continue
        quote = str(item.get("quote") or item.get("text") or "").strip()
        if not quote:
            continue
        raw_score = item.get("score", item.get("confidence"))
        try:
            score: float | None = min(max(float(raw_score), 0.0), 1.0)
        except (TypeError, ValueError):
            score = None
        out.append((quote, score))
    return out


# --- checking -------------------------------------------------------------------------------


def check_insights(
    gi: dict[str, Any], transcript_text: str, duration_seconds: float | None
) -> list[str]:
    """Validate gi.json against its transcript.

    Checks: ids are unique; every quote is verbatim (``transcript_text[char_start:char_end] ==
    text``) and refers to the transcript's key; ``0 <= start_ms <= end_ms <= duration * 1000``
    (plus ``TIMESTAMP_TOLERANCE_MS``); every grounded insight has a SUPPORTED_BY edge and no
    ungrounded one has any; every edge joins an existing insight to an existing quote with a
    confidence in [0, 1]; every quote supports some insight; types and position hints are
    valid; the stats match.

    Args:
        gi: gi.json.
        transcript_text: The transcript's ``text``.
        duration_seconds: The audio's duration, when known.

    Returns:
        Problems, each naming the insight, quote or edge; empty when gi.json is valid.
    """
    problems: list[str] = []
    insights = gi.get("insights") or []
    quotes = gi.get("quotes") or []
    edges = gi.get("edges") or []
    insight_ids: set[str] = set()
    for insight in insights:
        iid = insight.get("id")
        if iid in insight_ids:
            problems.append(f"insight {iid}: duplicate id")
        insight_ids.add(iid)
        if insight.get("insight_type") not in INSIGHT_TYPES:
            problems.append(f"insight {iid}: unknown insight_type {insight.get('insight_type')!r}")
        hint = insight.get("position_hint")
        if hint is not None and not 0.0 <= hint <= 1.0:
            problems.append(f"insight {iid}: position_hint {hint} outside [0, 1]")
    quote_ids: set[str] = set()
    limit_ms = (
        None if duration_seconds is None else duration_seconds * 1000 + TIMESTAMP_TOLERANCE_MS
    )
    for quote in quotes:
        qid = quote.get("id")
        if qid in quote_ids or qid in insight_ids:
            problems.append(f"quote {qid}: duplicate id")
        quote_ids.add(qid)
        start, end = quote.get("char_start"), quote.get("char_end")
        if not (isinstance(start, int) and isinstance(end, int)):
            problems.append(f"quote {qid}: char_start/char_end are not integers")
        elif not 0 <= start < end <= len(transcript_text):
            problems.append(
                f"quote {qid}: span [{start}, {end}) outside the transcript "
                f"({len(transcript_text)} chars)"
            )
        elif transcript_text[start:end] != quote.get("text"):
            problems.append(
                f"quote {qid}: text is not verbatim: transcript[{start}:{end}] is "
                f"{transcript_text[start:end][:60]!r}, quote is {str(quote.get('text'))[:60]!r}"
            )
        ms0, ms1 = quote.get("timestamp_start_ms"), quote.get("timestamp_end_ms")
        if not (isinstance(ms0, int) and isinstance(ms1, int)):
            problems.append(f"quote {qid}: timestamps are not integer milliseconds")
        elif not 0 <= ms0 <= ms1:
            problems.append(f"quote {qid}: timestamps {ms0}..{ms1} ms are not ordered from 0")
        elif limit_ms is not None and ms1 > limit_ms:
            problems.append(
                f"quote {qid}: timestamp_end_ms {ms1} is past the duration ({duration_seconds:g} s)"
            )
        if gi.get("key") is not None and quote.get("transcript_ref") != gi.get("key"):
            problems.append(
                f"quote {qid}: transcript_ref {quote.get('transcript_ref')!r} is not the key "
                f"{gi.get('key')!r}"
            )
    supported: dict[str, int] = {}
    cited: set[str] = set()
    for n, edge in enumerate(edges):
        source, target = edge.get("source"), edge.get("target")
        name = f"edge {n} ({source} -> {target})"
        if edge.get("type") != "SUPPORTED_BY":
            problems.append(f"{name}: type {edge.get('type')!r} is not SUPPORTED_BY")
        if source not in insight_ids:
            problems.append(f"{name}: source insight {source} does not exist")
        if target not in quote_ids:
            problems.append(f"{name}: target quote {target} does not exist")
        confidence = edge.get("confidence")
        if not isinstance(confidence, int | float) or not 0.0 <= confidence <= 1.0:
            problems.append(f"{name}: confidence {confidence!r} outside [0, 1]")
        supported[source] = supported.get(source, 0) + 1
        cited.add(target)
    for insight in insights:
        iid = insight.get("id")
        if insight.get("grounded") and not supported.get(iid):
            problems.append(f"insight {iid}: grounded but has no SUPPORTED_BY edge")
        if not insight.get("grounded") and supported.get(iid):
            problems.append(f"insight {iid}: not grounded but has SUPPORTED_BY edges")
    for qid in sorted(quote_ids - cited, key=str):
        problems.append(f"quote {qid}: supports no insight")
    stats = gi.get("stats") or {}
    grounded = sum(1 for i in insights if i.get("grounded"))
    for field, actual in (
        ("insights", len(insights)),
        ("grounded", grounded),
        ("quotes", len(quotes)),
    ):
        if field in stats and stats[field] != actual:
            problems.append(f"stats: {field} is {stats[field]}, but gi.json has {actual}")
    return problems
