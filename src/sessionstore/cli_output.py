"""How the command line reports an error: one line on stderr, exit code 2, never a password."""

from __future__ import annotations

from typing import NoReturn

import typer
from sqlalchemy.engine import make_url

from .errors import SessionStoreError


def fail(message: str, url: str | None = None) -> NoReturn:
    typer.echo(f"error: {scrub(message, url)}", err=True)
    raise typer.Exit(2)


def scrub(message: str, url: str | None) -> str:
    """Never print a password, even if a driver echoes the URL back."""
    if url:
        try:
            password = make_url(url).password
        except Exception:  # noqa: BLE001 - not a URL: nothing to hide beyond what redact() does
            password = None
        if password:
            message = message.replace(str(password), "***")
    lines = message.strip().splitlines()
    return lines[0] if lines else message


def error_text(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    if orig is not None:
        return f"{type(orig).__name__}: {orig}"
    text = str(exc)
    return text if isinstance(exc, SessionStoreError) else f"{type(exc).__name__}: {text}" if text else type(exc).__name__
