"""The ``podcast`` command line contract: commands, JSON shapes, exit codes, error messages."""

import json
import os
import signal
import subprocess
import time

import pytest
from click.testing import CliRunner
from conftest import JFK, PODCAST, SHARED_DATA, rss, serve_feeds, trickling

from podcast_assets.cli import main

EPISODE_FIELDS = {
    "key",
    "guid",
    "title",
    "published",
    "audio_url",
    "audio_type",
    "audio_bytes",
    "duration_seconds",
    "transcripts",
    "chapters_url",
    "persons",
    "season",
    "number",
    "episode_type",
    "description",
}


@pytest.fixture
def cli(env):
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args), catch_exceptions=False)


def test_feeds_add_list_remove(cli, feed_server):
    url = feed_server.set("/show.xml", rss("My Great Show!", []))
    result = cli("feeds", "add", url, "--whisper-model", "small", "--initial-episodes", "4")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"added my-great-show: {url}"

    listed = json.loads(cli("feeds", "list", "--json").output)
    assert listed[0]["name"] == "my-great-show"
    assert listed[0]["whisper_model"] == "small" and listed[0]["initial_episodes"] == 4
    assert "my-great-show\t" + url in cli("feeds", "list").output

    again = cli("feeds", "add", url)
    assert again.exit_code == 1 and "already followed as 'my-great-show'" in again.output

    assert cli("feeds", "remove", "my-great-show").exit_code == 0
    assert json.loads(cli("feeds", "list", "--json").output) == []
    missing = cli("feeds", "remove", "my-great-show")
    assert missing.exit_code == 1 and "no feed named 'my-great-show'" in missing.output


def test_feeds_add_checks_the_feed(cli, feed_server):
    html = feed_server.set(
        "/page.html", "<html><body>Not a feed</body></html>", content_type="text/html"
    )
    result = cli("feeds", "add", html)
    assert result.exit_code == 1
    assert f"cannot add feed {html}" in result.output
    gone = cli("feeds", "add", feed_server.url("/nothing.xml"))
    assert gone.exit_code == 1 and "HTTP 404" in gone.output
    assert json.loads(cli("feeds", "list", "--json").output) == []


def test_feeds_parse_prints_the_contract_shape(cli):
    result = cli("feeds", "parse", str(SHARED_DATA / "podcast-namespace-example2.xml"))
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.output)
    assert set(parsed["feed"]) == {"title", "link", "description", "language", "image"}
    assert parsed["feed"]["title"] == "Podcasting 2.0 Namespace Example"
    assert parsed["episodes"], "example feed has items"
    for episode in parsed["episodes"]:
        assert set(episode) == EPISODE_FIELDS
        assert episode["key"].startswith("podcasting-2-0-namespace-example--")
        for link in episode["transcripts"]:
            assert set(link) == {"url", "type", "language", "rel"}
        for person in episode["persons"]:
            assert set(person) == {"name", "role"}


def test_feeds_parse_url_resolves_relative_links(cli, feed_server):
    url = feed_server.set(
        "/feeds/show.xml",
        rss(
            "Rel",
            [
                {
                    "title": "One",
                    "guid": "1",
                    "audio": "../audio/one.mp3",
                    "transcripts": [("t/one.vtt", "text/vtt")],
                }
            ],
        ),
    )
    episode = json.loads(cli("feeds", "parse", url).output)["episodes"][0]
    assert episode["audio_url"] == feed_server.url("/audio/one.mp3")
    assert episode["transcripts"][0]["url"] == feed_server.url("/feeds/t/one.vtt")


def test_feeds_parse_error_names_the_source(cli, tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("this is not xml at all")
    result = cli("feeds", "parse", str(bad))
    assert result.exit_code == 1 and "bad.xml" in result.output


def test_transcribe_prints_the_contract_shape(cli):
    result = cli("transcribe", str(JFK), "--model", "packaged:tiny.en")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"text", "language", "duration", "model", "segments"}
    assert out["model"] == "packaged:tiny.en" and out["language"] == "en"
    assert "ask not what your country can do for you" in out["text"].lower()
    assert all(set(s) == {"start", "end", "text"} for s in out["segments"])


def test_transcribe_unknown_model_is_a_clear_error(cli):
    result = cli("transcribe", str(JFK), "--model", "packaged:huge")
    assert result.exit_code == 1 and "unknown packaged Whisper model" in result.output


def test_ingest_console_script_json_and_exit_code(env, feed_server):
    feed_server.set("/audio/jfk.flac", JFK.read_bytes(), content_type="audio/flac")
    url = feed_server.set(
        "/feed.xml",
        rss(
            "Mixed",
            [
                {
                    "title": "Good",
                    "guid": "good",
                    "audio": "/audio/jfk.flac",
                    "audio_type": "audio/flac",
                    "pub_date": "Mon, 02 Nov 2026 10:00:00 GMT",
                },
                {
                    "title": "Gone",
                    "guid": "gone",
                    "audio": "/audio/gone.mp3",
                    "pub_date": "Tue, 03 Nov 2026 10:00:00 GMT",
                },
            ],
        ),
    )
    proc = subprocess.run(
        [str(PODCAST), "ingest", url, "--limit", "2", "--json"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["feed"] == "mixed"
    by_title = {e["title"]: e for e in summary["episodes"]}
    assert by_title["Good"]["status"] == "ok"
    assert by_title["Good"]["transcript_source"] == "whisper"
    assert by_title["Gone"]["status"] == "failed"
    assert f"episode {by_title['Gone']['key']} (Gone) failed" in proc.stderr
    assert "HTTP 404" in proc.stderr

    rows = json.loads(
        subprocess.run(
            [str(PODCAST), "corpus", "sql", "--json", "SELECT key, source, model FROM transcripts"],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            timeout=120,
            check=True,
        ).stdout
    )
    assert rows == [
        {"key": by_title["Good"]["key"], "source": "whisper", "model": "packaged:tiny.en"}
    ]


def test_corpus_sql_reports_bad_queries(cli):
    result = cli("corpus", "sql", "SELECT nope FROM episodes")
    assert result.exit_code == 1 and "query failed" in result.output
    empty = cli("corpus", "sql", "--json", "SELECT count(*) AS n FROM segments")
    assert json.loads(empty.output) == [{"n": 0}]


def test_ctrl_c_stops_ingest_without_retrying_the_download(env):
    """Ctrl-C in a step with a RetryPolicy stops the ingest; Dagster alone would retry the step."""
    with serve_feeds() as feeds, trickling() as trickle:
        items = [
            {
                "title": f"Endless {n}",
                "guid": f"endless-{n}",
                "audio": f"{trickle.url}/endless-{n}.mp3",
                "pub_date": f"Mon, 0{n} Nov 2026 10:00:00 GMT",
            }
            for n in (1, 2)
        ]
        url = feeds.set("/feed.xml", rss("Endless", items))
        proc = subprocess.Popen(
            [str(PODCAST), "ingest", url, "--limit", "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        try:
            deadline = time.monotonic() + 120
            while not trickle.requests and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.2)
            assert trickle.requests, "the ingest never started the download"
            time.sleep(1)  # inside the download
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=60)
        finally:
            proc.kill()
        trickle.wait_for_hangups(1)
    assert proc.returncode == 130, stderr[-2000:]
    assert "interrupted: endless--" in stderr and "ingest interrupted" in stderr
    # One download, hung up; neither retried nor followed by the other episode's.
    assert len(trickle.requests) == 1 and len(trickle.hangups) == 1, stderr[-2000:]
