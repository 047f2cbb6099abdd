"""The ``sessionstore`` command line: ``db …`` (the schema), ``cleanup`` (TTL), ``import adk``, ``demo``.

One typer app, assembled here from one module per command group:
``db`` (schema commands, docs/migrations.md), ``cleanup`` (docs/ttl.md),
``import_adk`` with ``adk_source`` (copy an ADK database, docs/adapters.md),
``options`` (the --url/--prefix/--schema every command shares, with defaults
read from ServiceOptions), ``revision`` (Alembic-style positional
revisions: ``upgrade head``, ``downgrade -1``), ``output`` (one-line errors,
exit 2, no password). Run it as ``sessionstore …`` or ``python -m sessionstore …``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ..demo import DEFAULT_URL
from ..demo import run as run_demo
from . import cleanup, db, import_adk
from .output import run

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

__all__ = ["app", "main"]


@app.callback()
def _root() -> None:
    """sessionstore command line."""


@app.command()
def demo(
    url: Annotated[str, typer.Option("--url", help="Database URL for the demo (not SESSIONSTORE_URL: "
                                                   "the demo writes rows).")] = DEFAULT_URL,
) -> None:
    """A short tour: sessions, events and the three state levels (run it twice to see the data persist)."""
    run(url, lambda: run_demo(url))


def main() -> None:
    """The console script ``sessionstore`` (pyproject) and ``python -m sessionstore``."""
    app()
