"""How the command line reports a failure: one line on stderr, exit code 2, never a password.

URLs are shown through the library's own redactor (``sessionstore.redaction``).
``scrub`` is the last line of defence for text the CLI did not write, a
driver's message that might echo the password back; it lives here only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import typer

from .. import redaction
from ..errors import SessionStoreError
from ..redaction import redact, url_password
from ..sql.errors import driver_error

T = TypeVar("T")

__all__ = ["error_text", "fail", "run", "scrub"]


def fail(message: str, url: str | None = None) -> NoReturn:
    """Print ``error: <first line>`` on stderr (password scrubbed) and exit 2."""
    typer.echo(f"error: {scrub(message, url)}", err=True)
    raise typer.Exit(2)


def scrub(message: str, url: str | None) -> str:
    """The first line of `message`, with `url`'s password (if any) replaced by ***."""
    message = redaction.scrub(message, url_password(url))
    lines = message.strip().splitlines()
    return lines[0] if lines else message


def error_text(exc: BaseException) -> str:
    """The driver's own error when SQLAlchemy wrapped one; our typed errors as they are."""
    orig = driver_error(exc)
    if orig is not exc:
        return f"{type(orig).__name__}: {orig}"
    text = str(exc)
    if isinstance(exc, SessionStoreError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run(url: str, action: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an async action to completion; any failure becomes one ``error:`` line (exit 2).

    The library's typed errors already name the redacted URL; anything else
    gets it appended, so the user knows which database answered.
    """
    try:
        return asyncio.run(action())
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001 - the CLI turns every failure into one line
        text = error_text(exc)
        fail(text if isinstance(exc, SessionStoreError) else f"{text} ({redact(url)})", url)
