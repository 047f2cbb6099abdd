"""Write transactions on the driver's own connection, with explicit SQL.

Appends are the hot path; through SQLAlchemy's execution layer they ran at a
third of the raw driver's rate. So the service's writes check a connection out
of the engine's pool and run hand-written SQL (``sql/writes.py``) on the driver
connection underneath (asyncpg, aiomysql, aiosqlite). Reads, listing, cleanup
and migrations stay on SQLAlchemy Core.

Each driver gets a small DriverTx adapter: how it begins, commits and rolls
back, how it runs a statement (and a transaction's last statements with its
COMMIT: one round trip on MySQL/MariaDB), and how it wants datetimes. SQL is written once
with ``:name`` parameters and compiled to the driver's parameter style.

A connection is leased (`leased`) and goes back to the pool only when it is
known to be clean: its transaction committed, or rolled back after an error
or a cancellation and the driver then reporting no open transaction. Anything
else (a rollback that fails or is itself cancelled, a connection the server
dropped, a SQLite transaction still running on its thread) discards it, and
the pool makes a new one; the server rolls back what a discarded connection
left open. Cancellation is routine (a client goes away, a timeout, a
TaskGroup failing), so it may land on any await here.

A connection found dead is raised as ConnectionLost, which says whether the
commit can have reached the server: when it cannot, the service reruns the
write once on a connection checked with a round trip (`verify`).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from time import monotonic
from typing import Any, Protocol, TypeVar

import aiosqlite
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import greenlet_spawn

from .aiosqlite_fence import check_aiosqlite
from .errors import ConnectionLost, is_database_error
from .held import Lease, give_back, held_for, release_held

check_aiosqlite(aiosqlite.Connection)

T = TypeVar("T")
_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")

RESET_TIMEOUT_S = 5.0
"""Longest wait for the rollback after an error or a cancellation; a server that does not
answer by then is not waited for (the connection is discarded), so a cancelled caller is
never held for long."""


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


Step = tuple[NativeSQL, Mapping[str, Any]]
"""A statement and its parameters."""


class DriverRow(Protocol):
    """A row as a driver returns it, read by position: asyncpg's Record, a tuple (aiomysql, sqlite3)."""

    def __getitem__(self, index: int, /) -> Any: ...


class DriverTx:
    """One write transaction on one driver connection."""

    style = ""

    def __init__(self, conn: Any) -> None:
        self.conn = conn  # the driver's own connection; asyncpg and aiomysql ship no types
        self.commit_sent = False
        """Set once a COMMIT (or a statement that commits itself) may have reached the server."""
        self.abandoned = False
        """Set when the connection must not be reused whatever it reports (see AiosqliteTx.run)."""
        self.committed = False
        """Set once `execute_and_commit` has committed the transaction (nothing is left to commit)."""

    async def begin(self) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...
    async def fetchone(self, stmt: NativeSQL, params: Mapping[str, Any]) -> DriverRow | None: ...
    async def execute(self, stmt: NativeSQL, params: Mapping[str, Any]) -> None: ...

    async def execute_and_commit(self, steps: Sequence[Step]) -> None:
        """Run a transaction's last statements, in order, and commit it. If one fails, the
        error is raised and nothing is committed (the caller's reset rolls back)."""
        for stmt, params in steps:
            await self.execute(stmt, params)
        await self.commit()
        self.committed = True

    def is_closed(self) -> bool:
        """Is the connection known to be gone (dropped by the server, or closed by the driver)?"""
        return False

    def in_transaction(self) -> bool:
        """Does the driver report a transaction open on the connection?"""
        raise NotImplementedError

    async def reset(self, error: BaseException) -> None:
        """End whatever transaction `error` (or a cancellation) left open (a no-op if none is)."""
        await self.rollback()

    async def ping(self) -> None:
        """One round trip; raises if the connection is dead."""

    async def update_for_id(self, stmt: NativeSQL, params: Mapping[str, Any]) -> int | None:
        """Run an UPDATE setting LAST_INSERT_ID(expr) on one row: that value, or None if no row matched."""
        raise NotImplementedError

    async def read(self, stmt: NativeSQL, params: Mapping[str, Any]) -> list[DriverRow]:
        """Run one SELECT outside any transaction of ours (one statement: one snapshot); all its rows."""
        raise NotImplementedError

    async def read_sets(self, stmt: NativeSQL, params: Mapping[str, Any], count: int) -> list[list[DriverRow]]:
        """Run a batch of `count` SELECTs sent as one query (sql/batched_reads.py) in one
        snapshot, outside any transaction of ours; the rows of each, in order. MySQL/MariaDB."""
        raise NotImplementedError

    # How this driver returns the columns a read decodes (sql/reads.py):
    @staticmethod
    def json_out(value: Any) -> Any:
        """A JSON column's value (JSON text, or None for SQL NULL), decoded."""
        return None if value is None else orjson.loads(value)

    @staticmethod
    def text_out(value: Any) -> Any:
        """An id or label column's value as str."""
        return value

    @staticmethod
    def time_out(value: Any) -> datetime:
        """A UTCDateTime column's value as an aware UTC datetime."""
        # asyncpg gives aware UTC datetimes, except datetime.max (naive) at the top of the range.
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)  # type: ignore[no-any-return]


    async def update_for_id_and_commit(self, stmt: NativeSQL, params: Mapping[str, Any], then: Step) -> int | None:
        """`update_for_id`, then the statement `then`, which must change one row if the UPDATE
        matched and none otherwise (it tests ROW_COUNT()), then COMMIT: one round trip.
        Returns the UPDATE's LAST_INSERT_ID value, or None if it matched no row (then nothing
        was written). Either way the transaction is over."""
        raise NotImplementedError

    @staticmethod
    def time(value: datetime | None) -> datetime | str | None:
        """A UTC datetime as this driver stores it (see sql/column_types.UTCDateTime)."""
        return value


class AsyncpgTx(DriverTx):
    """Plain BEGIN/COMMIT/ROLLBACK, not asyncpg's Transaction object.

    A Transaction marks the connection as inside it before its BEGIN is sent;
    if that BEGIN is cancelled the mark stays, and every later transaction on
    the connection becomes a SAVEPOINT, whose "commit" commits nothing. With
    plain statements the only state is the server's, which asyncpg reports
    (`is_in_transaction`) and a ROLLBACK always clears.
    """

    style = "dollar"

    async def begin(self) -> None:
        await self.conn.execute("BEGIN")

    async def commit(self) -> None:
        self.commit_sent = True
        await self.conn.execute("COMMIT")

    async def rollback(self) -> None:
        await self.conn.execute("ROLLBACK")

    def is_closed(self) -> bool:
        return bool(self.conn.is_closed())

    def in_transaction(self) -> bool:
        return bool(self.conn.is_in_transaction())

    async def reset(self, error: BaseException) -> None:
        if getattr(error, "sqlstate", None) and not self.conn.is_in_transaction():
            return  # the server answered with that error, so asyncpg's report is current
        # Otherwise sent even when asyncpg reports no transaction: after a cancelled
        # statement (or a timeout) that report is stale until the server has answered
        # it, and a cancelled BEGIN may still have run. asyncpg sends this ROLLBACK
        # once the cancellation is settled; outside a transaction it is a no-op.
        await self.conn.execute("ROLLBACK")

    async def ping(self) -> None:
        await self.conn.execute("SELECT 1")

    async def fetchone(self, stmt: NativeSQL, params: Mapping[str, Any]) -> DriverRow | None:
        row: DriverRow | None = await self.conn.fetchrow(stmt.text, *stmt.args(params))
        return row

    async def execute(self, stmt: NativeSQL, params: Mapping[str, Any]) -> None:
        await self.conn.execute(stmt.text, *stmt.args(params))

    async def read(self, stmt: NativeSQL, params: Mapping[str, Any]) -> list[DriverRow]:
        rows: list[DriverRow] = await self.conn.fetch(stmt.text, *stmt.args(params))
        return rows

    @staticmethod
    def json_out(value: Any) -> Any:
        return value  # decoded already: SQLAlchemy's asyncpg dialect installs json/jsonb codecs


class PsycopgTx(DriverTx):
    """psycopg 3's async connection, as SQLAlchemy's psycopg dialect leaves it: autocommit off.

    Inside a transaction of ours (after `begin`), psycopg opens it with the first statement
    and commit()/rollback() end it. A statement run on its own (`driver_fetchone`: the
    database commits it as it runs) and a read run with autocommit switched on for their one
    statement (a local setting, no round trip), so they leave no transaction behind, as
    asyncpg's do. psycopg's errors carry ``sqlstate`` like asyncpg's; it decodes json/jsonb.
    """

    style = "format"

    def __init__(self, conn: Any) -> None:
        super().__init__(conn)
        self.began = False

    async def begin(self) -> None:
        self.began = True  # psycopg sends the BEGIN with the first statement

    async def commit(self) -> None:
        self.commit_sent = True
        await self.conn.commit()

    async def rollback(self) -> None:
        await self.conn.rollback()

    def is_closed(self) -> bool:
        return bool(self.conn.closed or self.conn.broken)

    def in_transaction(self) -> bool:
        return bool(self.conn.autocommit) or self.conn.info.transaction_status.name != "IDLE"

    async def reset(self, error: BaseException) -> None:
        await self.conn.rollback()  # a no-op outside a transaction; raises if a query is still running
        if self.conn.autocommit:  # a statement stopped before autocommit was switched back
            await self.conn.set_autocommit(False)

    async def ping(self) -> None:
        await self._on_its_own("SELECT 1", [], fetch=False)

    async def fetchone(self, stmt: NativeSQL, params: Mapping[str, Any]) -> DriverRow | None:
        if not self.began:
            rows = await self._on_its_own(stmt.text, stmt.args(params), fetch=True)
            return rows[0] if rows else None
        cursor = await self.conn.execute(stmt.text, stmt.args(params))
        row: DriverRow | None = await cursor.fetchone()
        return row

    async def execute(self, stmt: NativeSQL, params: Mapping[str, Any]) -> None:
        if not self.began:
            await self._on_its_own(stmt.text, stmt.args(params), fetch=False)
            return
        await self.conn.execute(stmt.text, stmt.args(params))

    async def read(self, stmt: NativeSQL, params: Mapping[str, Any]) -> list[DriverRow]:
        return await self._on_its_own(stmt.text, stmt.args(params), fetch=True)

    async def _on_its_own(self, sql: str, args: list[Any], *, fetch: bool) -> list[DriverRow]:
        """One statement in autocommit mode: it commits as it runs, no transaction is left open."""
        await self.conn.set_autocommit(True)
        cursor = await self.conn.execute(sql, args)
        rows: list[DriverRow] = await cursor.fetchall() if fetch else []
        await self.conn.set_autocommit(False)
        return rows

    @staticmethod
    def json_out(value: Any) -> Any:
        return value  # decoded already: psycopg loads json/jsonb

    @staticmethod
    def time_out(value: Any) -> datetime:
        # timestamptz arrives in the connection's TimeZone; the top of the range may be naive.
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)  # type: ignore[no-any-return]
        return value.astimezone(timezone.utc)  # type: ignore[no-any-return]


class AiomysqlTx(DriverTx):
    """aiomysql connections run with autocommit off: the first statement opens the transaction."""

    style = "format"

    async def begin(self) -> None:
        self.cursor = await self.conn.cursor()

    async def commit(self) -> None:
        self.commit_sent = True
        await self.conn.commit()
        await self.cursor.close()

    async def rollback(self) -> None:
        await self.conn.rollback()
        await self.cursor.close()

    async def execute_and_commit(self, steps: Sequence[Step]) -> None:
        # aiomysql (through PyMySQL) always asks for multi-statements, so the statements and
        # the COMMIT travel as one query: one round trip. The server runs them in order and
        # stops at one that fails, before the COMMIT; its error is raised here, when its
        # result is read. Values are escaped by the driver, never spliced.
        self.commit_sent = True  # from here on it may have committed
        cursor = self.cursor
        text = "; ".join([*(stmt.text for stmt, _ in steps), "COMMIT"])
        await cursor.execute(text, [arg for stmt, params in steps for arg in stmt.args(params)])
        while await cursor.nextset():
            pass
        self.committed = True
        await cursor.close()

    def is_closed(self) -> bool:
        # aiomysql closes the connection itself when it is lost or when a read is
        # cancelled (the reply would be left half-read), so a cancelled connection
        # is never reused.
        return bool(self.conn.closed)

    def in_transaction(self) -> bool:
        return bool(self.conn.get_transaction_status())

    async def reset(self, error: BaseException) -> None:
        await self.conn.rollback()

    async def ping(self) -> None:
        await self.conn.ping(reconnect=False)

    async def fetchone(self, stmt: NativeSQL, params: Mapping[str, Any]) -> DriverRow | None:
        await self.cursor.execute(stmt.text, stmt.args(params))
        row: DriverRow | None = await self.cursor.fetchone()
        return row

    async def execute(self, stmt: NativeSQL, params: Mapping[str, Any]) -> None:
        await self.cursor.execute(stmt.text, stmt.args(params))

    async def update_for_id(self, stmt: NativeSQL, params: Mapping[str, Any]) -> int | None:
        await self.cursor.execute(stmt.text, stmt.args(params))
        return self.cursor.lastrowid if self.cursor.rowcount == 1 else None

    async def read(self, stmt: NativeSQL, params: Mapping[str, Any]) -> list[DriverRow]:
        # With autocommit off the SELECT opens a transaction, which holds metadata
        # locks (a migration's ALTER would wait on an idle pooled connection) even
        # though the server does not report it: end it before the connection goes back.
        # aiomysql (through pymysql) always asks for multi-statements, so the COMMIT travels
        # with the SELECT: one round trip. Values are escaped by the driver, never spliced.
        async with self.conn.cursor() as cursor:
            await cursor.execute(stmt.text + "; COMMIT", stmt.args(params))
            rows: list[DriverRow] = await cursor.fetchall()
            while await cursor.nextset():
                pass
        return rows

    async def read_sets(self, stmt: NativeSQL, params: Mapping[str, Any], count: int) -> list[list[DriverRow]]:
        # As `read`: the statements and the COMMIT that ends their transaction travel as one
        # query. The results of the statements that return no rows (SET, START TRANSACTION,
        # COMMIT) have no description: only the SELECTs' are kept.
        sets: list[list[DriverRow]] = []
        async with self.conn.cursor() as cursor:
            await cursor.execute(stmt.text + "; COMMIT", stmt.args(params))
            while True:
                if cursor.description is not None:
                    sets.append(await cursor.fetchall())
                if not await cursor.nextset():
                    break
        if len(sets) != count:
            raise RuntimeError(f"a batched read gave {len(sets)} result sets, not {count}")
        return sets

    @staticmethod
    def text_out(value: Any) -> Any:
        return value.decode() if isinstance(value, (bytes, bytearray)) else value  # VARBINARY ids

    @staticmethod
    def time_out(value: Any) -> datetime:
        return value.replace(tzinfo=timezone.utc)  # type: ignore[no-any-return]  # DATETIME(6), stored in UTC

    async def update_for_id_and_commit(self, stmt: NativeSQL, params: Mapping[str, Any], then: Step) -> int | None:
        # One query of three statements (see execute_and_commit); each result is read in turn.
        self.commit_sent = True
        cursor = self.cursor
        follow, follow_params = then
        await cursor.execute(f"{stmt.text}; {follow.text}; COMMIT", [*stmt.args(params), *follow.args(follow_params)])
        matched, found = cursor.rowcount, cursor.lastrowid
        await cursor.nextset()
        changed = cursor.rowcount
        while await cursor.nextset():
            pass
        self.committed = True
        await cursor.close()
        if matched != changed:  # the second statement must follow the first (its ROW_COUNT() test)
            raise RuntimeError(f"the UPDATE matched {matched} row(s), the statement after it changed {changed}")
        return found if matched == 1 else None

    @staticmethod
    def time(value: datetime | None) -> str | None:
        # The UTC wall time as the literal PyMySQL would send for the datetime
        # ('2026-01-02 03:04:05.000006'), made once per write rather than at each of the
        # statements' several uses, each of which PyMySQL's datetime escaping costs 4 us.
        return _utc_text(value)


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
        self._go_on()
        self.db.execute("BEGIN IMMEDIATE")

    async def commit(self) -> None:
        self._go_on()
        self.db.execute("COMMIT")

    async def rollback(self) -> None:
        self.db.execute("ROLLBACK")

    async def fetchone(self, stmt: NativeSQL, params: Mapping[str, Any]) -> DriverRow | None:
        self._go_on()
        row: DriverRow | None = self.db.execute(stmt.text, stmt.args(params)).fetchone()
        return row

    async def execute(self, stmt: NativeSQL, params: Mapping[str, Any]) -> None:
        self._go_on()
        self.db.execute(stmt.text, stmt.args(params))

    async def read(self, stmt: NativeSQL, params: Mapping[str, Any]) -> list[DriverRow]:
        # aiosqlite's public call: the statement and its rows in one hop to the connection's thread.
        rows = await self.conn.execute_fetchall(stmt.text, stmt.args(params))
        return list(rows)

    @staticmethod
    def time_out(value: Any) -> datetime:
        # The text AiosqliteTx.time writes, read as UTC (concatenating beats .replace(tzinfo=) by 5x).
        return datetime.fromisoformat(value + "+00:00")

    def _go_on(self) -> None:
        """On the worker thread, before each statement: stop if the caller has gone (see `run`)."""
        if self.abandoned:
            raise asyncio.CancelledError("the caller of this SQLite transaction was cancelled")

    def in_transaction(self) -> bool:
        return bool(self.conn.in_transaction)

    async def reset(self, error: BaseException) -> None:
        if self.conn.in_transaction:  # (`run` ends its transaction on the thread; this catches what it could not)
            await self.conn.rollback()

    @property
    def db(self) -> sqlite3.Connection:
        """The sqlite3 connection inside aiosqlite (only touched on its worker thread)."""
        return self.conn._conn

    @staticmethod
    def time(value: datetime | None) -> str | None:
        # The text SQLAlchemy's SQLite DateTime writes ("2026-01-02 03:04:05.000006"), so both
        # paths compare alike. (isoformat: a few times faster than strftime, once per append.)
        return _utc_text(value)

    async def run(self, work: Callable[[DriverTx], Awaitable[T]]) -> T:
        """Run begin, work, commit (or rollback) on the worker thread, in one hop.

        Cancelling the awaiting task cannot call the hop back: the thread runs
        it anyway. So a cancellation marks the transaction abandoned (it stops
        before its next statement, and rolls back), interrupts the statement
        running, if any (sqlite3's interrupt() is thread-safe; a statement
        waiting for another process's lock waits on), and propagates at once.
        The connection is then discarded, never returned to the pool: it
        closes on its thread once the transaction is over. A transaction that
        had already reached COMMIT commits; its caller still sees
        CancelledError, so that write was not acknowledged.
        """
        try:
            # _execute is private and unannotated (see aiosqlite_fence.py); it returns what _run_to_end does.
            result: T = await self.conn._execute(_run_to_end, self._transaction(work))  # type: ignore[no-untyped-call]
        except asyncio.CancelledError:
            self.abandoned = True
            try:
                self.db.interrupt()
            except Exception:  # noqa: BLE001 - the connection is closed already: nothing runs
                pass
            raise
        return result

    async def _transaction(self, work: Callable[[DriverTx], Awaitable[T]]) -> T:
        await self.begin()
        try:
            result = await work(self)
            if not self.committed:
                await self.commit()
        except BaseException:
            if self.db.in_transaction:  # an interrupted statement may have rolled it back already
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


def _utc_text(value: datetime | None) -> str | None:
    """A datetime as UTC wall-clock text with microseconds ('2026-01-02 03:04:05.000006'),
    the form both MySQL/MariaDB and SQLite writes bind."""
    if value is None:
        return None
    if value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    return value.isoformat(" ", "microseconds")[:26]  # (without its "+00:00")


DRIVER_TX: dict[str, type[DriverTx]] = {"asyncpg": AsyncpgTx, "psycopg": PsycopgTx, "aiomysql": AiomysqlTx, "aiosqlite": AiosqliteTx}
"""The adapter for each supported driver (SQLAlchemy's dialect.driver name)."""


async def run_transaction(
    engine: AsyncEngine, tx_class: type[DriverTx], work: Callable[[DriverTx], Awaitable[T]], *, verify: bool = False
) -> T:
    """Run `work` in one write transaction on a pooled driver connection.

    What `driver_transaction` does (or, on SQLite, `leased` and AiosqliteTx.run),
    written out: this runs for every write, and two nested generator-based
    context managers cost it some 14 us of CPU.
    """
    lease, tx = await _checkout(engine, tx_class, verify=verify)
    try:
        if isinstance(tx, AiosqliteTx):
            result = await tx.run(work)
        else:
            await tx.begin()
            result = await work(tx)
            if not tx.committed:
                await tx.commit()
    except BaseException as exc:
        await _give_back_after(engine, lease, tx, exc)
        raise
    await _give_back(engine, lease, tx)
    return result


async def driver_read(
    engine: AsyncEngine, tx_class: type[DriverTx], stmt: NativeSQL, params: Mapping[str, Any], *, verify: bool = False
) -> list[DriverRow]:
    """Run one read-only statement on a leased driver connection and return its rows."""
    async with leased(engine, tx_class, verify=verify) as tx:
        return await tx.read(stmt, params)


async def driver_read_sets(
    engine: AsyncEngine, tx_class: type[DriverTx], stmt: NativeSQL, params: Mapping[str, Any], count: int,
    *, verify: bool = False,
) -> list[list[DriverRow]]:
    """Run a batch of `count` read-only statements on a leased driver connection; the rows of each."""
    async with leased(engine, tx_class, verify=verify) as tx:
        return await tx.read_sets(stmt, params, count)


async def driver_fetchone(
    engine: AsyncEngine, tx_class: type[DriverTx], stmt: NativeSQL, params: Mapping[str, Any], *, verify: bool = False
) -> DriverRow | None:
    """Run one statement on its own (the database commits it as it runs) and return its first row."""
    async with leased(engine, tx_class, verify=verify) as tx:
        tx.commit_sent = True  # from here on it may have committed
        return await tx.fetchone(stmt, params)


@asynccontextmanager
async def driver_transaction(
    engine: AsyncEngine, tx_class: type[DriverTx], *, verify: bool = False
) -> AsyncIterator[DriverTx]:
    """One transaction on a leased driver connection: committed if the block succeeds.

    Any error or cancellation (even one landing on BEGIN or COMMIT) rolls it
    back or discards the connection; see `leased`.
    """
    async with leased(engine, tx_class, verify=verify) as tx:
        await tx.begin()
        yield tx
        if not tx.committed:
            await tx.commit()


@asynccontextmanager
async def leased(engine: AsyncEngine, tx_class: type[DriverTx], *, verify: bool = False) -> AsyncIterator[DriverTx]:
    """A pooled connection's driver connection, given back to the pool clean or not at all.

    After an error or a cancellation the connection is reset (rolled back) and
    returned only if the driver then reports it open and outside a transaction;
    otherwise it is invalidated. If it turned out dead, the error is raised as
    ConnectionLost (`maybe_committed` from tx.commit_sent). `verify` pings the
    connection first (see `_checkout`).
    """
    lease, tx = await _checkout(engine, tx_class, verify=verify)
    try:
        yield tx
    except BaseException as exc:
        await _give_back_after(engine, lease, tx, exc)
        raise
    await _give_back(engine, lease, tx)


async def _give_back(engine: AsyncEngine, lease: Lease, tx: DriverTx) -> None:
    """After a transaction that ended well: hold its connection for the next one (sql/held.py)
    if the engine holds connections and the driver reports it open and clean; else return it
    to the pool."""
    pool = engine.pool
    held = held_for(engine)
    if held is not None and not tx.is_closed() and not tx.in_transaction() and held.give(lease, pool):
        return
    await greenlet_spawn(give_back, lease, pool)


async def _give_back_after(engine: AsyncEngine, lease: Lease, tx: DriverTx, exc: BaseException) -> None:
    """After `exc` (an error or a cancellation) on a leased connection: reset it and return it
    to the pool if it is then clean, else invalidate it. Raises ConnectionLost if it turned
    out dead (returning the engine's held connections to the pool first: they may be dead
    too); otherwise returns, and the caller re-raises `exc`."""
    clean = lost = False
    pooled = lease.pooled
    try:
        clean = await _reset(tx, exc)
    finally:  # also when the reset itself is cancelled
        lost = tx.is_closed()  # (before the pool closes it: invalidated, or an overflow connection)
        if clean:
            await greenlet_spawn(give_back, lease, engine.pool)
        else:
            pooled.invalidate(exc)
    if lost and isinstance(exc, Exception) and is_database_error(exc, engine.dialect):
        await release_held(engine)
        raise ConnectionLost(exc, maybe_committed=tx.commit_sent) from exc


async def _reset(tx: DriverTx, error: BaseException) -> bool:
    """Roll back after an error or cancellation: True if the connection is then clean."""
    if tx.is_closed() or tx.abandoned:
        return False
    try:
        await asyncio.wait_for(tx.reset(error), RESET_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - whatever stopped the rollback, the connection is discarded
        return False
    return not tx.is_closed() and not tx.in_transaction()


async def _checkout(engine: AsyncEngine, tx_class: type[DriverTx], *, verify: bool) -> tuple[Lease, DriverTx]:
    """A connection not known to be dead: a held one (sql/held.py) if one may be lent, else
    one from the pool; with `verify`, one from the pool that answered a ping.

    After a restart or failover the pool still holds connections the server
    has dropped. asyncpg notices that on its own (is_closed), aiomysql only when
    the connection is used, hence `verify` on a rerun after a lost connection.
    Dead ones are invalidated and the next is taken: at most as many as were
    idle in the pool, after which the pool connects afresh.
    """
    held = held_for(engine)
    if held is not None:
        lease = None if verify else held.take(engine.pool)
        if lease is not None:
            tx = tx_class(lease.pooled.driver_connection)
            if not tx.is_closed():
                return lease, tx
            lease.pooled.invalidate()  # dropped while held: the pool replaces it
        if len(held):  # too old, or possibly dead: back to the pool, whose checkout sorts them out
            await release_held(engine)
    pool = engine.pool
    tries = 2 + (pool.checkedin() if isinstance(pool, QueuePool) else 0)
    for attempt in range(tries):
        pooled = await engine.raw_connection()
        tx = tx_class(pooled.driver_connection)
        try:
            if not tx.is_closed():
                if verify:
                    await tx.ping()
                return Lease(pooled, pool, monotonic()), tx
            error: Exception = ConnectionError("the pool handed out a closed connection")
        except Exception as exc:  # noqa: BLE001 - whatever failed the ping, the connection is discarded
            error = exc
        except BaseException:
            pooled.invalidate()
            raise
        pooled.invalidate(error)
        if attempt + 1 == tries:
            raise ConnectionLost(error, maybe_committed=False) from error
    raise AssertionError("unreachable")
