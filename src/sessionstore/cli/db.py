"""``sessionstore db upgrade|downgrade|current|check|history|stamp``: the schema (docs/migrations.md).

Revisions are written as Alembic users write them: ``upgrade`` (head),
``upgrade +1``, ``downgrade -1``, ``downgrade base``, ``stamp head``;
``--revision R`` is the older spelling of the same argument.

Exit codes: 0 success; 1 a runtime failure, or ``check`` found the database
behind or drifted; 2 a usage error (one line on stderr, password redacted;
see cli/output.py).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import SessionStoreError
from ..redaction import redact
from ..sql import migrate as migrations
from ..sql.engine import check_prefix, make_engine, rules_of
from ..sql.errors import translate_errors
from .options import DEFAULT_PREFIX, PrefixOption, SchemaOption, UrlOption, check_target
from .output import error_text, fail, fail_with, run, usage_error
from .revision import (
    REVISION_COMMAND,
    RevisionOption,
    chosen_revision,
    relative_problem,
    relative_step,
)

T = TypeVar("T")

app = typer.Typer(
    help="Install, check, upgrade and roll back sessionstore's schema (its own Alembic migrations).",
    no_args_is_help=True,
)

# For tests and for extending the scripts; users never need it.
ScriptsOption = Annotated[Path | None, typer.Option("--scripts", hidden=True, help="Another migration script directory.")]
SqlOption = Annotated[bool, typer.Option("--sql", help="Print the DDL for review instead of running it; nothing connects.")]

__all__ = ["app"]


# --------------------------------------------------------------------------- helpers


def _print_sql(url: str, revision: str, prefix: str, schema: str | None, scripts: Path | None, downgrade: bool) -> None:
    try:
        migrations.offline_sql(
            url, output=sys.stdout, revision=revision, table_prefix=prefix, schema=schema,
            downgrade=downgrade, scripts=scripts,
        )
        sys.stdout.flush()
    except BrokenPipeError:  # `… --sql | head`: the reader has seen enough
        sys.stdout = None  # nothing left to flush at exit
    except Exception as exc:  # noqa: BLE001
        fail_with(exc, url)


def _with_engine(url: str, use: Callable[[AsyncEngine], Awaitable[T]]) -> Callable[[], Coroutine[Any, Any, T]]:
    async def action() -> T:
        engine = make_engine(url)
        try:
            with translate_errors(engine, rules_of(engine).connection_problem):
                return await use(engine)
        finally:
            await engine.dispose()

    return action


def _where(url: str, prefix: str, schema: str | None) -> str:
    return f"{redact(url)} (prefix {prefix}" + (f", schema {schema})" if schema else ")")


def _status(url: str, prefix: str, schema: str | None, scripts: Path | None) -> migrations.SchemaStatus:
    return run(url, _with_engine(url, lambda engine: migrations.schema_status(
        engine, table_prefix=prefix, schema=schema, scripts=scripts)))


def _check_relative(verb: str, revision: str, current: str | None, scripts: Path | None) -> None:
    """Refuse a relative step that goes the wrong way or past either end, saying where the database is."""
    step = relative_step(revision)
    if step is not None:
        problem = relative_problem(verb, step, current, migrations.script_directory(scripts))
        if problem:
            usage_error(problem)


# --------------------------------------------------------------------------- commands


@app.command(context_settings=dict(REVISION_COMMAND))
def upgrade(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Argument(
        metavar="REVISION", show_default=False,
        help="Where to go: head (the default), a revision id, +N steps, or FROM:TO with --sql.",
    )] = None,
    url: UrlOption = "",
    prefix: PrefixOption = DEFAULT_PREFIX,
    schema: SchemaOption = None,
    revision_option: RevisionOption = None,
    sql: SqlOption = False,
    scripts: ScriptsOption = None,
    partition_events: Annotated[int | None, typer.Option(
        "--partition-events", metavar="N", min=1, show_default=False,
        help="PostgreSQL, at install: range-partition events by session, N sessions per partition "
        "(retention then drops whole partitions; docs/scaling.md).",
    )] = None,
) -> None:
    """Install the schema, or upgrade it in place, to the newest revision (or REVISION)."""
    revision = chosen_revision(ctx, target, revision_option, default="head")
    check_target(url, prefix)
    if sql:
        _print_sql(url, revision, prefix, schema, scripts, downgrade=False)
        return
    before = _status(url, prefix, schema, scripts)
    _check_relative("upgrade", revision, before.current, scripts)
    run(url, lambda: migrations.migrate(
        url, table_prefix=prefix, schema=schema, revision=revision, scripts=scripts, partition_events=partition_events,
    ))
    after = _status(url, prefix, schema, scripts)
    if before.current == after.current:
        at = after.current or "base (nothing installed)"
        typer.echo(f"{_where(url, prefix, schema)} is already at revision {at}; nothing to do")
    else:
        typer.echo(f"upgraded {_where(url, prefix, schema)} from {before.current or 'an empty schema'} to {after.current}")


@app.command(context_settings=dict(REVISION_COMMAND))
def downgrade(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Argument(
        metavar="REVISION", show_default=False,
        help="Where to go: a revision id, -N steps, or base (drops every sessionstore table and its data); "
        "FROM:TO with --sql.",
    )] = None,
    url: UrlOption = "",
    prefix: PrefixOption = DEFAULT_PREFIX,
    schema: SchemaOption = None,
    revision_option: RevisionOption = None,
    sql: SqlOption = False,
    scripts: ScriptsOption = None,
) -> None:
    """Roll the schema back to REVISION (base: remove sessionstore's tables and data)."""
    revision = chosen_revision(ctx, target, revision_option)
    check_target(url, prefix)
    if sql:
        _print_sql(url, revision, prefix, schema, scripts, downgrade=True)
        return
    before = _status(url, prefix, schema, scripts)
    _check_relative("downgrade", revision, before.current, scripts)
    run(url, lambda: migrations.downgrade(url, revision=revision, table_prefix=prefix, schema=schema, scripts=scripts))
    after = _status(url, prefix, schema, scripts)
    typer.echo(
        f"downgraded {_where(url, prefix, schema)} from {before.current or 'an empty schema'} "
        f"to {after.current or 'base (no sessionstore tables)'}"
    )


@app.command(context_settings=dict(REVISION_COMMAND))
def stamp(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Argument(
        metavar="REVISION", show_default=False, help="The revision to record: an id, head or base.",
    )] = None,
    url: UrlOption = "",
    prefix: PrefixOption = DEFAULT_PREFIX,
    schema: SchemaOption = None,
    revision_option: RevisionOption = None,
    scripts: ScriptsOption = None,
) -> None:
    """Record REVISION as the database's revision without running any migration."""
    revision = chosen_revision(ctx, target, revision_option)
    check_target(url, prefix)
    if relative_step(revision) is not None:
        usage_error(f"stamp records a revision id, head or base; a relative step like {revision} is for upgrade and downgrade")
    run(url, lambda: migrations.stamp(url, revision=revision, table_prefix=prefix, schema=schema, scripts=scripts))
    after = _status(url, prefix, schema, scripts)
    typer.echo(f"stamped {_where(url, prefix, schema)} at revision {after.current or 'base'}")


@app.command()
def current(
    url: UrlOption = "",
    prefix: PrefixOption = DEFAULT_PREFIX,
    schema: SchemaOption = None,
    scripts: ScriptsOption = None,
) -> None:
    """Print the database's revision ("none" when nothing is installed)."""
    check_target(url, prefix)
    status = _status(url, prefix, schema, scripts)
    marker = {"ok": " (head)", "behind": f" (behind: head is {status.head})", "unknown": " (unknown to this sessionstore)"}
    typer.echo(f"{status.current or 'none'}{marker.get(status.kind, '')}")


@app.command()
def check(
    url: UrlOption = "",
    prefix: PrefixOption = DEFAULT_PREFIX,
    schema: SchemaOption = None,
    scripts: ScriptsOption = None,
) -> None:
    """Exit 1 if the database is behind the newest revision or differs from the models."""
    check_target(url, prefix)
    status = _status(url, prefix, schema, scripts)
    if not status.ok:
        typer.echo(migrations.explain_status(status, redact(url), prefix, schema))
        raise typer.Exit(1)

    async def drift(engine: AsyncEngine) -> list[str]:
        found = await migrations.check_drift(engine, table_prefix=prefix, schema=schema)
        return [migrations.describe_diff(diff, engine.dialect) for diff in found]

    problems = run(url, _with_engine(url, drift))
    if problems:
        typer.echo(f"{_where(url, prefix, schema)} is at revision {status.current} but differs from the models:")
        for line in problems:
            typer.echo(f"  - {line}")
        raise typer.Exit(1)
    typer.echo(f"ok: {_where(url, prefix, schema)} is at revision {status.current} (head) and matches the models")


@app.command()
def history(
    url: UrlOption = "",
    prefix: PrefixOption = DEFAULT_PREFIX,
    schema: SchemaOption = None,
    scripts: ScriptsOption = None,
) -> None:
    """List the revisions, newest first (with a URL, mark the database's current one)."""
    try:
        check_prefix(prefix)
    except SessionStoreError as exc:
        usage_error(str(exc))
    current_rev = _status(url, prefix, schema, scripts).current if url else None
    try:
        script = migrations.script_directory(scripts)
        revisions = list(script.walk_revisions())
        heads = set(script.get_heads())
    except Exception as exc:  # noqa: BLE001
        fail(error_text(exc))
    for rev in revisions:
        marks = [m for m, on in (("head", rev.revision in heads), ("current", rev.revision == current_rev)) if on]
        title = (rev.doc or "").strip().splitlines()[0] if rev.doc else ""
        suffix = f" ({', '.join(marks)})" if marks else ""
        typer.echo(f"{rev.down_revision or '<base>'} -> {rev.revision}{suffix}: {title}")
