"""Write transactions on the driver's own connection, with explicit SQL.

Appends are the hot path; through SQLAlchemy's execution layer they ran at a
third of the raw driver's rate. So the service's writes check a connection out
of the engine's pool and run hand-written SQL (``sql/writes.py``) on the driver
connection underneath (asyncpg, aiomysql, aiosqlite). Reads, listing, cleanup
and migrations stay on SQLAlchemy Core.

Each driver gets a small DriverTx adapter: how it begins, commits and rolls
back, how it runs a statement, and how it wants datetimes. SQL is written once
with ``:name`` parameters and compiled to the driver's parameter style.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Mapping,
)
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar

import aiosqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from .aiosqlite_fence import check_aiosqlite

check_aiosqlite(aiosqlite.Connection)

T = TypeVar("T")
_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


class NativeSQL:
    """One statement: SQL with :name parameters, compiled to a driver's parameter style."""

    __slots__ = ("text", "names")

    def __init__(self, sql: str, style: str) -> None:
        names: list[str] = []

        def placeholder(match: re.Match[str]) -> str:
            name = match.group(1)
            if style == "dollar":  # numbered: a name used twice is one parameter
                if name not in names:
                    names.append(name)
                return f"${names.index(name) + 1}"
            names.append(name)
            return "%s" if style == "format" else "?"

        self.text = _NAMED.sub(placeholder, " ".join(sql.split()))
        self.names = tuple(names)

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]


class DriverRow(Protocol):
    """A row as a driver returns it, read by position: asyncpg's Record, a tuple (aiomysql, sqlite3)."""

    def __getitem__(self, index: int, /) -> Any: ...


class DriverTx:
    """One write transaction on one driver connection."""

    style = ""

    def __init__(self, conn: Any) -> None:
        self.conn = conn  # the driver's own connection; asyncpg and aiomysql ship no types

    async def begin(self) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...
    async def fetchone(self, stmt: NativeSQL, params: Mapping[str, Any]) -> DriverRow | None: ...
    async def execute(self, stmt: NativeSQL, params: Mapping[str, Any]) -> None: ...

    async def update_for_id(self, stmt: NativeSQL, params: Mapping[str, Any]) -> int | None:
        """Run an UPDATE setting LAST_INSERT_ID(expr) on one row: that value, or None if no row matched."""
        raise NotImplementedError

    @staticmethod
    def time(value: datetime | None) -> datetime | str | None:
        """A UTC datetime as this driver stores it (see sql/column_types.UTCDateTime)."""
        return value


class AsyncpgTx(DriverTx):
    style = "dollar"

    async def begin(self) -> None:
        self.tx = self.conn.transaction()
        await self.tx.start()

    async def commit(self) -> None:
        await self.tx.commit()

    async def rollback(self) -> None:
        await self.tx.rollback()

    async def fetchone(self, stmt: NativeSQL, params: Mapping[str, Any]) -> DriverRow | None:
        row: DriverRow | None = await self.conn.fetchrow(stmt.text, *stmt.args(params))
        return row

    async def execute(self, stmt: NativeSQL, params: Mapping[str, Any]) -> None:
        await self.conn.execute(stmt.text, *stmt.args(params))


class AiomysqlTx(DriverTx):
    """aiomysql connections run with autocommit off: the first statement opens the transaction."""

    style = "format"

    async def begin(self) -> None:
        self.cursor = await self.conn.cursor()

    async def commit(self) -> None:
        await self.conn.commit()
        await self.cursor.close()

    async def rollback(self) -> None:
        await self.conn.rollback()
        await self.cursor.close()

    async def fetchone(self, stmt: NativeSQL, params: Mapping[str, Any]) -> DriverRow | None:
        await self.cursor.execute(stmt.text, stmt.args(params))
        row: DriverRow | None = await self.cursor.fetchone()
        return row

    async def execute(self, stmt: NativeSQL, params: Mapping[str, Any]) -> None:
        await self.cursor.execute(stmt.text, stmt.args(params))

    async def update_for_id(self, stmt: NativeSQL, params: Mapping[str, Any]) -> int | None:
        await self.cursor.execute(stmt.text, stmt.args(params))
        return self.cursor.lastrowid if self.cursor.rowcount == 1 else None

    @staticmethod
    def time(value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(timezone.utc).replace(tzinfo=None)


class AiosqliteTx(DriverTx):
    """Our SQLite connections run with pysqlite's implicit transactions off (see dialects.py).

    Each aiosqlite call is a hop to the connection's worker thread. So a whole
    transaction runs in one hop: `run` hands the transaction's coroutine to
    that thread, where this class's methods call sqlite3 directly and never
    suspend, so the coroutine runs to its end in one go.
    """

    style = "qmark"
    conn: aiosqlite.Connection

    async def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    async def commit(self) -> None:
        self.db.execute("COMMIT")

    async def rollback(self) -> None:
        self.db.execute("ROLLBACK")

    async def fetchone(self, stmt: NativeSQL, params: Mapping[str, Any]) -> DriverRow | None:
        row: DriverRow | None = self.db.execute(stmt.text, stmt.args(params)).fetchone()
        return row

    async def execute(self, stmt: NativeSQL, params: Mapping[str, Any]) -> None:
        self.db.execute(stmt.text, stmt.args(params))

    @property
    def db(self) -> sqlite3.Connection:
        """The sqlite3 connection inside aiosqlite (only touched on its worker thread)."""
        return self.conn._conn

    @staticmethod
    def time(value: datetime | None) -> str | None:
        # The text SQLAlchemy's SQLite DateTime writes, so both paths compare alike.
        return None if value is None else value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")

    async def run(self, work: Callable[[DriverTx], Awaitable[T]]) -> T:
        """Run begin, work, commit (or rollback) on the worker thread, in one hop."""
        # _execute is private and unannotated (see aiosqlite_fence.py); it returns what _run_to_end does.
        result: T = await self.conn._execute(_run_to_end, self._transaction(work))  # type: ignore[no-untyped-call]
        return result

    async def _transaction(self, work: Callable[[DriverTx], Awaitable[T]]) -> T:
        await self.begin()
        try:
            result = await work(self)
            await self.commit()
        except BaseException:
            await self.rollback()
            raise
        return result


def _run_to_end(coro: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine that never suspends to its result (on aiosqlite's thread)."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value  # a coroutine's return value travels on its StopIteration
        return result
    coro.close()
    raise RuntimeError("a SQLite write transaction awaited something other than the database")


DRIVER_TX: dict[str, type[DriverTx]] = {"postgresql": AsyncpgTx, "mysql": AiomysqlTx, "sqlite": AiosqliteTx}


async def run_transaction(engine: AsyncEngine, tx_class: type[DriverTx], work: Callable[[DriverTx], Awaitable[T]]) -> T:
    """Run `work` in one write transaction on a pooled driver connection."""
    if tx_class is AiosqliteTx:
        pooled = await engine.raw_connection()
        try:
            return await AiosqliteTx(pooled.driver_connection).run(work)
        finally:
            await greenlet_spawn(pooled.close)
    async with driver_transaction(engine, tx_class) as tx:
        return await work(tx)


async def driver_fetchone(
    engine: AsyncEngine, tx_class: type[DriverTx], stmt: NativeSQL, params: Mapping[str, Any]
) -> DriverRow | None:
    """Run one statement on its own (the database commits it as it runs) and return its first row."""
    pooled = await engine.raw_connection()
    try:
        return await tx_class(pooled.driver_connection).fetchone(stmt, params)
    finally:
        await greenlet_spawn(pooled.close)


@asynccontextmanager
async def driver_transaction(engine: AsyncEngine, tx_class: type[DriverTx]) -> AsyncIterator[DriverTx]:
    """Check out a pooled connection, run one transaction on its driver connection, return it.

    The transaction always ends here (commit, or rollback on any error or
    cancellation); a connection whose rollback fails is discarded, never
    returned to the pool mid-transaction.
    """
    pooled = await engine.raw_connection()
    try:
        tx = tx_class(pooled.driver_connection)
        await tx.begin()
        try:
            yield tx
            await tx.commit()
        except BaseException:
            try:
                await tx.rollback()
            except BaseException:  # noqa: BLE001 - whatever stopped the rollback, the connection is discarded
                pooled.invalidate()
            raise
    finally:
        await greenlet_spawn(pooled.close)
