"""HTTP for feeds, transcripts and audio.

Conditional GETs, bounded concurrent polling, and streamed downloads with size and time limits
that never leave a partial file behind.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx


class FetchError(RuntimeError):
    """An HTTP fetch failed; the message names the URL and the cause.

    ``retryable`` is False for failures that a retry cannot fix (4xx, not audio, too large).
    """

    def __init__(self, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


def _status_error(url: str, response: httpx.Response) -> FetchError:
    code = response.status_code
    return FetchError(
        f"{url}: HTTP {code} {response.reason_phrase}", retryable=code >= 500 or code in {408, 429}
    )


@dataclass(frozen=True)
class FeedRequest:
    """A feed to poll, with the validators of its last successful fetch."""

    name: str
    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FeedResponse:
    """Outcome of polling one feed: ``status`` 200 (new content), 304 (unchanged) or an error."""

    name: str
    url: str
    status: int | None
    content: bytes | None = None
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None
    seconds: float = 0.0
    attempted: bool = True
    """False when the poll's deadline came before the request was sent."""

    @property
    def ok(self) -> bool:
        """Whether the poll succeeded (changed or not)."""
        return self.error is None


@dataclass(frozen=True)
class Download:
    """A finished download."""

    url: str
    final_url: str
    bytes: int
    sha256: str
    content_type: str | None
    seconds: float
    etag: str | None = None
    last_modified: str | None = None


_AUDIO_TYPES = ("audio/", "video/", "application/octet-stream", "binary/octet-stream")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return str(exc) or type(exc).__name__


async def _poll_one(
    client: httpx.AsyncClient,
    request: FeedRequest,
    semaphore: asyncio.Semaphore,
    max_bytes: int,
    on_start: Callable[[], None] = lambda: None,
) -> FeedResponse:
    headers = {}
    if request.etag:
        headers["If-None-Match"] = request.etag
    if request.last_modified:
        headers["If-Modified-Since"] = request.last_modified
    async with semaphore:
        on_start()
        started = time.perf_counter()
        try:
            async with client.stream("GET", request.url, headers=headers) as response:
                if response.status_code == 304:
                    return FeedResponse(
                        request.name,
                        request.url,
                        304,
                        etag=request.etag,
                        last_modified=request.last_modified,
                        seconds=time.perf_counter() - started,
                    )
                if response.status_code >= 400:
                    return FeedResponse(
                        request.name,
                        request.url,
                        response.status_code,
                        error=f"HTTP {response.status_code} {response.reason_phrase}",
                        seconds=time.perf_counter() - started,
                    )
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(f"feed larger than {max_bytes} bytes")
                    chunks.append(chunk)
                return FeedResponse(
                    request.name,
                    request.url,
                    response.status_code,
                    content=b"".join(chunks),
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                    seconds=time.perf_counter() - started,
                )
        except Exception as exc:  # one feed's failure (even an IDNA error on its URL) is its own
            return FeedResponse(
                request.name,
                request.url,
                None,
                error=_describe(exc),
                seconds=time.perf_counter() - started,
            )


async def _poll_all(
    requests: Sequence[FeedRequest],
    *,
    timeout: float,
    concurrency: int,
    deadline: float,
    user_agent: str,
    max_bytes: int,
) -> list[FeedResponse]:
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
        limits=limits,
        headers={"User-Agent": user_agent},
    ) as client:
        started: set[int] = set()
        tasks = [
            asyncio.create_task(
                _poll_one(
                    client, r, semaphore, max_bytes, on_start=functools.partial(started.add, i)
                )
            )
            for i, r in enumerate(requests)
        ]
        done, pending = await asyncio.wait(tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        results = []
        for i, (request, task) in enumerate(zip(requests, tasks, strict=True)):
            if task in done:
                results.append(task.result())
            elif i in started:
                results.append(
                    FeedResponse(
                        request.name,
                        request.url,
                        None,
                        error=f"timed out: still loading after this tick's {deadline:g}s budget",
                    )
                )
            else:
                results.append(
                    FeedResponse(
                        request.name,
                        request.url,
                        None,
                        attempted=False,
                        error=f"not polled within this tick's {deadline:g}s budget",
                    )
                )
        return results


def poll_feeds(
    requests: Sequence[FeedRequest],
    *,
    timeout: float = 15.0,
    concurrency: int = 16,
    deadline: float = 40.0,
    user_agent: str = "podcast-intelligence",
    max_bytes: int = 50 * 1024**2,
) -> list[FeedResponse]:
    """Poll feeds concurrently with conditional GETs. Never raises for one feed's failure.

    Args:
        requests: the feeds, with the ETag / Last-Modified of their last fetch.
        timeout: per-request network timeout in seconds.
        concurrency: how many feeds are fetched at once.
        deadline: overall budget; feeds not done by then are reported as errors and retried later
            (those never sent have ``attempted=False``, so the caller can put them first next time).
        user_agent: the User-Agent header.
        max_bytes: largest feed document accepted.

    Returns:
        One response per request, in order.
    """
    if not requests:
        return []
    return asyncio.run(
        _poll_all(
            requests,
            timeout=timeout,
            concurrency=concurrency,
            deadline=deadline,
            user_agent=user_agent,
            max_bytes=max_bytes,
        )
    )


def fetch_bytes(
    url: str,
    *,
    timeout: float = 30.0,
    max_bytes: int = 20 * 1024**2,
    user_agent: str = "podcast-intelligence",
) -> bytes:
    """GET a small document (a feed or a transcript) into memory.

    Raises:
        FetchError: naming the URL on HTTP errors, timeouts or oversize bodies.
    """
    try:
        with (
            httpx.Client(
                timeout=timeout, follow_redirects=True, headers={"User-Agent": user_agent}
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise _status_error(url, response)
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(
                        f"{url}: larger than the {max_bytes}-byte limit", retryable=False
                    )
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {_describe(exc)}") from exc


def download(
    url: str,
    dest: Path,
    *,
    max_bytes: int,
    timeout: float,
    user_agent: str = "podcast-intelligence",
    progress: Callable[[int, int | None], None] | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
) -> Download | None:
    """Stream ``url`` into ``dest`` (a temporary file the caller renames), hashing as it goes.

    Args:
        url: the enclosure URL.
        dest: file to write; left truncated-or-partial on error, for the caller to discard.
        max_bytes: refuse bodies larger than this (checked on Content-Length and while streaming).
        timeout: overall wall-clock limit for the download, in seconds.
        user_agent: the User-Agent header.
        progress: called with (bytes so far, total or None) about every 8 MiB.
        etag: validator of a copy already stored, sent as If-None-Match.
        last_modified: validator of a copy already stored, sent as If-Modified-Since.

    Returns:
        The download, or None when the server answered 304 Not Modified.

    Raises:
        FetchError: naming the URL and the cause (HTTP status, not audio, too large, too slow).
    """
    started = time.perf_counter()
    digest = hashlib.sha256()
    size = 0
    headers = {"User-Agent": user_agent}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        with (
            httpx.Client(
                timeout=httpx.Timeout(30.0), follow_redirects=True, headers=headers
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code == 304:
                return None
            if response.status_code >= 400:
                raise _status_error(url, response)
            content_type = response.headers.get("content-type", "").split(";")[0].strip() or None
            if content_type and not content_type.startswith(_AUDIO_TYPES):
                raise FetchError(
                    f"{url}: expected audio, got content type {content_type!r}", retryable=False
                )
            declared = response.headers.get("content-length")
            total = int(declared) if declared and declared.isdigit() else None
            if total is not None and total > max_bytes:
                raise FetchError(
                    f"{url}: {total} bytes exceeds the {max_bytes}-byte limit", retryable=False
                )
            next_report = 8 * 1024**2
            with open(dest, "wb") as out:
                # Whatever each read returns: the time limit holds for a trickling server too.
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(
                            f"{url}: body exceeds the {max_bytes}-byte limit", retryable=False
                        )
                    if time.perf_counter() - started > timeout:
                        raise FetchError(f"{url}: download took longer than {timeout:.0f}s")
                    digest.update(chunk)
                    out.write(chunk)
                    if progress and size >= next_report:
                        progress(size, total)
                        next_report += 8 * 1024**2
            if size == 0:
                raise FetchError(f"{url}: empty response body", retryable=False)
            return Download(
                url=url,
                final_url=str(response.url),
                bytes=size,
                sha256=digest.hexdigest(),
                content_type=content_type,
                seconds=time.perf_counter() - started,
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            )
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {_describe(exc)}") from exc


@dataclass(frozen=True)
class HttpClient:
    """The HTTP limits of the platform, bound to the three kinds of fetch it makes."""

    user_agent: str = "podcast-intelligence/0.1"
    feed_timeout_seconds: float = 15.0
    feed_concurrency: int = 16
    poll_deadline_seconds: float = 40.0
    max_audio_bytes: int = 1024**3
    download_timeout_seconds: float = 900.0

    def poll(self, requests: Sequence[FeedRequest]) -> list[FeedResponse]:
        """Poll feeds concurrently (see :func:`poll_feeds`)."""
        return poll_feeds(
            requests,
            timeout=self.feed_timeout_seconds,
            concurrency=self.feed_concurrency,
            deadline=self.poll_deadline_seconds,
            user_agent=self.user_agent,
        )

    def fetch(self, url: str) -> bytes:
        """GET a feed or transcript (see :func:`fetch_bytes`)."""
        return fetch_bytes(url, timeout=self.feed_timeout_seconds * 2, user_agent=self.user_agent)

    def download(self, url: str, dest: Path, **kwargs) -> Download | None:
        """Stream audio to ``dest`` within the size and time limits (see :func:`download`)."""
        return download(
            url,
            dest,
            max_bytes=self.max_audio_bytes,
            timeout=self.download_timeout_seconds,
            user_agent=self.user_agent,
            **kwargs,
        )
