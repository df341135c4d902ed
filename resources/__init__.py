"""Resources: every external system the assets and sensors touch, configured in one place."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import dagster as dg

from podcast_core.catalog import Catalog, FeedConfig
from podcast_core.embed import Embedder
from podcast_core.http import HttpClient
from podcast_core.settings import Settings, WhisperSettings
from podcast_core.storage import ArtifactStore, open_store


@functools.cache
def _s3_store(root: str, endpoint_url: str, region: str, cache_dir: str) -> ArtifactStore:
    # One client per configuration and process: building one costs tens of milliseconds and
    # assets ask for the store many times per run. boto3 clients are thread-safe.
    from dagster_aws.s3 import S3Resource

    s3 = S3Resource(endpoint_url=endpoint_url or None, region_name=region or None)
    return open_store(root, client_factory=s3.get_client, cache_dir=cache_dir)


class ArtifactStoreResource(dg.ConfigurableResource):
    """Where artifacts live: a local directory, or ``s3://bucket/prefix`` on any S3 API.

    The S3 client is dagster-aws's ``S3Resource`` (imported only for an S3 root): credentials come
    from the standard AWS environment variables or credential chain, never from this config.
    """

    root: str
    s3_endpoint_url: str = ""
    s3_region: str = ""
    cache_dir: str = ""

    def store(self) -> ArtifactStore:
        """The artifact store."""
        if not self.root.startswith("s3://"):
            return open_store(self.root)
        return _s3_store(self.root, self.s3_endpoint_url, self.s3_region, self.cache_dir)

    @classmethod
    def from_settings(cls, settings: Settings) -> ArtifactStoreResource:
        """Build from resolved settings."""
        return cls(
            root=settings.artifact_root,
            s3_endpoint_url=settings.s3_endpoint_url,
            s3_region=settings.s3_region,
            cache_dir=str(settings.cache_dir),
        )


def open_artifact_store(settings: Settings) -> ArtifactStore:
    """The artifact store of a resolved configuration (what the assets' resource opens)."""
    return ArtifactStoreResource.from_settings(settings).store()


class CatalogResource(dg.ConfigurableResource):
    """The feed catalog file and how much of a feed one sensor tick takes on."""

    path: str
    initial_episodes: int = 3
    max_runs_per_tick: int = 50

    def catalog(self) -> Catalog:
        """The catalog."""
        return Catalog(Path(self.path))

    def feed(self, name: str) -> FeedConfig | None:
        """The feed called ``name``, or None once it has been removed from the catalog."""
        return next((f for f in self.catalog().feeds() if f.name == name), None)


class HttpResource(dg.ConfigurableResource):
    """HTTP limits for feeds, transcripts and audio."""

    user_agent: str = "podcast-intelligence/0.1"
    feed_timeout_seconds: float = 15.0
    feed_concurrency: int = 16
    poll_deadline_seconds: float = 40.0
    max_audio_bytes: int = 1024**3
    download_timeout_seconds: float = 900.0

    def client(self) -> HttpClient:
        """A client bound to these limits."""
        return HttpClient(
            user_agent=self.user_agent,
            feed_timeout_seconds=self.feed_timeout_seconds,
            feed_concurrency=self.feed_concurrency,
            poll_deadline_seconds=self.poll_deadline_seconds,
            max_audio_bytes=self.max_audio_bytes,
            download_timeout_seconds=self.download_timeout_seconds,
        )


class WhisperResource(dg.ConfigurableResource):
    """faster-whisper settings. The model itself loads lazily, once per process."""

    model: str = "base"
    device: str = "auto"
    compute_type: str = "auto"
    cpu_threads: int = 0
    beam_size: int = 1
    batch_size: int = 1
    vad_filter: bool = True
    word_timestamps: bool = True

    def settings(self) -> WhisperSettings:
        """The settings as the domain code takes them."""
        return WhisperSettings(
            model=self.model,
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=self.cpu_threads,
            beam_size=self.beam_size,
            batch_size=self.batch_size,
            vad_filter=self.vad_filter,
            word_timestamps=self.word_timestamps,
        )

    @classmethod
    def from_settings(cls, whisper: WhisperSettings) -> WhisperResource:
        """Build from resolved settings."""
        return cls(**whisper.__dict__)


class EmbeddingResource(dg.ConfigurableResource):
    """The sentence-transformers model shared by the enrichment stages, loaded once per process."""

    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    chunk_tokens: int = 300
    chunk_overlap: int = 50

    def embedder(self) -> Embedder:
        """The embedder; the model itself loads on first use."""
        return Embedder(self.model)


class SummarizerResource(dg.ConfigurableResource):
    """Which summarizer backend and model make ``summary``."""

    backend: str = "transformers"
    model: str = ""
    llm_base_url: str = "http://127.0.0.1:11434/v1"
    llm_api_key: str = ""

    def settings(self):
        """The settings as ``podcast_core.summarize`` takes them."""
        from podcast_core.summarize import SummarySettings

        return SummarySettings(
            backend=self.backend,
            model=self.model,
            llm_base_url=self.llm_base_url,
            llm_api_key=self.llm_api_key,
        )


class GroundingResource(dg.ConfigurableResource):
    """How insights are verified against the transcript."""

    verifier: str = "embedding"
    nli_model: str = "cross-encoder/nli-deberta-v3-small"
    llm_base_url: str = "http://127.0.0.1:11434/v1"
    llm_model: str = ""
    llm_api_key: str = ""

    def settings(self):
        """The settings as ``podcast_core.insights`` takes them."""
        from podcast_core.insights import GroundingSettings

        return GroundingSettings(
            verifier=self.verifier,
            nli_model=self.nli_model,
            llm_base_url=self.llm_base_url,
            llm_model=self.llm_model,
            llm_api_key=self.llm_api_key,
        )


class EntityRecognizerResource(dg.ConfigurableResource):
    """The named-entity recognizer behind ``knowledge_graph``."""

    backend: str = "transformers"
    model: str = ""

    def settings(self):
        """The settings as ``podcast_core.graph`` takes them."""
        from podcast_core.graph import NerSettings

        return NerSettings(backend=self.backend, model=self.model)


class SpeechResource(dg.ConfigurableResource):
    """Text-to-speech for the spoken digest: espeak-ng, or any command line (piper, say)."""

    backend: str = "espeak"
    voice: str = "en-us"
    command: str = ""

    def tts(self):
        """The configured backend; never silently another one."""
        from podcast_core.speech import CommandBackend, EspeakBackend

        if self.backend == "espeak":
            return EspeakBackend(voice=self.voice)
        if self.backend == "command":
            if not self.command:
                raise ValueError("tts backend 'command' needs PODCAST_TTS_COMMAND")
            return CommandBackend(self.command)
        raise ValueError(f"unknown tts backend {self.backend!r}: use espeak or command")


class DigestResource(dg.ConfigurableResource):
    """How the weekly digest is published."""

    public_url: str = ""
    budget_minutes: float = 60.0


def _secret(name: str) -> str | dg.EnvVar:
    # Secrets only ever come from the environment, resolved when the resource is used.
    return dg.EnvVar(name) if os.environ.get(name) else ""


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources for a resolved configuration."""
    enrichment = settings.enrichment
    return {
        "embedding": EmbeddingResource(
            model=enrichment.embedding_model,
            chunk_tokens=enrichment.chunk_tokens,
            chunk_overlap=enrichment.chunk_overlap,
        ),
        "summarizer": SummarizerResource(
            backend=enrichment.summary_backend,
            model=enrichment.summary_model,
            llm_base_url=enrichment.llm_base_url,
            llm_api_key=_secret("PODCAST_LLM_API_KEY"),
        ),
        "grounding": GroundingResource(
            verifier=enrichment.verifier,
            nli_model=enrichment.nli_model,
            llm_base_url=enrichment.llm_base_url,
            llm_model=enrichment.llm_model,
            llm_api_key=_secret("PODCAST_LLM_API_KEY"),
        ),
        "ner": EntityRecognizerResource(backend=enrichment.ner_backend, model=enrichment.ner_model),
        "speech": SpeechResource(
            backend=settings.tts_backend, voice=settings.tts_voice, command=settings.tts_command
        ),
        "digest": DigestResource(
            public_url=settings.public_url, budget_minutes=settings.digest_budget_minutes
        ),
        "artifacts": ArtifactStoreResource.from_settings(settings),
        "catalog": CatalogResource(
            path=str(settings.catalog_path),
            initial_episodes=settings.initial_episodes,
            max_runs_per_tick=settings.max_runs_per_tick,
        ),
        "http": HttpResource(
            user_agent=settings.user_agent,
            feed_timeout_seconds=settings.feed_timeout_seconds,
            feed_concurrency=settings.feed_concurrency,
            max_audio_bytes=settings.max_audio_bytes,
            download_timeout_seconds=settings.download_timeout_seconds,
        ),
        "whisper": WhisperResource.from_settings(settings.whisper),
    }
