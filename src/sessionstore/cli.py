"""The ``sessionstore`` command line.

``sessionstore db upgrade|downgrade|current|check|history|stamp`` manages the
schema (see docs/migrations.md). Every command takes ``--url`` (or the
SESSIONSTORE_URL environment variable), ``--prefix`` and ``--schema``.

Exit codes: 0 success; 1 ``check`` found the database behind or drifted;
2 an error (one line on stderr, password redacted).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from .sql import migrate as schema_api
from .cli_output import error_text, fail
from .cli_cleanup import register as _register_cleanup
from .errors import SessionStoreError
from .sql.engine import check_prefix, make_engine, redact
from .sql.models import DEFAULT_PREFIX

T = TypeVar("T")

app = typer.Typer(
    name="sessionstore",
    help="Durable conversation sessions for AI agents, in the database you already run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="Install, check, upgrade and roll back sessionstore's schema (its own Alembic migrations).",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")


@app.callback()
def _root() -> None:
    """sessionstore command line."""


UrlOption = Annotated[
    str,
    typer.Option(
        "--url", envvar="SESSIONSTORE_URL", show_envvar=True,
        help="Database URL: sqlite:///path, postgresql://user@host/db, mysql://user@host/db, mariadb://…",
    ),
]
PrefixOption = Annotated[str, typer.Option("--prefix", help="Table prefix (the version table is {prefix}alembic_version).")]
SchemaOption = Annotated[str | None, typer.Option("--schema", help="PostgreSQL schema holding the tables (must exist).")]
# For tests and for extending the scripts; users never need it.
ScriptsOption = Annotated[Path | None, typer.Option("--scripts", hidden=True, help="Another migration script directory.")]


# --------------------------------------------------------------------------- helpers


def _print_sql(url: str, **kw: Any) -> None:
    try:
        schema_api.offline_sql(url, output=sys.stdout, **kw)
        sys.stdout.flush()
    except BrokenPipeError:  # `… --sql | head`: the reader has seen enough
        sys.stdout = None  # type: ignore[assignment]  # nothing left to flush at exit
    except Exception as exc:  # noqa: BLE001
        fail(error_text(exc), url)


def _run(url: str, action: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(action())
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001 - the CLI turns every failure into one line
        fail(f"{error_text(exc)} ({redact(url)})" if not isinstance(exc, SessionStoreError) else error_text(exc), url)


def _with_engine(url: str, use: Callable[[Any], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
    async def action() -> T:
        engine = make_engine(url)
        try:
            return await use(engine)
        finally:
            await engine.dispose()

    return action


def _check_common(url: str | None, prefix: str) -> None:
    if not url:
        fail("no database URL: pass --url or set SESSIONSTORE_URL")
    try:
        check_prefix(prefix)
    except SessionStoreError as exc:
        fail(str(exc))


def _where(url: str, prefix: str, schema: str | None) -> str:
    return f"{redact(url)} (prefix {prefix}" + (f", schema {schema})" if schema else ")")


def _status(url: str, prefix: str, schema: str | None, scripts: Path | None) -> schema_api.SchemaStatus:
    return _run(url, _with_engine(url, lambda engine: schema_api.schema_status(
        engine, table_prefix=prefix, schema=schema, scripts=scripts)))


# --------------------------------------------------------------------------- commands


@db_app.command()
def upgrade(
    url: UrlOption = "",
    prefix: PrefixOption = DEFAULT_PREFIX,
    schema: SchemaOption = None,
    revision: Annotated[str, typer.Option("--revision", help="Target revision (or FROM:TO with --sql).")] = "head",
    sql: Annotated[bool, typer.Option("--sql", help="Print the DDL for review instead of running it; nothing connects.")] = False,
    scripts: ScriptsOption = None,
) -> None:
    """Install the schema, or upgrade it in place, to the newest revision (or --revision)."""
    _check_common(url, prefix)
    if sql:
        _print_sql(url, revision=revision, table_prefix=prefix, schema=schema, scripts=scripts)
        return
    before = _status(url, prefix, schema, scripts)
    _run(url, lambda: schema_api.migrate(url, table_prefix=prefix, schema=schema, revision=revision, scripts=scripts))
    after = _status(url, prefix, schema, scripts)
    if before.current == after.current:
        typer.echo(f"{_where(url, prefix, schema)} is already at revision {after.current}; nothing to do")
    else:
        typer.echo(f"upgraded {_where(url, prefix, schema)} from {before.current or 'an empty schema'} to {after.current}")


@db_app.command()
def downgrade(
    revision: Annotated[str, typer.Option("--revision", help="Target revision; 'base' drops every sessionstore table and its data.")],
    url: UrlOption = "",
    prefix: PrefixOption = DEFAULT_PREFIX,
    schema: SchemaOption = None,
    sql: Annotated[bool, typer.Option("--sql", help="Print the DDL instead of running it (needs --revision FROM:TO).")] = False,
    scripts: ScriptsOption = None,
) -> None:
    """Roll the schema back to --revision."""
    _check_common(url, prefix)
    if sql:
        _print_sql(url, revision=revision, table_prefix=prefix, schema=schema, downgrade=True, scripts=scripts)
        return
    before = _status(url, prefix, schema, scripts)
    _run(url, lambda: schema_api.downgrade(url, revision=revision, table_prefix=prefix, schema=schema, scripts=scripts))
    after = _status(url, prefix, schema, scripts)
    typer.echo(
        f"downgraded {_where(url, prefix, schema)} from {before.current or 'an empty schema'} "
        f"to {after.current or 'base (no sessionstore tables)'}"
    )


@db_app.command()
def current(
    url: UrlOption = "",
    prefix: PrefixOption = DEFAULT_PREFIX,
    schema: SchemaOption = None,
    scripts: ScriptsOption = None,
) -> None:
    """Print the database's revision ("none" when nothing is installed)."""
    _check_common(url, prefix)
    status = _status(url, prefix, schema, scripts)
    marker = {"ok": " (head)", "behind": f" (behind: head is {status.head})", "unknown": " (unknown to this sessionstore)"}
    typer.echo(f"{status.current or 'none'}{marker.get(status.kind, '')}")


@db_app.command()
def check(
    url: UrlOption = "",
    prefix: PrefixOption = DEFAULT_PREFIX,
    schema: SchemaOption = None,
    scripts: ScriptsOption = None,
) -> None:
    """Exit 1 if the database is behind the newest revision or differs from the models."""
    _check_common(url, prefix)
    status = _status(url, prefix, schema, scripts)
    if not status.ok:
        typer.echo(schema_api.explain_status(status, redact(url), prefix, schema))
        raise typer.Exit(1)

    async def drift(engine: Any) -> list[str]:
        found = await schema_api.check_drift(engine, table_prefix=prefix, schema=schema)
        return [schema_api.describe_diff(diff, engine.dialect) for diff in found]

    problems = _run(url, _with_engine(url, drift))
    if problems:
        typer.echo(f"{_where(url, prefix, schema)} is at revision {status.current} but differs from the models:")
        for line in problems:
            typer.echo(f"  - {line}")
        raise typer.Exit(1)
    typer.echo(f"ok: {_where(url, prefix, schema)} is at revision {status.current} (head) and matches the models")


@db_app.command()
def history(
    url: Annotated[str, typer.Option("--url", envvar="SESSIONSTORE_URL", help="Optional: mark the database's revision.")] = "",
    prefix: PrefixOption = DEFAULT_PREFIX,
    schema: SchemaOption = None,
    scripts: ScriptsOption = None,
) -> None:
    """List the revisions, newest first."""
    try:
        check_prefix(prefix)
    except SessionStoreError as exc:
        fail(str(exc))
    current_rev = _status(url, prefix, schema, scripts).current if url else None
    try:
        script = schema_api.script_directory(scripts)
        revisions = list(script.walk_revisions())
    except Exception as exc:  # noqa: BLE001
        fail(error_text(exc))
    heads = set(script.get_heads())
    for rev in revisions:
        marks = [m for m, on in (("head", rev.revision in heads), ("current", rev.revision == current_rev)) if on]
        title = (rev.doc or "").strip().splitlines()[0] if rev.doc else ""
        suffix = f" ({', '.join(marks)})" if marks else ""
        typer.echo(f"{rev.down_revision or '<base>'} -> {rev.revision}{suffix}: {title}")


@db_app.command()
def stamp(
    revision: Annotated[str, typer.Option("--revision", help="Revision to record (no migration runs).")],
    url: UrlOption = "",
    prefix: PrefixOption = DEFAULT_PREFIX,
    schema: SchemaOption = None,
    scripts: ScriptsOption = None,
) -> None:
    """Record --revision as the database's revision without running any migration."""
    _check_common(url, prefix)
    _run(url, lambda: schema_api.stamp(url, revision=revision, table_prefix=prefix, schema=schema, scripts=scripts))
    after = _status(url, prefix, schema, scripts)
    typer.echo(f"stamped {_where(url, prefix, schema)} at revision {after.current or 'base'}")


@app.command()
def demo(
    url: Annotated[str, typer.Option("--url", help="Database URL for the demo.")] = "sqlite:///.sessionstore/demo.db",
) -> None:
    """A short tour: sessions, events and the three state levels (run it twice to see the data persist)."""
    from .demo import run

    _run(url, lambda: run(url))


_register_cleanup(app)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
