"""Turning database errors into typed ones whose messages never show a password."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import DatabaseError, OutcomeUnknownError, PoolTimeoutError, SessionStoreError
from ..redaction import scrub

__all__ = [
    "ConnectionLost", "DatabaseError", "Problem", "database_error", "driver_error", "is_database_error", "translate_errors",
]

Problem = tuple[str, str]
"""What went wrong in plain words, and the likely fix: ("connection refused", "is the server running …?")."""

Explain = Callable[[BaseException], "Problem | None"]
"""A dialect's reading of its driver's errors (DialectRules.connection_problem)."""

_DRIVER_MODULES = frozenset({"asyncpg", "psycopg", "aiomysql", "pymysql", "aiosqlite", "sqlite3"})


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
def translate_errors(engine: AsyncEngine, explain: Explain | None = None) -> Iterator[None]:
    """Re-raise database errors as DatabaseError naming the redacted URL, password scrubbed.

    A pool that stays exhausted gives PoolTimeoutError, a connection lost while
    a write was committing OutcomeUnknownError (both DatabaseErrors). Our own
    typed errors pass through untouched. The driver's exception stays attached
    as __cause__ unless its text holds the password. A failure to connect
    (refused, unknown host, TLS, bad credentials, unknown database, a SQLite
    file that cannot be opened or written) is said in plain words with its
    likely fix; `explain` reads the dialect's own error codes.
    """
    try:
        yield
    except SessionStoreError:
        raise
    except Exception as exc:
        if not is_database_error(exc, engine.dialect):
            raise
        raise database_error(engine, exc, explain) from _cause(engine, exc)


def database_error(engine: AsyncEngine, exc: BaseException, explain: Explain | None = None) -> DatabaseError:
    """The typed error for a database failure `exc` on `engine` (see translate_errors)."""
    kind, what = DatabaseError, "database error"
    if isinstance(exc, PoolTimeout):
        kind, what = PoolTimeoutError, "no pooled connection came free within pool_timeout"
    elif isinstance(exc, ConnectionLost):
        what = "connection lost"
        if exc.maybe_committed:
            kind, what = OutcomeUnknownError, "connection lost while committing; the write may or may not be stored"
    password = engine.url.password
    where = engine.url.render_as_string(hide_password=True)
    detail = scrub(_first_line(f"{type(driver_error(exc)).__name__}: {driver_error(exc)}"), password)
    problem = connection_problem(exc, engine, explain) if kind is DatabaseError else None
    if problem is not None:
        reason, fix = problem
        return DatabaseError(scrub(f"{reason} on {where}: {fix} ({detail})", password))
    return kind(f"{what} on {where}: {detail}")


def _cause(engine: AsyncEngine, exc: BaseException) -> BaseException | None:
    password = engine.url.password
    return None if password and password in _chain_text(exc) else exc


def connection_problem(exc: BaseException, engine: AsyncEngine, explain: Explain | None = None) -> Problem | None:
    """Plain words and the likely fix for a failure to connect, or None if `exc` is something else.

    Looks at the whole chain (our wrapper, SQLAlchemy's, the driver's, and the
    OS error a driver raised its own from): a name lookup, a refusal, a TLS
    failure or a timeout are OS errors whatever the driver; the rest is read
    by `explain` from the dialect's error codes.
    """
    url = engine.url
    host = url.host or "localhost"
    where = f"{host}:{url.port}" if url.port else host
    for err in _chain(exc):
        if isinstance(err, socket.gaierror):
            return (f"the host {host!r} was not found (DNS)", "check the host name in the URL, and that this machine can resolve it")
        if _is_tls_failure(err):
            return ("the TLS (SSL) connection failed",
                    "check the URL's ssl/sslmode options against the server's TLS setup and the CA certificate it needs")
        if isinstance(err, ConnectionRefusedError):
            return ("connection refused", f"is the server running and accepting connections on {where}?")
        if isinstance(err, (TimeoutError, asyncio.TimeoutError, socket.timeout)) and not isinstance(exc, PoolTimeout):
            return ("no answer from the server", f"check that {where} is the right host and port, and that no firewall drops traffic")
    if explain is not None:
        for err in _chain(exc):
            problem = explain(err)
            if problem is not None:
                return problem
    return None


def _is_tls_failure(err: BaseException) -> bool:
    """An OS-level TLS error, or a driver's refusal to set TLS up (asyncpg's ClientConfigurationError
    for a missing CA file, its "rejected SSL upgrade"). Never a database's own error, whose
    text may quote stored values."""
    if isinstance(err, ssl.SSLError):
        return True
    text = str(err).lower()
    tls_words = "ssl" in text or "certificate" in text or "tls" in text
    return tls_words and (isinstance(err, OSError) or type(err).__name__ == "ClientConfigurationError")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, what it wraps (.orig) and what it was raised from or during, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        err = todo.pop(0)
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        yield err
        orig = getattr(err, "orig", None)
        todo += [orig if isinstance(orig, BaseException) else None, err.__cause__, err.__context__]


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else text


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
