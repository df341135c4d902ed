"""Configuration: built-in defaults, then ``{data_dir}/settings.json``, then environment variables.

``PODCAST_DATA_DIR`` (default ``./data``) holds the feed catalog, the artifacts and, unless
``DAGSTER_HOME`` is set, the Dagster instance. ``settings.json`` lets a data directory carry its
own profile (the demo writes one that selects the packaged offline Whisper model), so
``dagster dev`` and ``podcast`` agree on it without extra environment.

``PODCAST_ARTIFACT_ROOT`` may be ``s3://bucket/prefix`` (``PODCAST_S3_ENDPOINT_URL`` for MinIO or
R2, ``PODCAST_S3_REGION``); S3 credentials are never settings: they come only from the standard
AWS environment variables or credential chain.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SETTINGS_FILE = "settings.json"


@dataclass(frozen=True)
class WhisperSettings:
    """How faster-whisper runs. ``device``/``compute_type`` ``auto`` pick CUDA fp16 or CPU int8."""

    model: str = "base"
    device: str = "auto"
    compute_type: str = "auto"
    cpu_threads: int = 0
    beam_size: int = 1
    batch_size: int = 1
    vad_filter: bool = True
    word_timestamps: bool = True

    def fingerprint(self) -> str:
        """A short stable string of the settings that change a transcript's content."""
        # Threads and device change speed, not output, so they don't make transcripts stale.
        return (
            f"{self.model}|{self.compute_type}|beam{self.beam_size}|batch{self.batch_size}"
            f"|vad{int(self.vad_filter)}|words{int(self.word_timestamps)}"
        )


@dataclass(frozen=True)
class EnrichmentSettings:
    """Models and backends of the enrichment stages (summary, insights, graph, embeddings).

    Empty model names mean the backend's default (see ``podcast_core.summarize`` and
    ``podcast_core.graph``). A configured backend is always used as configured: a model that
    cannot load is an error, never a silent switch to another backend.
    """

    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    summary_backend: str = "transformers"
    summary_model: str = ""
    ner_backend: str = "transformers"
    ner_model: str = ""
    verifier: str = "embedding"
    nli_model: str = "cross-encoder/nli-deberta-v3-small"
    llm_base_url: str = "http://127.0.0.1:11434/v1"
    llm_model: str = ""
    chunk_tokens: int = 300
    chunk_overlap: int = 50


@dataclass(frozen=True)
class Settings:
    """Every knob of the platform, resolved once per process."""

    data_dir: Path
    artifact_root: str
    whisper: WhisperSettings = WhisperSettings()
    enrichment: EnrichmentSettings = EnrichmentSettings()
    initial_episodes: int = 3
    max_runs_per_tick: int = 50
    feed_timeout_seconds: float = 15.0
    feed_concurrency: int = 16
    max_audio_bytes: int = 1024**3
    download_timeout_seconds: float = 900.0
    user_agent: str = "podcast-intelligence/0.1"
    public_url: str = ""
    digest_budget_minutes: float = 60.0
    tts_backend: str = "espeak"
    tts_voice: str = "en-us"
    tts_command: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""

    @property
    def cache_dir(self) -> Path:
        """Local caches: scratch files and the corpus mirror of an S3 artifact root."""
        return self.data_dir / "cache"

    @property
    def catalog_path(self) -> Path:
        """The feed catalog file."""
        return self.data_dir / "catalog.json"

    @property
    def dagster_home(self) -> Path:
        """``DAGSTER_HOME`` if set, else an instance directory inside the data directory."""
        home = os.environ.get("DAGSTER_HOME")
        return Path(home).resolve() if home else self.data_dir / "dagster_home"


_ENV_FIELDS: dict[str, tuple[str, type]] = {
    "PODCAST_ARTIFACT_ROOT": ("artifact_root", str),
    "PODCAST_INITIAL_EPISODES": ("initial_episodes", int),
    "PODCAST_MAX_RUNS_PER_TICK": ("max_runs_per_tick", int),
    "PODCAST_FEED_TIMEOUT_SECONDS": ("feed_timeout_seconds", float),
    "PODCAST_MAX_AUDIO_BYTES": ("max_audio_bytes", int),
    "PODCAST_DOWNLOAD_TIMEOUT_SECONDS": ("download_timeout_seconds", float),
    "PODCAST_PUBLIC_URL": ("public_url", str),
    "PODCAST_DIGEST_BUDGET_MINUTES": ("digest_budget_minutes", float),
    "PODCAST_TTS_BACKEND": ("tts_backend", str),
    "PODCAST_TTS_VOICE": ("tts_voice", str),
    "PODCAST_TTS_COMMAND": ("tts_command", str),
    "PODCAST_S3_ENDPOINT_URL": ("s3_endpoint_url", str),
    "PODCAST_S3_REGION": ("s3_region", str),
}
_SECTIONS: dict[str, tuple[type, str]] = {
    "whisper": (WhisperSettings, "PODCAST_WHISPER_"),
    "enrichment": (EnrichmentSettings, "PODCAST_"),
}


def _coerce(value: Any, kind: Any, name: str) -> Any:
    kind = {"str": str, "int": int, "float": float, "bool": bool}.get(kind, kind)
    if kind is bool and isinstance(value, str):
        if value.lower() in {"1", "true", "yes", "on"}:
            return True
        if value.lower() in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"setting {name}: expected true/false, got {value!r}")
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"setting {name}: expected {kind.__name__}, got {value!r}") from exc


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Resolve settings from defaults, ``settings.json`` in the data directory and the environment.

    Raises:
        ValueError: naming the setting when a value has the wrong type or the file is invalid.
    """
    env = os.environ if environ is None else environ
    data_dir = Path(env.get("PODCAST_DATA_DIR", "data")).expanduser().resolve()
    values: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}

    file = data_dir / SETTINGS_FILE
    if file.exists():
        try:
            stored = json.loads(file.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{file}: invalid JSON: {exc}") from exc
        field_types = {f.name: f.type for f in dataclasses.fields(Settings)}
        for name, value in stored.items():
            if name in _SECTIONS:
                types = {f.name: f.type for f in dataclasses.fields(_SECTIONS[name][0])}
                for key, item in value.items():
                    if key not in types:
                        raise ValueError(f"{file}: unknown {name} setting {key!r}")
                    sections[name][key] = _coerce(item, types[key], f"{name}.{key}")
            elif name not in field_types or name == "data_dir":
                raise ValueError(f"{file}: unknown setting {name!r}")
            else:
                values[name] = _coerce(value, field_types[name], name)

    for var, (name, kind) in _ENV_FIELDS.items():
        if var in env:
            values[name] = _coerce(env[var], kind, var)
    for section, (cls, prefix) in _SECTIONS.items():
        for f in dataclasses.fields(cls):
            var = prefix + f.name.upper()
            if var in env:
                sections[section][f.name] = _coerce(env[var], f.type, var)

    values.setdefault("artifact_root", str(data_dir / "artifacts"))
    return Settings(
        data_dir=data_dir,
        **{name: cls(**sections[name]) for name, (cls, _) in _SECTIONS.items()},
        **values,
    )


def write_settings(data_dir: Path, overrides: dict[str, Any]) -> Path:
    """Write ``settings.json`` for a data directory (used by the demo profile)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SETTINGS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(overrides, indent=2) + "\n")
    tmp.replace(path)
    return path
