"""Revisions typed the way Alembic users type them: ``upgrade head``, ``downgrade -1``, ``stamp base``.

The revision is a positional argument; ``--revision`` stays as the older
spelling. Click would read ``-1`` as an unknown short option, so the
revision commands are parsed with ``ignore_unknown_options`` and
``allow_extra_args`` (``REVISION_COMMAND``): whatever the parser does not
recognise lands among the arguments, and ``chosen_revision`` sorts it out.
A relative step (``-1``, ``+2``) is a revision; anything else starting with
``-`` is rejected with Click's own usage error (``No such option: --bogus``),
so a mistyped option still fails instead of being taken for a revision.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

REVISION_COMMAND: Mapping[str, Any] = {"ignore_unknown_options": True, "allow_extra_args": True}
"""The ``context_settings`` of a command that takes a REVISION argument."""

RevisionOption = Annotated[
    str | None, typer.Option("--revision", help="The same as REVISION (the older spelling; give one or the other).")
]

_RELATIVE = re.compile(r"^[+-]\d+$")

__all__ = ["REVISION_COMMAND", "RevisionOption", "chosen_revision", "relative_problem", "relative_step"]


def chosen_revision(ctx: typer.Context, positional: str | None, option: str | None, *, default: str | None = None) -> str:
    """The one revision the user gave, positionally or as ``--revision``; usage errors otherwise."""
    for token in ([positional] if positional is not None else []) + list(ctx.args):
        if token.startswith("-") and len(token) > 1 and relative_step(token) is None:
            name = token.split("=", 1)[0]
            known = [opt for param in ctx.command.params for opt in param.opts if opt.startswith("-")]
            close = difflib.get_close_matches(name, known, n=1)
            ctx.fail(f"No such option: {name}" + (f" (Did you mean {close[0]}?)" if close else ""))
    if ctx.args:
        ctx.fail(f"Got unexpected extra argument(s) ({' '.join(ctx.args)})")
    if positional is not None and option is not None and positional != option:
        ctx.fail(f"two different revisions given ({positional} and --revision {option}): give one")
    revision = positional if positional is not None else option if option is not None else default
    if revision is None:
        ctx.fail("Missing argument 'REVISION' (or --revision).")
    return revision


def relative_step(revision: str) -> int | None:
    """``-1`` -> -1, ``+2`` -> 2; None for anything that is not a relative step."""
    return int(revision) if _RELATIVE.match(revision) else None


def relative_problem(verb: str, step: int, current: str | None, script: ScriptDirectory) -> str | None:
    """Why ``verb step`` cannot run from `current` (None: it can, or Alembic will judge).

    Alembic's own complaint ("Relative revision -2 didn't produce 2
    migrations") does not say where the database stands or which way to go;
    this does. The revision history is linear (one head), newest first.
    """
    chain = [rev.revision for rev in script.walk_revisions()]
    if current is not None and current not in chain:
        return None  # a revision these scripts do not know: the status check reports it
    newer = chain.index(current) if current is not None else len(chain)
    where = f"revision {current}" if current is not None else "base (nothing installed)"
    if verb == "upgrade":
        if step < 0:
            return f"upgrade {step} would go back: use `sessionstore db downgrade {step}`"
        if step > newer:
            return f"cannot upgrade +{step} from {where}: " + (
                f"only {newer} newer revision(s) exist" if newer else "it is the newest revision (head)"
            )
    elif verb == "downgrade":
        if step > 0:
            return f"downgrade +{step} would go forward: use `sessionstore db upgrade +{step}`"
        older = len(chain) - newer  # steps down to base, the current revision's own included
        if current is None:
            return f"cannot downgrade {step}: nothing is installed (the database is at base)"
        if -step > older:
            return f"cannot downgrade {step} from {where}: only {older} step(s) down to base"
    return None
