"""The artifact store: open-format files at documented paths, always written atomically.

Layout under the artifact root (``{data_dir}/artifacts`` by default)::

    {feed}/feed.json                      feed facts and every item the RSS sensor has seen
    {feed}/{episode}/metadata.json        the parsed RSS item (episode_metadata)
    {feed}/{episode}/audio.{ext}          the enclosure bytes (raw_audio)
    {feed}/{episode}/audio.json           size, checksum, content type, duration of the audio
    {feed}/{episode}/transcript.json      text, segments and provenance (transcript)

``{feed}`` and ``{episode}`` are the two halves of the episode partition key.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from podcast_core.keys import parse_episode_key


def episode_path(key: str, name: str) -> str:
    """The relative path of artifact ``name`` of the episode with partition key ``key``."""
    parsed = parse_episode_key(key)
    return f"{parsed.feed}/{parsed.episode}/{name}"


def feed_path(feed: str, name: str) -> str:
    """The relative path of a feed-level artifact."""
    return f"{feed}/{name}"


class LocalArtifactStore:
    """Artifacts on a local filesystem. Writes go to a temporary file that is renamed into place."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()

    def path(self, rel: str) -> Path:
        """The absolute path of ``rel``, refusing paths that escape the root."""
        path = (self.root / rel).resolve()
        if self.root not in path.parents:
            raise ValueError(f"artifact path {rel!r} escapes the artifact root {self.root}")
        return path

    def location(self, rel: str) -> str:
        """Where ``rel`` lives, for people: a filesystem path here, an ``s3://`` URI on S3."""
        return str(self.path(rel))

    def uri(self, rel: str) -> str:
        """A URI for ``rel`` that tools outside this process can open."""
        return self.path(rel).as_uri()

    def exists(self, rel: str) -> bool:
        """Whether the artifact exists."""
        return self.path(rel).is_file()

    def read_bytes(self, rel: str) -> bytes:
        """The artifact's bytes."""
        return self.path(rel).read_bytes()

    def read_json(self, rel: str) -> Any:
        """The artifact parsed as JSON."""
        return json.loads(self.read_bytes(rel))

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Atomically replace the artifact with ``data``."""
        with self.open_write(rel) as tmp:
            tmp.write_bytes(data)

    def write_json(self, rel: str, value: Any) -> None:
        """Atomically write ``value`` as pretty-printed UTF-8 JSON."""
        payload = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
        self.write_bytes(rel, payload.encode("utf-8"))

    @contextlib.contextmanager
    def open_write(self, rel: str) -> Iterator[Path]:
        """Yield a temporary path to fill; it becomes ``rel`` only if the block succeeds."""
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            yield tmp
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def delete(self, rel: str) -> None:
        """Remove the artifact if present."""
        self.path(rel).unlink(missing_ok=True)

    def list(self, pattern: str) -> list[str]:
        """Relative paths matching a glob pattern, sorted."""
        if not self.root.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in self.root.glob(pattern) if p.is_file())

    @contextlib.contextmanager
    def local_copy(self, rel: str) -> Iterator[Path]:
        """A local file path with the artifact's content (the file itself for local storage)."""
        path = self.path(rel)
        if not path.is_file():
            raise FileNotFoundError(f"artifact {rel} not found under {self.root}")
        yield path

    def move_in(self, rel: str, source: Path) -> None:
        """Atomically move a finished local file into the store (it must be on the same disk)."""
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)

    def scratch_dir(self) -> Path:
        """A directory on the store's disk for work files that :meth:`move_in` will publish."""
        path = self.root / ".scratch"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def put_file(self, rel: str, source: Path) -> None:
        """Atomically copy a local file into the store."""
        with self.open_write(rel) as tmp:
            shutil.copyfile(source, tmp)
