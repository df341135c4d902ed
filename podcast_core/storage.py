"""The artifact store: open-format files at documented paths, always written atomically.

Layout under the artifact root (``{data_dir}/artifacts`` by default)::

    {feed}/feed.json                      feed facts and every item the RSS sensor has seen
    {feed}/{episode}/metadata.json        the parsed RSS item (episode_metadata)
    {feed}/{episode}/audio.{ext}          the enclosure bytes (raw_audio)
    {feed}/{episode}/audio.json           size, checksum, content type, duration of the audio
    {feed}/{episode}/transcript.json      text, segments and provenance (transcript)

``{feed}`` and ``{episode}`` are the two halves of the episode partition key.

The root is a local directory (:class:`LocalArtifactStore`) or ``s3://bucket/prefix`` on any S3
API (:class:`S3ArtifactStore`: AWS, MinIO, R2), with the same layout and the same interface;
:func:`open_store` picks one from the root. Code that needs real files for many artifacts at once
(DuckDB over the corpus) asks for :meth:`~S3ArtifactStore.local_view`: the store itself when
local, an incrementally synced local mirror when on S3.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import mimetypes
import os
import posixpath
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
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


@contextlib.contextmanager
def _staged(directory: Path, prefix: str, suffix: str) -> Iterator[Path]:
    """A new empty file in ``directory``, removed when the block ends unless moved away."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


class _StoreBase:
    """What every store derives from ``read_bytes`` and ``open_write``."""

    def read_bytes(self, rel: str) -> bytes:
        raise NotImplementedError

    def open_write(self, rel: str) -> contextlib.AbstractContextManager[Path]:
        raise NotImplementedError

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


class LocalArtifactStore(_StoreBase):
    """Artifacts on a local filesystem. Writes go to a temporary file that is renamed into place."""

    is_local = True

    def __init__(self, root: str | Path):
        if str(root).startswith("s3://"):
            # Path("s3://b/p") would silently become a local directory named "s3:".
            raise ValueError(f"artifact root {root} is an S3 URI: open it with open_store()")
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

    @contextlib.contextmanager
    def open_write(self, rel: str) -> Iterator[Path]:
        """Yield a temporary path to fill; it becomes ``rel`` only if the block succeeds."""
        target = self.path(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        with _staged(target.parent, f".{target.name}.", ".tmp") as tmp:
            yield tmp
            os.replace(tmp, target)

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

    def local_view(self, patterns: Sequence[str]) -> LocalArtifactStore:
        """A local store holding the artifacts matching ``patterns``: this one, as is."""
        return self


# -- S3 ---------------------------------------------------------------------------------------


class ArtifactStoreError(RuntimeError):
    """An artifact store operation failed; the message names the object and the cause."""


class NotLocalError(ValueError):
    """A filesystem path was asked of a store that has none (S3)."""


_GLOB_CHARS = frozenset("*?[")


def _segment_regex(segment: str) -> str:
    """One path segment of a glob as a regex: ``*`` and ``?`` never cross ``/``."""
    out, i = [], 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = segment.find("]", i + 2 if segment[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = segment[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A regex matching the relative file paths ``Path.glob(pattern)`` finds.

    ``*``, ``?`` and ``[...]`` match within one path segment; a ``**`` segment matches zero or
    more directories.
    """
    parts = []
    segments = pattern.strip("/").split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            # As in pathlib (3.11), a trailing ** names directories only, so no file matches.
            parts.append("(?!)" if last else "(?:[^/]+/)*")
        else:
            parts.append(_segment_regex(segment) + ("" if last else "/"))
    return re.compile("".join(parts) + r"\Z")


def glob_prefix(pattern: str) -> str:
    """The longest literal leading directory path of ``pattern`` (what S3 can list by prefix)."""
    segments = pattern.strip("/").split("/")
    literal = []
    for segment in segments:
        if _GLOB_CHARS & set(segment):
            return "".join(s + "/" for s in literal)
        literal.append(segment)
    return "/".join(literal)  # no wildcard at all: the key itself


def _clean_rel(rel: str) -> str:
    """``rel`` normalized, refusing absolute paths and ``..`` (they would escape the prefix)."""
    norm = posixpath.normpath(rel)
    if rel.startswith("/") or norm in (".", "") or norm == ".." or norm.startswith("../"):
        raise ValueError(f"artifact path {rel!r} escapes the artifact root")
    return norm


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` as ``(bucket, prefix)``; the prefix has no slashes at either end."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"artifact root {uri!r} names no bucket (use s3://bucket/prefix)")
    return bucket, prefix.strip("/")


class S3ArtifactStore(_StoreBase):
    """Artifacts in an S3 bucket (AWS, MinIO, R2, ...) under ``s3://bucket/prefix``.

    Same layout and interface as :class:`LocalArtifactStore`. Writes fill a local temporary file
    and upload it when finished: an S3 PUT (or a completed multipart upload) is atomic, so nothing
    half-written is ever visible. Local work files live in ``cache_dir``: ``scratch/`` for
    temporary files and ``mirror/{bucket}/{prefix}/`` for :meth:`local_view`.

    Args:
        bucket: The bucket.
        prefix: Key prefix of the artifact root ('' for the bucket root).
        client: A boto3 S3 client (``dagster_aws.s3.S3Resource(...).get_client()``).
        cache_dir: A local directory for scratch files and the query mirror.
    """

    is_local = False

    def __init__(self, bucket: str, prefix: str, client: Any, cache_dir: str | Path):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.cache_dir = Path(cache_dir).expanduser().resolve()

    def __repr__(self) -> str:
        return f"S3ArtifactStore({self.location('')!r})"

    # -- addressing

    def key(self, rel: str) -> str:
        """The object key of ``rel``."""
        rel = _clean_rel(rel)
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def location(self, rel: str) -> str:
        """``s3://bucket/prefix/rel`` (the root itself for ``rel == ''``)."""
        key = self.key(rel) if rel else self.prefix
        return f"s3://{self.bucket}/{key}"

    def uri(self, rel: str) -> str:
        """The ``s3://`` URI of ``rel``."""
        return self.location(rel)

    def path(self, rel: str) -> Path:
        """Always an error: S3 objects have no local path (use :meth:`local_copy`)."""
        raise NotLocalError(
            f"artifact {rel} has no local path: the artifact store is S3 ({self.location(rel)}); "
            "use local_copy() to read it or scratch_dir() + move_in() to write it"
        )

    def _error(self, action: str, rel: str, exc: Exception) -> Exception:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return FileNotFoundError(f"artifact {rel} not found at {self.location(rel)}")
            cause = f"{code} {error.get('Message') or ''}".strip()
            if code == "NoSuchBucket":
                cause = f"bucket {self.bucket} does not exist"
        else:
            cause = f"{type(exc).__name__}: {exc}"
        return ArtifactStoreError(f"{action} {self.location(rel)} failed: {cause}")

    def _call(self, action: str, rel: str, fn: Any, /, **kwargs: Any) -> Any:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except (ClientError, BotoCoreError, Boto3Error) as exc:
            raise self._error(action, rel, exc) from exc

    # -- reading

    def exists(self, rel: str) -> bool:
        """Whether the object exists."""
        try:
            self._call(
                "checking", rel, self.client.head_object, Bucket=self.bucket, Key=self.key(rel)
            )
        except FileNotFoundError:
            return False
        return True

    def read_bytes(self, rel: str) -> bytes:
        """The object's bytes."""
        response = self._call(
            "reading", rel, self.client.get_object, Bucket=self.bucket, Key=self.key(rel)
        )
        return response["Body"].read()

    @contextlib.contextmanager
    def local_copy(self, rel: str) -> Iterator[Path]:
        """The object downloaded to a scratch file, removed when the block ends."""
        with _staged(self.scratch_dir(), ".download.", posixpath.splitext(rel)[1]) as tmp:
            self._download(rel, self.key(rel), tmp)
            yield tmp

    def _download(self, rel: str, key: str, target: Path) -> None:
        self._call(
            "downloading",
            rel,
            self.client.download_file,
            Bucket=self.bucket,
            Key=key,
            Filename=str(target),
        )

    def _objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        """Every object whose key starts with ``{self.prefix}/{prefix}``, with ``rel`` added."""
        root = f"{self.prefix}/" if self.prefix else ""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=root + prefix)
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    rel = item["Key"][len(root) :]
                    # Folder markers ("a/") and empty segments are not files a local store has.
                    if rel and not rel.endswith("/") and "//" not in rel:
                        yield item | {"rel": rel}
        except (ClientError, BotoCoreError) as exc:
            raise self._error("listing", prefix, exc) from exc

    def list(self, pattern: str) -> list[str]:
        """Relative paths matching a glob pattern (as the local store's), sorted."""
        regex = glob_regex(pattern)
        return sorted(
            o["rel"] for o in self._objects(glob_prefix(pattern)) if regex.match(o["rel"])
        )

    # -- writing

    def _upload(self, rel: str, source: Path) -> None:
        extra = {}
        content_type, _ = mimetypes.guess_type(rel)
        if content_type:
            extra["ContentType"] = content_type
        self._call(
            "uploading",
            rel,
            self.client.upload_file,
            Filename=str(source),
            Bucket=self.bucket,
            Key=self.key(rel),
            ExtraArgs=extra,
        )

    @contextlib.contextmanager
    def open_write(self, rel: str) -> Iterator[Path]:
        """Yield a local temporary path to fill; it is uploaded only if the block succeeds."""
        self.key(rel)  # refuse a bad path before any work
        with _staged(self.scratch_dir(), ".upload.", posixpath.splitext(rel)[1]) as tmp:
            yield tmp
            self._upload(rel, tmp)

    def delete(self, rel: str) -> None:
        """Remove the object if present."""
        self._call(
            "deleting", rel, self.client.delete_object, Bucket=self.bucket, Key=self.key(rel)
        )

    def move_in(self, rel: str, source: Path) -> None:
        """Upload a finished local file to ``rel``, then remove the local file."""
        self._upload(rel, Path(source))
        Path(source).unlink(missing_ok=True)

    def put_file(self, rel: str, source: Path) -> None:
        """Upload a copy of a local file to ``rel``."""
        self._upload(rel, Path(source))

    def scratch_dir(self) -> Path:
        """A local directory for work files (uploaded by :meth:`move_in`)."""
        path = self.cache_dir / "scratch"
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- querying

    def mirror_dir(self) -> Path:
        """Where :meth:`local_view` keeps its local copies."""
        return self.cache_dir / "mirror" / self.bucket / (self.prefix or "_root")

    def local_view(self, patterns: Sequence[str]) -> LocalArtifactStore:
        """A local mirror of the objects matching ``patterns``, brought up to date first.

        One listing of the prefix; objects whose size and ETag are unchanged since the last sync
        are not downloaded again, and local copies of objects gone from S3 are removed. Syncs of
        one mirror serialize on a lock file; each file is replaced atomically.
        """
        root = self.mirror_dir()
        root.mkdir(parents=True, exist_ok=True)
        regexes = [glob_regex(p) for p in patterns]
        prefixes = {glob_prefix(p) for p in patterns}
        # One listing from the longest prefix all patterns share.
        common = posixpath.commonprefix(sorted(prefixes))
        common = common[: common.rfind("/") + 1]
        view = LocalArtifactStore(root)
        manifest_path = root / ".mirror.json"
        with open(root / ".mirror.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            # Listed under the lock: a sync that listed earlier must not roll back a newer one.
            wanted = {
                o["rel"]: [o["Size"], o["ETag"]]
                for o in self._objects(common)
                if any(r.match(o["rel"]) for r in regexes)
            }
            manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
            for rel in sorted(set(manifest) - set(wanted)):
                (root / rel).unlink(missing_ok=True)
                del manifest[rel]
            for rel, state in sorted(wanted.items()):
                target = view.path(rel)  # refuses keys that would escape the mirror
                if manifest.get(rel) == state and target.is_file():
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with _staged(target.parent, f".{target.name}.", ".tmp") as tmp:
                    self._download(rel, self.key(rel), tmp)
                    os.replace(tmp, target)
                manifest[rel] = state
            tmp = manifest_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(manifest))
            tmp.replace(manifest_path)
        return LocalArtifactStore(root)


ArtifactStore = LocalArtifactStore | S3ArtifactStore


def open_store(
    root: str, *, client_factory: Callable[[], Any] | None = None, cache_dir: str | Path = ""
) -> ArtifactStore:
    """The store for an artifact root: S3 for ``s3://bucket/prefix``, else a local directory.

    Args:
        root: The artifact root (``Settings.artifact_root``).
        client_factory: Makes the boto3 S3 client; called only for an S3 root.
        cache_dir: Local scratch and mirror directory of an S3 store (default: the system temp).
    """
    if not root.startswith("s3://"):
        return LocalArtifactStore(root)
    if client_factory is None:
        raise ValueError(f"artifact root {root} is on S3 but no S3 client was configured")
    bucket, prefix = parse_s3_uri(root)
    cache = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "podcast-artifacts"
    return S3ArtifactStore(bucket, prefix, client_factory(), cache)
