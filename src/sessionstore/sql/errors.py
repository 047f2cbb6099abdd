"""Turning driver errors into messages that never show a password."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import SessionStoreError


class DatabaseError(SessionStoreError):
    """The database could not be reached or refused the operation. The URL is shown redacted."""


@contextmanager
def translate_errors(engine: AsyncEngine) -> Iterator[None]:
    """Re-raise connection-level driver errors as DatabaseError with any password scrubbed.

    Other errors pass through (with the password scrubbed from their text if it appears).
    """
    password = engine.url.password
    try:
        yield
    except (OperationalError, InterfaceError, OSError) as exc:
        where = engine.url.render_as_string(hide_password=True)
        detail = _scrub(str(getattr(exc, "orig", None) or exc), password)
        raise DatabaseError(f"database error on {where}: {detail}") from None
    except DBAPIError as exc:
        if password and password in str(exc):
            raise DatabaseError(_scrub(str(exc), password)) from None
        raise


def _scrub(text: str, password: str | None) -> str:
    return text.replace(password, "***") if password else text
