"""Turning database errors into typed ones whose messages never show a password."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import DatabaseError, SessionStoreError
from ..redaction import scrub

__all__ = ["DatabaseError", "driver_error", "is_database_error", "translate_errors"]

_DRIVER_MODULES = frozenset({"asyncpg", "aiomysql", "pymysql", "aiosqlite", "sqlite3"})


def is_database_error(exc: BaseException) -> bool:
    """A driver's own error (our writes run on the driver connection) or SQLAlchemy's wrapper of one."""
    if isinstance(exc, (DBAPIError, ConnectionError, TimeoutError)):
        return True
    return type(exc).__module__.split(".", 1)[0] in _DRIVER_MODULES


@contextmanager
def translate_errors(engine: AsyncEngine) -> Iterator[None]:
    """Re-raise database errors as DatabaseError naming the redacted URL, password scrubbed.

    Our own typed errors pass through untouched. The driver's exception stays
    attached as __cause__ unless its text holds the password.
    """
    try:
        yield
    except SessionStoreError:
        raise
    except Exception as exc:
        if not is_database_error(exc):
            raise
        password = engine.url.password
        where = engine.url.render_as_string(hide_password=True)
        detail = scrub(f"{type(driver_error(exc)).__name__}: {driver_error(exc)}", password)
        cause = None if password and password in _chain_text(exc) else exc
        raise DatabaseError(f"database error on {where}: {detail}") from cause


def driver_error(exc: BaseException) -> BaseException:
    """The driver's exception behind a SQLAlchemy DBAPIError (or the exception itself)."""
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, BaseException) else exc


def _chain_text(exc: BaseException | None) -> str:
    parts = []
    while exc is not None:
        parts += [str(exc), repr(exc)]
        exc = exc.__cause__ or exc.__context__
    return " ".join(parts)
