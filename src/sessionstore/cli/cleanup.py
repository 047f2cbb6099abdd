"""``sessionstore cleanup``: run the TTL cleanup job from the command line (cron, a sidecar).

    sessionstore cleanup --url URL --once              # one round, then exit (for cron)
    sessionstore cleanup --url URL --once --dry-run    # count what a round would remove
    sessionstore cleanup --url URL                     # a round every --interval until Ctrl-C

A round is the service's own ``SessionService.cleanup()``: expire sessions
and state keys, purge tombstones older than --retention, trim events beyond
--event-limit, in short batches, under the database's cleanup lock, so it is
safe next to running services and other cleaners. Give it the same
--event-limit, --hard-delete and --retention as your services use
(docs/ttl.md); left out, each is the service's own default. It never
migrates: a database without the schema is an error.

Output: a progress bar while a round runs on a terminal, nothing but the
summary line otherwise; the summary line is
``cleanup: sessions_expired=… events_removed=… … total=… in 1.23s``, or
``skipped: another process holds the cleanup lock``.

Exit codes: 0 success (also when skipped, and when stopped with Ctrl-C);
2 an error (bad URL or option, database unreachable, schema missing): one
line on stderr, password redacted.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from ..errors import SessionStoreError
from ..factory import open_service
from ..records import CLEANUP_STEPS, CleanupResult
from ..service import SessionService
from .options import (
    DEFAULT_PREFIX,
    DEFAULTS,
    PrefixOption,
    SchemaOption,
    UrlOption,
    format_duration,
    parse_duration,
)
from .output import fail_with, scrub, usage_error

SKIPPED = "skipped: another process holds the cleanup lock"

HELP = (
    "Expire, trim and purge rows by TTL: one round with --once (for cron), or a round every "
    "--interval until Ctrl-C. Safe next to running services: one cleaner at a time per database."
)

__all__ = ["HELP", "SKIPPED", "cleanup", "register", "summary"]


def register(app: typer.Typer) -> None:
    """Add the ``cleanup`` command to a typer app (``sessionstore.cli.app``, or a test's own)."""
    app.command("cleanup", help=HELP)(cleanup)


def cleanup(
    url: UrlOption = "",
    prefix: PrefixOption = DEFAULT_PREFIX,
    schema: SchemaOption = None,
    once: Annotated[bool, typer.Option("--once", help="Run one round and exit (what cron wants).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what a round would remove; delete nothing.")] = False,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", help="Most rows per transaction (cleanup_batch_size).",
    )] = DEFAULTS.cleanup_batch_size,
    event_limit: Annotated[str, typer.Option(
        "--event-limit", help="Keep each session's newest N events; older ones are trimmed (the services' event_limit). "
        "none: keep every event.",
    )] = str(DEFAULTS.event_limit).lower(),
    hard_delete: Annotated[bool, typer.Option(
        "--hard-delete/--soft-delete",
        help="Delete expired rows at once, or keep tombstones for --retention (soft_delete).",
    )] = not DEFAULTS.soft_delete,
    retention: Annotated[str, typer.Option(
        "--retention", help="How long tombstones are kept before purge (tombstone_retention): 7d, 12h, 30m, 90s.",
    )] = format_duration(DEFAULTS.tombstone_retention),
    interval: Annotated[str, typer.Option(
        "--interval", help="Without --once: time between rounds (cleanup_interval), e.g. 5m.",
    )] = format_duration(DEFAULTS.cleanup_interval),
) -> None:
    if not url:
        usage_error("no database URL: pass --url or set SESSIONSTORE_URL")
    if url.split(":", 1)[0] == "memory":
        usage_error("memory:// has nothing to clean from another process: the in-memory backend cleans itself")
    _check_sqlite_file(url)
    tombstone_retention = parse_duration("--retention", retention)
    pause = 0.0 if once else parse_duration("--interval", interval).total_seconds()
    try:
        svc = open_service(
            url,
            table_prefix=prefix,
            schema=schema,
            auto_migrate=False,  # never: a missing schema is an error here
            cleanup_interval=None,  # this command runs the rounds itself
            cleanup_batch_size=batch_size,
            event_limit=_event_limit(event_limit),
            soft_delete=not hard_delete,
            tombstone_retention=tombstone_retention,
        )
    except SessionStoreError as exc:
        fail_with(exc, url)
    try:
        asyncio.run(_main(svc, dry_run=dry_run, once=once, pause=pause, url=url))
    except KeyboardInterrupt:
        typer.echo("stopped")
    except BrokenPipeError:
        raise
    except Exception as exc:  # noqa: BLE001 - anything else still ends as one line, password redacted
        fail_with(exc, url)


async def _main(svc: SessionService, *, dry_run: bool, once: bool, pause: float, url: str) -> None:
    try:
        await svc.start()  # checks the schema (SchemaError names the command that fixes it)
        while True:
            try:
                result = await _round(svc, dry_run)
            except SessionStoreError as exc:
                if once:
                    raise
                # A long-running cleaner outlives a database restart: say so, try again next round.
                typer.echo(f"error: {scrub(str(exc), url)}", err=True)
            else:
                typer.echo(summary(result))
            if once:
                return
            await _sleep(pause)
    finally:
        await svc.close()


async def _round(svc: SessionService, dry_run: bool) -> CleanupResult:
    """One round; on a terminal with a progress bar, whose total comes from a dry run first."""
    if dry_run or not _interactive():
        return await svc.cleanup(dry_run=dry_run)
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    expected = await svc.cleanup(dry_run=True)
    if expected.skipped:
        return expected
    columns = (TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(file=sys.stdout)) as bar:
        task = bar.add_task("cleanup", total=expected.total or None)

        def progress(step: str, rows: int) -> None:
            if step in CLEANUP_STEPS:  # rows that the result counts
                bar.update(task, advance=rows, description=step)

        result = await svc.cleanup(progress=progress)
        bar.update(task, completed=result.total, total=max(result.total, 1), description="done")
    return result


def summary(result: CleanupResult) -> str:
    """The line printed after a round."""
    if result.skipped:
        return SKIPPED
    fields = {k: v for k, v in result.as_dict().items() if k not in ("dry_run", "skipped", "seconds")}
    head = "cleanup (dry run: nothing deleted)" if result.dry_run else "cleanup"
    return f"{head}: {' '.join(f'{k}={v}' for k, v in fields.items())} in {result.seconds:.2f}s"


def _interactive() -> bool:
    """Show a progress bar? Only when stdout is a terminal (tests patch this)."""
    return sys.stdout.isatty()


async def _sleep(seconds: float) -> None:
    """The pause between rounds (tests patch this)."""
    await asyncio.sleep(seconds)


def _event_limit(text: str) -> int | None:
    """--event-limit: a positive count, or none (keep every event)."""
    if text.strip().lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        usage_error(f"--event-limit must be a positive number or none, got {text!r}")


def _check_sqlite_file(url: str) -> None:
    """Connecting would create a missing SQLite file (empty): refuse a path that does not exist."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - open_service reports a bad URL
        return
    database = parsed.database or ""
    is_file = parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:")
    if is_file and not database.startswith("file:") and not Path(database).exists():
        usage_error(f"no SQLite database at {database}: check --url (sqlite:///relative/path or sqlite:////absolute/path)")
