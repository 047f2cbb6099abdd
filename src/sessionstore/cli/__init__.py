"""The ``sessionstore`` command line: ``chat``, ``db …`` (the schema), ``cleanup`` (TTL), ``import adk``, ``demo``.

One typer app, assembled here from one module per command group:
``chat`` (docs/chat.md), ``db`` (schema commands, docs/migrations.md), ``cleanup`` (docs/ttl.md),
``import_adk`` with ``adk_source`` (copy an ADK database, docs/adapters.md),
``options`` (the --url/--prefix/--schema every command shares, with defaults
read from ServiceOptions), ``revision`` (Alembic-style positional
revisions: ``upgrade head``, ``downgrade -1``), ``output`` (one-line errors,
exit 1 for runtime failures and 2 for usage errors, no password). Run it as ``sessionstore …`` or ``python -m sessionstore …``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import demo as demo_script
from ..agent import has_openai_key
from . import chat, cleanup, db, import_adk

app = typer.Typer(
    name="sessionstore",
    help="Durable conversation sessions for AI agents, in the database you already run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(import_adk.app, name="import")
cleanup.register(app)
chat.register(app)

__all__ = ["app", "main"]


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"sessionstore {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True, help="Print the version and exit.",
    )] = False,
) -> None:
    """sessionstore command line.

    Exit codes: 0 success, 1 a runtime failure (or `db check` found problems), 2 a usage error.
    """


@app.command()
def demo(
    url: Annotated[str, typer.Option("--url", help="Database URL for the demo (not SESSIONSTORE_URL: "
                                                   "the demo writes rows).")] = chat.DEFAULT_URL,
) -> None:
    """A short scripted conversation in `sessionstore chat`, then how to talk to it yourself."""
    errors = chat.run_chat(url, demo_script.DEMO_USER, "demo-intro", script=demo_script.SCRIPT)
    typer.echo(demo_script.afterword(url, chat.DEFAULT_URL, offline=not has_openai_key()))
    if errors:
        raise typer.Exit(1)


def main() -> None:
    """The console script ``sessionstore`` (pyproject) and ``python -m sessionstore``."""
    app()
