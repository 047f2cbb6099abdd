"""How the command line reports a failure: one line on stderr, never a password.

Exit codes, the same for every command: 0 success; 1 a runtime failure (the
database could not be reached or refused, the schema is missing, ``db
check`` found the database behind or drifted); 2 a usage error (a missing
or malformed option, an unusable URL or option value: ``ConfigurationError``),
as click gives for an unknown option. A runtime failure prints the library's
own typed error, so one failure reads the same in every command.

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
from ..errors import ConfigurationError, SessionStoreError
from ..redaction import redact, url_password
from ..sql.errors import driver_error

T = TypeVar("T")

__all__ = ["RUNTIME_FAILURE", "USAGE_ERROR", "error_text", "fail", "fail_with", "run", "scrub", "usage_error"]

RUNTIME_FAILURE = 1
USAGE_ERROR = 2


def fail(message: str, url: str | None = None) -> NoReturn:
    """A runtime failure: print ``error: <first line>`` on stderr (password scrubbed) and exit 1."""
    typer.echo(f"error: {scrub(message, url)}", err=True)
    raise typer.Exit(RUNTIME_FAILURE)


def usage_error(message: str, url: str | None = None) -> NoReturn:
    """A usage error (the command line itself is wrong): ``error: …`` on stderr, exit 2."""
    typer.echo(f"error: {scrub(message, url)}", err=True)
    raise typer.Exit(USAGE_ERROR)


def fail_with(exc: BaseException, url: str) -> NoReturn:
    """Report `exc` as one line: a ConfigurationError is a usage error (2), anything else a
    runtime failure (1). The library's typed errors already name the redacted URL; anything
    else gets it appended, so the user knows which database answered."""
    text = error_text(exc)
    if isinstance(exc, ConfigurationError):
        usage_error(text, url)
    fail(text if isinstance(exc, SessionStoreError) else f"{text} ({redact(url)})", url)


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
    """Run an async action to completion; any failure becomes one ``error:`` line (see fail_with).

    A closed stdout (``sessionstore demo | head``) is not a failure of ours:
    BrokenPipeError goes up to click, which exits quietly.
    """
    try:
        return asyncio.run(action())
    except (typer.Exit, BrokenPipeError):
        raise
    except Exception as exc:  # noqa: BLE001 - the CLI turns every failure into one line
        fail_with(exc, url)
