"""Shared fixtures: an isolated data directory and instance, and a real HTTP server on loopback."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

# Tests never reach a model hub: a missing model must fail fast, not retry for a minute.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
DEMO_SITE = ROOT / "demo" / "site"
JFK = SHARED_DATA / "audio" / "jfk.flac"
PODCAST = Path(sys.executable).parent / "podcast"
"""The ``podcast`` console script of this virtualenv."""
OFFLINE_MODELS = {
    "HF_HUB_OFFLINE": "1",
    "PODCAST_WHISPER_MODEL": "packaged:tiny.en",
    "PODCAST_EMBEDDING_MODEL": "packaged:all-MiniLM-L6-v2",
    "PODCAST_SUMMARY_BACKEND": "extractive",
    "PODCAST_SUMMARY_MODEL": "packaged:all-MiniLM-L6-v2",
    "PODCAST_NER_BACKEND": "spacy",
    "PODCAST_NER_MODEL": "packaged:en_core_web_sm",
}
"""The demo profile: models that ship in PyPI packages, since tests run offline."""
JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


@dataclass
class Route:
    """What the test server answers for one path."""

    body: bytes
    content_type: str = "application/rss+xml"
    status: int = 200
    delay: float = 0.0
    etag: bool = True


@dataclass
class FeedServer:
    """A real HTTP server on 127.0.0.1 whose routes tests change between requests.

    Answers ``If-None-Match`` with 304 when the body's ETag matches, counts requests per path and
    records the conditional headers it received.
    """

    base_url: str = ""
    routes: dict[str, Route] = field(default_factory=dict)
    hits: Counter = field(default_factory=Counter)
    conditional: list[tuple[str, str | None]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def set(self, path: str, body: bytes | str, **kwargs) -> str:
        self.routes[path] = Route(body.encode() if isinstance(body, str) else body, **kwargs)
        return self.url(path)

    def set_two_voices(
        self, audio: str = "/audio/two-voices.mp3", vtt: str = "/transcripts/two-voices.vtt"
    ) -> None:
        """Serve the demo's "Two Voices" audio and its publisher WebVTT at these paths."""
        self.set(
            audio, (DEMO_SITE / "audio/two-voices.mp3").read_bytes(), content_type="audio/mpeg"
        )
        self.set(
            vtt, (DEMO_SITE / "transcripts/two-voices.vtt").read_bytes(), content_type="text/vtt"
        )


def _handler(server: FeedServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

        def do_GET(self):
            path = self.path.split("?")[0]
            server.hits[path] += 1
            route = server.routes.get(path)
            if route is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if route.delay:
                time.sleep(route.delay)
            etag = '"' + hashlib.sha256(route.body).hexdigest()[:16] + '"'
            received = self.headers.get("If-None-Match")
            server.conditional.append((path, received))
            if route.etag and route.status == 200 and received == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(route.status)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body)))
            if route.etag:
                self.send_header("ETag", etag)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(route.body)

    return Handler


@contextlib.contextmanager
def serve_feeds() -> Iterator[FeedServer]:
    """A :class:`FeedServer` on a free loopback port, for as long as the block runs."""
    state = FeedServer()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


class _Trickle(http.server.BaseHTTPRequestHandler):
    """An enclosure that never finishes: 10 MB announced, then a byte a second until hung up.

    Each byte arrives well within the client's read timeout, so the download only ends when its
    run is terminated (or after the 15-minute download limit).
    """

    def do_GET(self):
        self.server.requests.append(time.time())
        self.send_response(200)
        self.send_header("Content-Type", "audio/mpeg")
        self.send_header("Content-Length", str(10_000_000))
        self.end_headers()
        try:
            while not self.server.stopped.wait(1):
                self.wfile.write(b"\0")
                self.wfile.flush()
        except OSError:  # the client hung up
            self.server.hangups.append(time.time())

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def trickling() -> Iterator[http.server.ThreadingHTTPServer]:
    """A :class:`_Trickle` server on loopback; ``.requests`` and ``.hangups`` hold their times.

    ``.wait_for_hangups(n)`` waits (up to 10 s) until ``n`` downloads have hung up.
    """
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    server.stopped = threading.Event()
    server.requests, server.hangups = [], []
    server.url = f"http://127.0.0.1:{server.server_address[1]}"

    def wait_for_hangups(count: int, timeout: float = 10) -> None:
        # A hang-up shows at the next write or the one after: a byte a second.
        deadline = time.monotonic() + timeout
        while len(server.hangups) < count and time.monotonic() < deadline:
            time.sleep(0.2)

    server.wait_for_hangups = wait_for_hangups
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.stopped.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with serve_feeds() as state:
        yield state


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An empty data directory and an empty DAGSTER_HOME, with the packaged offline Whisper."""
    from podcast_core.settings import load_settings

    data, home = tmp_path / "data", tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("PODCAST_DATA_DIR", str(data))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for name, value in OFFLINE_MODELS.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def free_port() -> int:
    """A loopback port with nothing listening on it (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss(title: str, items: list[dict], *, language: str = "en") -> str:
    """A small RSS 2.0 + iTunes + Podcasting 2.0 feed.

    Each item dict may have: title, guid, pub_date (RFC 822), audio (URL), audio_type, length,
    transcripts (list of (url, mime type)), duration.
    """
    parts = []
    for item in items:
        lines = [f"<title>{escape(item['title'])}</title>"]
        if item.get("guid"):
            lines.append(f'<guid isPermaLink="false">{escape(item["guid"])}</guid>')
        if item.get("pub_date"):
            lines.append(f"<pubDate>{item['pub_date']}</pubDate>")
        if item.get("audio"):
            lines.append(
                f'<enclosure url="{escape(item["audio"])}" '
                f'type="{item.get("audio_type", "audio/mpeg")}" '
                f'length="{item.get("length", 0)}"/>'
            )
        if item.get("duration"):
            lines.append(f"<itunes:duration>{item['duration']}</itunes:duration>")
        for url, mime in item.get("transcripts", []):
            lines.append(f'<podcast:transcript url="{escape(url)}" type="{mime}"/>')
        parts.append("<item>" + "".join(lines) + "</item>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
        'xmlns:podcast="https://podcastindex.org/namespace/1.0"><channel>'
        f"<title>{escape(title)}</title><link>https://example.com/</link>"
        f"<description>{escape(title)} feed</description><language>{language}</language>"
        + "".join(parts)
        + "</channel></rss>"
    )


def pytest_sessionfinish(session, exitstatus):
    """In CI (PODCAST_NO_SKIPS=1) a skipped test fails the run: nothing passes by being skipped."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("PODCAST_NO_SKIPS") == "1" and skipped and exitstatus == 0:
        reporter.write_line(f"PODCAST_NO_SKIPS=1: {len(skipped)} skipped tests count as failures")
        session.exitstatus = 1
