"""The notebooks in notebooks/ run headless (nbclient, a kernel on this interpreter) on the demo
corpus, render their plots and show what they are about; on an empty corpus they say so instead
of failing."""

import json
import re
import sys

import nbformat
import pytest
from conftest import DEMO_SITE, ROOT
from nbclient import NotebookClient

from podcast_assets.demo import DEMO_FEEDS, DEMO_PROFILE, serve_directory
from podcast_assets.runner import get_instance, ingest
from podcast_core.settings import load_settings, write_settings

NOTEBOOKS_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb"))
KERNEL = "podcast-notebooks-test"

# What each notebook must show on the demo corpus (regular expressions over its text outputs).
EXPECTED = {
    "corpus_overview.ipynb": [
        r"\bspeeches\b",
        r"\bvoices\b",
        r"2 feeds, 7 episodes",
        r"published:vtt",
        r"packaged:tiny\.en",
        r"Ask Not.*extractive",  # the summary leads table
    ],
    "people_and_topics.ipynb": [
        r"\bTopic\b",
        r"Demo Host.*HOSTS.*voices",  # the host, from the feed's podcast:person tag
        r"2026-11-02",  # the first week of mentions
    ],
    "entity_network.ipynb": [
        r"loaded .*_corpus/graph/graph\.graphml",
        r"[1-9]\d* connected entities, [1-9]\d* co-occurrence edges",
        r"cluster 1: \w",
        r"betweenness",
    ],
    "search_exploration.ipynb": [
        # A JFK paraphrase finds the speech in the speeches feed.
        r"'a president urging citizens to serve the nation'\n(?:  \d\. .*\n)*?"
        r"  \d\. speeches — .*ask what you can do for your country",
        r"'someone disappeared behind a drape'\n  1\. \w+ — .*behind the curtain",
        r"/audio/ask-not\.mp3#t=\d+",  # audio deep links of grounded quotes
        r"recommendation",
    ],
}


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    """The demo corpus, ingested once for this module into its own data directory."""
    root = tmp_path_factory.mktemp("demo")
    mp = pytest.MonkeyPatch()
    mp.setenv("PODCAST_DATA_DIR", str(root / "data"))
    mp.setenv("DAGSTER_HOME", str(root / "home"))
    (root / "home").mkdir()
    write_settings(root / "data", DEMO_PROFILE)
    settings = load_settings()
    try:
        with serve_directory(DEMO_SITE) as base, get_instance(settings) as instance:
            for name, path in DEMO_FEEDS.items():
                report = ingest(f"{base}/{path}", settings, instance, limit=10, name=name)
                assert all(e.status == "ok" for e in report.episodes), report
    finally:
        mp.undo()
    return root / "data"


@pytest.fixture(scope="module")
def jupyter_dir(tmp_path_factory):
    """A Jupyter data directory with a kernelspec that runs ipykernel on this very interpreter
    (the registered ``python3`` spec runs whatever ``python`` is on PATH)."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "podcast tests", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    return root


def execute(name, data_dir, jupyter_dir, monkeypatch):
    """Run notebook ``name`` top to bottom as Jupyter would (cwd notebooks/); raises
    ``CellExecutionError`` on the first failing cell."""
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_dir))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(jupyter_dir / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(jupyter_dir / "ipython"))
    monkeypatch.setenv("PODCAST_DATA_DIR", str(data_dir))
    monkeypatch.delenv("PODCAST_ARTIFACT_ROOT", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=300,
        startup_timeout=120,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    client.execute()
    return nb


def outputs(nb):
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]


def text_of(nb):
    """Everything the notebook printed or displayed as text."""
    parts = []
    for output in outputs(nb):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            for mime in ("text/plain", "text/html", "text/markdown"):
                if mime in output.data:
                    parts.append(output.data[mime])
    return "\n".join(parts)


def test_every_notebook_is_tested():
    assert set(NOTEBOOKS) == set(EXPECTED)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_clean(name):
    nb = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert nb.cells[0].cell_type == "markdown", "a notebook opens with what it shows"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "clear the outputs"
    setup = next(c for c in nb.cells if c.cell_type == "code").source
    assert "PODCAST_DATA_DIR" in setup and "connect(" in setup


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_on_the_demo_corpus(name, demo_data, jupyter_dir, monkeypatch):
    nb = execute(name, demo_data, jupyter_dir, monkeypatch)
    images = [o for o in outputs(nb) if "image/png" in o.get("data", {})]
    assert images, f"{name} rendered no plot"
    text = text_of(nb)
    assert "episodes:       7" in text
    for pattern in EXPECTED[name]:
        assert re.search(pattern, text, re.IGNORECASE), f"{name}: no match for {pattern!r}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_explains_an_empty_corpus(name, tmp_path, jupyter_dir, monkeypatch):
    nb = execute(name, tmp_path / "nothing-here", jupyter_dir, monkeypatch)
    text = text_of(nb)
    assert "The corpus is empty" in text
    assert not [o for o in outputs(nb) if "image/png" in o.get("data", {})]
