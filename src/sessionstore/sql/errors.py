"""Turning database errors into typed ones whose messages never show a password."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import DatabaseError, OutcomeUnknownError, PoolTimeoutError, SessionStoreError
from ..redaction import scrub

__all__ = ["ConnectionLost", "DatabaseError", "driver_error", "is_database_error", "translate_errors"]

_DRIVER_MODULES = frozenset({"asyncpg", "aiomysql", "pymysql", "aiosqlite", "sqlite3"})


class ConnectionLost(Exception):  # noqa: N818 - a signal to the retry loop, never raised to callers
    """Internal: the connection died under an operation (and has been discarded).

    `maybe_committed` is False when nothing can have been committed (the
    commit was never sent), so the operation may be rerun on a fresh
    connection; True when the commit may have reached the server, which
    becomes OutcomeUnknownError. `orig` is the driver's error.
    """

    def __init__(self, orig: BaseException, *, maybe_committed: bool) -> None:
        super().__init__(str(orig))
        self.orig = orig
        self.maybe_committed = maybe_committed


def is_database_error(exc: BaseException, dialect: Dialect | None = None) -> bool:
    """A driver's own error (our writes run on the driver connection) or SQLAlchemy's wrapper of one.

    With the dialect, also its DBAPI's error classes: what ``engine.raw_connection()``
    raises, which for asyncpg is SQLAlchemy's adapter of the driver's error.
    """
    if isinstance(exc, (DBAPIError, PoolTimeout, ConnectionLost, OSError, TimeoutError, asyncio.TimeoutError)):
        return True
    if dialect is not None and isinstance(exc, dialect.loaded_dbapi.Error):
        return True
    return type(exc).__module__.split(".", 1)[0] in _DRIVER_MODULES


@contextmanager
def translate_errors(engine: AsyncEngine) -> Iterator[None]:
    """Re-raise database errors as DatabaseError naming the redacted URL, password scrubbed.

    A pool that stays exhausted gives PoolTimeoutError, a connection lost while
    a write was committing OutcomeUnknownError (both DatabaseErrors). Our own
    typed errors pass through untouched. The driver's exception stays attached
    as __cause__ unless its text holds the password.
    """
    try:
        yield
    except SessionStoreError:
        raise
    except Exception as exc:
        if not is_database_error(exc, engine.dialect):
            raise
        kind, what = DatabaseError, "database error"
        if isinstance(exc, PoolTimeout):
            kind, what = PoolTimeoutError, "no pooled connection came free within pool_timeout"
        elif isinstance(exc, ConnectionLost):
            what = "connection lost"
            if exc.maybe_committed:
                kind, what = OutcomeUnknownError, "connection lost while committing; the write may or may not be stored"
        password = engine.url.password
        where = engine.url.render_as_string(hide_password=True)
        detail = scrub(f"{type(driver_error(exc)).__name__}: {driver_error(exc)}", password)
        cause = None if password and password in _chain_text(exc) else exc
        raise kind(f"{what} on {where}: {detail}") from cause


def driver_error(exc: BaseException) -> BaseException:
    """The driver's own exception under our and SQLAlchemy's wrappers (each keeps it as .orig)."""
    for _ in range(3):
        orig = getattr(exc, "orig", None)
        if not isinstance(orig, BaseException):
            break
        exc = orig
    return exc


def _chain_text(exc: BaseException | None) -> str:
    parts = []
    while exc is not None:
        parts += [str(exc), repr(exc)]
        exc = exc.__cause__ or exc.__context__
    return " ".join(parts)
