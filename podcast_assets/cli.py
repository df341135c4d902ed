"""The ``podcast`` command line."""

import json
import sys
import warnings
from pathlib import Path

import click

from podcast_core.catalog import Catalog, CatalogError, FeedConfig
from podcast_core.settings import load_settings

_EXPECTED = (CatalogError, ValueError, RuntimeError, FileNotFoundError)


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _print_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


@click.group()
def main() -> None:
    """Podcast intelligence: RSS feeds to a searchable corpus, on Dagster."""
    # Dagster flags beta and preview APIs (backfill_policy, partitioned asset checks) on every
    # import; users of the CLI can't act on it.
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    warnings.filterwarnings("ignore", message=".*is currently in preview.*")


@main.group()
def feeds() -> None:
    """Manage the feed catalog."""


@feeds.command("add")
@click.argument("url")
@click.option("--name", help="Feed name (lowercase slug); default: from the feed's title.")
@click.option("--whisper-model", help="Whisper model for this feed.")
@click.option("--language", help="Spoken language (ISO 639-1); skips detection.")
@click.option("--initial-episodes", type=int, help="Newest episodes processed on first sight.")
@click.option("--since", help="Ignore episodes published before this date (YYYY-MM-DD).")
def feeds_add(url: str, name: str | None, **overrides: object) -> None:
    """Follow the feed at URL (it is fetched once to check it)."""
    from podcast_assets.runner import add_feed
    from resources import build_resources

    settings = load_settings()
    http = build_resources(settings)["http"]
    try:
        feed = add_feed(
            Catalog(settings.catalog_path),
            http,
            url,
            **({"name": name} if name else {}),
            **{k: v for k, v in overrides.items() if v is not None},
        )
    except _EXPECTED as exc:
        raise _fail(exc) from exc
    click.echo(f"added {feed.name}: {feed.url}")


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def feeds_list(as_json: bool) -> None:
    """List followed feeds."""
    try:
        items = Catalog(load_settings().catalog_path).feeds()
    except _EXPECTED as exc:
        raise _fail(exc) from exc
    if as_json:
        _print_json([f.to_dict() for f in items])
        return
    for feed in items:
        extras = {k: v for k, v in feed.to_dict().items() if k not in {"name", "url", "added_at"}}
        suffix = "  " + " ".join(f"{k}={v}" for k, v in extras.items()) if extras else ""
        click.echo(f"{feed.name}\t{feed.url}{suffix}")


@feeds.command("remove")
@click.argument("name")
def feeds_remove(name: str) -> None:
    """Stop following a feed (its artifacts and partitions stay)."""
    try:
        feed: FeedConfig = Catalog(load_settings().catalog_path).remove(name)
    except _EXPECTED as exc:
        raise _fail(exc) from exc
    click.echo(f"removed {feed.name}: {feed.url}")


@feeds.command("parse")
@click.argument("source")
def feeds_parse(source: str) -> None:
    """Print the normalized feed at SOURCE (a file path or URL) as JSON."""
    from podcast_core.feeds import parse_feed
    from podcast_core.http import fetch_bytes
    from podcast_core.keys import slugify

    try:
        if source.startswith(("http://", "https://")):
            content, base = fetch_bytes(source), source
        else:
            path = Path(source)
            content, base = path.read_bytes(), path.resolve().as_uri()
        followed = Catalog(load_settings().catalog_path).find_url(source)
        slug = followed.name if followed else None
        if slug is None:
            title = parse_feed(content, feed_slug="feed", base_url=base).feed.title
            slug = slugify(title or Path(source).stem or "feed")
        _print_json(parse_feed(content, feed_slug=slug, base_url=base).to_dict())
    except _EXPECTED as exc:
        raise _fail(exc) from exc


@main.command()
@click.argument("audio", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", help="Whisper model (default: the configured one).")
@click.option("--language", help="Spoken language (ISO 639-1); default: detect.")
def transcribe(audio: str, model: str | None, language: str | None) -> None:
    """Transcribe an AUDIO file with the same code the transcript asset uses."""
    import dataclasses

    from podcast_core.transcribe import transcribe as run

    settings = load_settings().whisper
    if model:
        settings = dataclasses.replace(settings, model=model)
    try:
        result = run(audio, settings, language=language)
    except _EXPECTED as exc:
        raise _fail(exc) from exc
    _print_json(
        {
            "text": result.text,
            "language": result.language,
            "duration": result.duration_seconds,
            "model": result.model,
            "segments": [{"start": s.start, "end": s.end, "text": s.text} for s in result.segments],
        }
    )


@main.command()
@click.argument("feed_url")
@click.option("--limit", type=int, help="Process this many of the newest episodes.")
@click.option("--name", help="Feed name when the feed is new.")
@click.option("--whisper-model", help="Whisper model for this feed.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--remote",
    metavar="URL",
    help="Run on this dagster-webserver (e.g. http://127.0.0.1:3000) through its GraphQL API.",
)
def ingest(
    feed_url: str,
    limit: int | None,
    name: str | None,
    whisper_model: str | None,
    as_json: bool,
    remote: str | None,
) -> None:
    """Follow FEED_URL and ingest its newest episodes now, through the Dagster instance.

    With --remote, the webserver's instance and code location do the work: the feed is followed
    there, and the runs are submitted and polled over GraphQL.
    """
    options = {"limit": limit, "name": name, "whisper_model": whisper_model}
    try:
        if remote:
            from podcast_assets.remote import ingest_remote

            report = ingest_remote(feed_url, remote, **options)
        else:
            from podcast_assets.runner import get_instance
            from podcast_assets.runner import ingest as run

            settings = load_settings()
            report = run(feed_url, settings, get_instance(settings), **options)
    except _EXPECTED as exc:
        raise _fail(exc) from exc
    except KeyboardInterrupt:
        if remote:
            click.echo("stopped waiting: the runs already submitted go on on the server", err=True)
        else:
            # The episode in progress is a failed run in the instance; later ones never started.
            click.echo("ingest interrupted", err=True)
        sys.exit(130)
    if as_json:
        _print_json(report.to_dict())
    else:
        for e in report.episodes:
            detail = e.transcript_source or e.error or ""
            click.echo(f"{e.status:<10} {e.key}  {e.title or ''}  [{detail}]")
    for e in report.failed:
        click.echo(f"error: episode {e.key} ({e.title}) failed: {e.error}", err=True)
    if report.failed:
        sys.exit(1)


@main.command()
@click.argument("query")
@click.option("--feed", help="Only this feed.")
@click.option("--since", help="Only episodes published on or after this date (YYYY-MM-DD).")
@click.option("--limit", type=int, default=10, show_default=True, help="Number of hits.")
@click.option("--json", "as_json", is_flag=True, help="Print hits as JSON.")
def search(query: str, feed: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """Hybrid (keyword + semantic) search over every transcript."""
    from podcast_core.corpus_search import search_corpus
    from podcast_core.embed import Embedder
    from resources import open_artifact_store

    settings = load_settings()
    try:
        hits = search_corpus(
            open_artifact_store(settings),
            query,
            Embedder(settings.enrichment.embedding_model),
            feed=feed,
            since=since,
            limit=limit,
        )
    except _EXPECTED as exc:
        raise _fail(exc) from exc
    if as_json:
        _print_json(hits)
        return
    if not hits:
        click.echo("no results")
    for hit in hits:
        click.echo(
            f"{hit['score']:.4f}  {hit['feed']}  {hit['title']}  "
            f"[{hit['start']:.0f}s-{hit['end']:.0f}s]"
        )
        click.echo(f"    {hit['text'][:200]}")
        if hit["insight"]:
            click.echo(f"    insight: {hit['insight']}")


@main.group()
def corpus() -> None:
    """Query the corpus with SQL (DuckDB)."""


@corpus.command("sql")
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="Print rows as a JSON list of objects.")
@click.option("--csv", "as_csv", is_flag=True, help="Print rows as CSV with a header.")
def corpus_sql(query: str, as_json: bool, as_csv: bool) -> None:
    """Run QUERY over the tables episodes, audio, transcripts, segments."""
    import duckdb

    from podcast_core.corpus import query as run
    from resources import open_artifact_store

    try:
        columns, rows = run(open_artifact_store(load_settings()), query)
    except duckdb.Error as exc:
        raise click.ClickException(f"query failed: {exc}") from exc
    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    if as_json:
        _print_json([dict(zip(columns, row, strict=True)) for row in rows])
        return
    if as_csv:
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows(rows)
        return
    click.echo("\t".join(columns))
    for row in rows:
        click.echo("\t".join("" if v is None else str(v) for v in row))


@main.command("digest")
@click.option("--week", help="ISO week, e.g. 2026-W47.")
@click.option("--since", help="The week of N days ago, e.g. 7d (the default).")
@click.option(
    "--format", "fmt", type=click.Choice(["md", "json", "html"]), default="md", show_default=True
)
def digest_command(week: str | None, since: str | None, fmt: str) -> None:
    """Materialize one week's digest if missing or stale, then print it."""
    from podcast_assets.runner import DigestError, get_instance, resolve_week
    from podcast_assets.runner import digest as run
    from podcast_core import weekly
    from resources import open_artifact_store

    settings = load_settings()
    try:
        label = resolve_week(week, since)
        run(label, settings, get_instance(settings))
    except (DigestError, *_EXPECTED) as exc:
        raise _fail(exc) from exc
    folder = weekly.week_dir(label)
    name = {"md": "digest.md", "json": "digest.json", "html": "digest.html"}[fmt]
    click.echo(open_artifact_store(settings).read_bytes(f"{folder}/{name}").decode())


@main.command()
@click.option("--port", type=int, default=8765, show_default=True, help="Loopback port.")
@click.option("--serve", is_flag=True, help="Keep serving the sample feeds afterwards.")
def demo(port: int, serve: bool) -> None:
    """Serve the bundled sample feeds on loopback and ingest them end to end."""
    from podcast_assets.demo import run_demo

    sys.exit(run_demo(port, serve, as_json=False))
