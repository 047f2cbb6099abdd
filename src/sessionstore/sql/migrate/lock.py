"""The one connection a schema change runs on, holding the database-wide migration lock.

PostgreSQL: a session-level advisory lock, then one transaction (DDL is
transactional there, so a failed upgrade leaves nothing behind).
MySQL/MariaDB: ``GET_LOCK`` (DDL commits implicitly, statement by statement).
SQLite: a ``BEGIN IMMEDIATE`` transaction, which holds the database's write
lock; foreign keys are switched off around it (as SQLite's own ALTER TABLE
procedure prescribes) so a table rebuild cannot cascade-delete child rows,
and ``PRAGMA foreign_key_check`` must come back empty before the commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ...errors import SchemaError
from ..dialects import WRITE_OPTION, rules_for

LOCK_TIMEOUT_S = 300.0
"""How long a process waits for another one's migration before giving up."""


def migration_lock_name(table_prefix: str) -> str:
    """The named database lock every schema change of one prefix runs under."""
    return f"sessionstore-migrate-{table_prefix}"


def _sqlite_foreign_keys(sync_conn: Connection, on: bool) -> None:
    # Straight to the driver: through SQLAlchemy the statement would open a
    # transaction, inside which SQLite ignores this pragma.
    cursor = sync_conn.connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()


def _sqlite_foreign_key_check(sync_conn: Connection) -> None:
    problems = sync_conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if problems:
        shown = ", ".join(f"{row[0]} row {row[1]} -> {row[2]}" for row in problems[:5])
        raise SchemaError(f"the migration would leave rows pointing at missing parents ({shown}); nothing was changed")


@asynccontextmanager
async def migration_connection(
    engine: AsyncEngine, table_prefix: str, lock_timeout_s: float, url_shown: str
) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction, holding the migration lock for `table_prefix`."""
    rules = rules_for(engine.dialect.name)
    async with engine.connect() as conn:
        if not rules.has_named_locks:  # SQLite: the write lock is the migration lock
            await conn.run_sync(_sqlite_foreign_keys, False)
            try:
                await conn.execution_options(**{WRITE_OPTION: True})
                async with conn.begin():  # BEGIN IMMEDIATE: the write lock, until commit
                    yield conn
                    await conn.run_sync(_sqlite_foreign_key_check)
            finally:
                await conn.run_sync(_sqlite_foreign_keys, True)
            return

        name = migration_lock_name(table_prefix)
        try:
            await rules.lock(conn, name, lock_timeout_s)
            await conn.commit()
        except (TimeoutError, DBAPIError) as exc:
            raise SchemaError(
                f"could not take the migration lock {name!r} on {url_shown} within {lock_timeout_s:g}s: "
                f"another process is migrating this database ({_one_line(exc)})"
            ) from None
        try:
            async with conn.begin():
                yield conn
        finally:
            try:
                await rules.unlock(conn, name)
                await conn.commit()
            except Exception:  # noqa: BLE001 - closing the connection releases the lock anyway
                await conn.invalidate()


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


