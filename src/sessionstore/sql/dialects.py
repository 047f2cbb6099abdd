"""Everything that differs between SQLite, PostgreSQL and MySQL/MariaDB, in one place.

The service and the migrations ask a DialectRules object for the piece they
need (an upsert, a row lock, the "one active row" unique index, a named
database lock) instead of branching on the dialect name themselves.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Computed,
    Delete,
    Index,
    Integer,
    Table,
    Update,
    any_,
    bindparam,
    event,
    select,
    text,
)
from sqlalchemy import types as sqltypes
from sqlalchemy.dialects.mysql import types as mysql_types
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Select

from .. import jsonvalue
from . import leases, mysql_tls
from .errors import driver_error

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext

AUTH_FAILED = "the server refused the user name or password"
AUTH_FIX = "check the user and password in the URL, and that the server lets this user connect from this host"
NO_DATABASE = "the database does not exist"
NO_DATABASE_FIX = "create it first (CREATE DATABASE …), or fix the database name at the end of the URL"

SQLITE_CANNOT_OPEN = "the SQLite file cannot be opened"
SQLITE_OPEN_FIX = (
    "check that its directory exists and that this process may create files there "
    "(sqlite:///relative/path or sqlite:////absolute/path)"
)

DML = TypeVar("DML", Update, Delete)
"""An UPDATE or a DELETE statement (DialectRules.limited keeps its kind)."""

WRITE_OPTION = "sessionstore_write"
"""Execution option marking a connection that will write (SQLite begins it IMMEDIATE)."""


class DialectRules:
    """The base: what PostgreSQL, MySQL and SQLite do alike. Subclasses override the rest."""

    name = ""
    async_driver = ""
    """The default async driver (a plain ``postgresql://`` URL gets it)."""
    other_async_drivers: dict[str, str] = {}
    """Other supported async drivers, each with the pip extra that installs it."""
    unsupported_async_drivers: tuple[str, ...] = ()
    """Async drivers that exist but that sessionstore does not support (said so plainly)."""
    install_extra = "all"
    """The pip extra that installs the async driver: sessionstore[<extra>]."""

    @property
    def async_drivers(self) -> tuple[str, ...]:
        """Every supported async driver, the default first."""
        return (self.async_driver, *self.other_async_drivers)

    def extra_for(self, driver: str) -> str:
        """The pip extra that installs `driver`."""
        return self.other_async_drivers.get(driver, self.install_extra)
    supports_returning_update = True
    writable_ctes = False
    """Can one statement hold several INSERT/UPDATEs (WITH ... AS (UPDATE ...))? PostgreSQL only."""
    has_last_insert_id = False
    """Does UPDATE ... SET x = LAST_INSERT_ID(expr) hand expr back to the client? MySQL/MariaDB."""
    single_writer = False
    """Does the database run one write transaction at a time anyway (SQLite)? Then writers
    of one process queue on an asyncio lock instead of in the busy handler's sleeps."""
    supports_schemas = False
    """May tables live in a named schema (the ``schema`` option)? PostgreSQL only."""
    partitioned_events = False
    """Can events be range-partitioned by session (sql/partitions.py)? PostgreSQL only."""
    wal_position_sql: str | None = None
    """Read replicas (sql/replicas.py): the primary's write position now, as a number. None where
    sessionstore does not route reads to replicas (everywhere but PostgreSQL)."""
    replayed_position_sql: str | None = None
    """A streaming replica's replayed position, comparable with wal_position_sql's."""
    has_named_locks = True
    """Does the database have named locks (advisory locks, GET_LOCK)? SQLite's write lock stands in."""
    ids_sort_as_code_points = True
    """Do id columns order as their code points (binary collations)? Not PostgreSQL's
    VARCHAR, which sorts by the database's collation."""
    batched_reads = False
    """Is a session read a batch of plain SELECTs in one query (sql/batched_reads.py) rather than
    one UNION ALL? MySQL/MariaDB, where the union goes through temporary tables."""
    partial_index_option: str | None = None
    """The SQLAlchemy dialect-option key under which partial indexes keep their WHERE (drift checks)."""

    # ---- engine

    def engine_options(self) -> dict[str, Any]:
        # Every transaction of ours ends explicitly (sql/native.py, SQLAlchemy
        # connections roll back on close), so the pool's reset-on-return
        # ROLLBACK would be a wasted round trip on each checkin.
        return {"pool_reset_on_return": None}

    def install_hooks(self, engine: AsyncEngine) -> None:
        """Connection-level setup (pragmas, transaction style)."""

    # ---- schema

    def add_active_unique(self, table: Table, columns: Sequence[str]) -> None:
        """Keep one row with deleted_at IS NULL per natural key: a partial unique index."""
        active = table.c.deleted_at.is_(None)
        Index(
            f"{table.name}_active_key",
            *(table.c[name] for name in columns),
            unique=True,
            postgresql_where=active,
            sqlite_where=active,
        )

    # ---- hand-written SQL (sql/writes.py)

    def active_sql(self, alias: str = "") -> str:
        """SQL true for a row that is not deleted, phrased so the active-row unique index serves it."""
        return f"{alias}deleted_at IS NULL"

    for_update = " FOR UPDATE"
    """Appended to a SELECT that locks the rows it reads until the transaction ends."""

    def json_param(self, name: str) -> str:
        """A JSON-typed :name parameter (the driver gets serialised JSON text)."""
        return f":{name}"

    def upsert_sql(self, table: str, key: Sequence[str], columns: Sequence[str], update: Sequence[str]) -> str:
        """INSERT INTO table (columns) VALUES (:columns), updating `update` on a clash with the active row."""
        values = ", ".join(self.json_param(c) if c == "value" else f":{c}" for c in columns)
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values})"
        sets = ", ".join(f"{c} = excluded.{c}" for c in update)
        return f"{head} ON CONFLICT ({', '.join(key)}) WHERE deleted_at IS NULL DO UPDATE SET {sets}"

    # ---- the session-state delta, folded into the UPDATE that claims the session row

    def state_key_path(self, key: str) -> str | None:
        """How `state_fold_sql` addresses the top-level state key `key` (bound as a parameter),
        or None if this database cannot address it safely: the write then reads the state
        and writes it back whole."""
        return None

    max_fold_keys = 50
    """Most session keys a delta may have for `state_fold_sql` (SQLite takes at most 127
    arguments per function); the state of a bigger one is read and written back whole."""

    def state_fold_sql(self, sets: int, removes: int) -> str:
        """SQL for the session's `state` with a delta applied: the keys at :state_removed_0 ...
        removed, the keys at :state_path_0 ... set to the JSON texts :state_value_0 ... (a value
        replaces the old one whole). The paths come from `state_key_path`."""
        raise NotImplementedError

    # ---- migrations (sql/migrate/)

    def alembic_context_options(self) -> dict[str, Any]:
        """Extra options for Alembic's configure() on this dialect."""
        return {}

    def compare_type(
        self,
        context: MigrationContext,
        inspected_column: Column[Any],
        metadata_column: Column[Any],
        inspected_type: sqltypes.TypeEngine[Any],
        metadata_type: sqltypes.TypeEngine[Any],
    ) -> bool | None:
        """Alembic's compare_type hook: True/False to decide, None to let Alembic decide."""
        return None

    def column_collations(self, sync_conn: Connection, table: str, schema: str | None) -> dict[str, str]:
        """Column name -> collation as the server reports it, where collations matter (MySQL)."""
        return {}

    # ---- statements (SQLAlchemy Core: reads, cleanup)

    def lock_rows(self, stmt: Select[Any]) -> Select[Any]:
        """Lock the selected rows until the transaction ends."""
        return stmt.with_for_update()

    def active(self, table: Table) -> ColumnElement[bool]:
        """Core twin of active_sql: the row is not deleted."""
        return table.c.deleted_at.is_(None)

    def in_pks(self, column: ColumnElement[Any], pks: list[int]) -> ColumnElement[bool]:
        """`column IN pks`, cheap to send however long the list: the integers inlined.
        (A bound parameter per value cost milliseconds of this process's CPU per batch.)"""
        return column.in_(bindparam(None, pks, expanding=True, literal_execute=True))

    def limited(self, stmt: DML, table: Table, where: ColumnElement[bool], rows: int) -> DML:
        """An UPDATE or DELETE of at most `rows` rows of `table` matching `where`, in one statement.

        ``... WHERE pk IN (SELECT pk ... WHERE where LIMIT n) AND where``: the
        outer `where` is what the database re-checks on a row that a concurrent
        write changed, so a refreshed row is left alone. No keys travel to the
        client and back, which keeps each batch cheap for its event loop.
        """
        picked = select(table.c.pk).where(where).limit(rows).scalar_subquery()
        return stmt.where(table.c.pk.in_(picked), where)

    # ---- errors

    def is_retryable(self, exc: BaseException) -> bool:
        """A deadlock, serialization failure or busy database: the transaction may be rerun.

        Takes SQLAlchemy's wrapped errors and the drivers' own alike.
        """
        return False

    def is_unique_violation(self, exc: BaseException) -> bool:
        """An insert clashed with a unique index (the driver's error or SQLAlchemy's)."""
        return False

    def url_problem(self, url: URL) -> tuple[str, str] | None:
        """A failure certain before connecting (a SQLite file in a directory that does not
        exist): (what is wrong, the likely fix), or None."""
        return None

    def tls_from_url(self, url: URL) -> tuple[URL, Any]:
        """The URL to give SQLAlchemy and the TLS context to give the driver (``connect_args``
        ``ssl``), where the driver does not read the URL's TLS options itself; else (url, None)."""
        return url, None

    def refuse_plaintext(self, engine: AsyncEngine) -> None:
        """Make `engine` refuse a connection on which the TLS that tls_from_url set up is off."""

    def connection_problem(self, exc: BaseException) -> tuple[str, str] | None:
        """This database's own words for a failure to connect (bad credentials, no such
        database, a file it cannot open or write): (what went wrong, the likely fix), or None.
        Refusals, unknown hosts and TLS failures are read in sql/errors.py, alike for all."""
        return None

    # ---- named database locks (cleanup, migrations)

    async def try_lock(self, conn: AsyncConnection, name: str) -> bool:
        """Take the database-wide lock `name` on this connection without waiting."""
        raise NotImplementedError

    async def lock(self, conn: AsyncConnection, name: str, timeout_s: float) -> None:
        """Wait (up to timeout_s) for the database-wide lock `name`."""
        raise NotImplementedError

    async def unlock(self, conn: AsyncConnection, name: str) -> None:
        raise NotImplementedError

    async def renew_lock(self, conn: AsyncConnection, name: str) -> bool:
        """Keep a lock that is a lease alive (Galera); False if it was lost. Others hold theirs
        for as long as the connection lives, so this is a no-op."""
        return True


def _lock_id(name: str) -> int:
    """A stable signed 64-bit id for a lock name (PostgreSQL advisory locks take integers)."""
    return zlib.crc32(name.encode()) | (0x5E55 << 32)


class PostgresRules(DialectRules):
    name = "postgresql"
    async_driver = "asyncpg"
    other_async_drivers = {"psycopg": "psycopg"}  # psycopg 3 (its async connection)
    install_extra = "postgres"
    writable_ctes = True
    supports_schemas = True
    ids_sort_as_code_points = False
    partial_index_option = "postgresql"
    partitioned_events = True
    wal_position_sql = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
    replayed_position_sql = "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint"

    def json_param(self, name: str) -> str:
        return f"CAST(:{name} AS JSONB)"

    def state_key_path(self, key: str) -> str | None:
        return key  # the key itself, as jsonb_set's one-element path and jsonb's `-` operand

    def state_fold_sql(self, sets: int, removes: int) -> str:
        sql = "state"
        for i in range(removes):
            sql = f"({sql} - CAST(:state_removed_{i} AS TEXT))"
        for i in range(sets):
            sql = f"jsonb_set({sql}, ARRAY[CAST(:state_path_{i} AS TEXT)], CAST(:state_value_{i} AS JSONB))"
        return sql

    def in_pks(self, column: ColumnElement[Any], pks: list[int]) -> ColumnElement[bool]:
        # One array parameter: one prepared statement whatever the list's length.
        return column == any_(bindparam(None, pks, type_=ARRAY(BigInteger)))

    def is_retryable(self, exc: BaseException) -> bool:
        err = driver_error(exc)
        code = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        return code in ("40001", "40P01")

    def is_unique_violation(self, exc: BaseException) -> bool:
        err = driver_error(exc)
        return (getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)) == "23505"

    def connection_problem(self, exc: BaseException) -> tuple[str, str] | None:
        code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        if code in ("28P01", "28000"):  # invalid_password, invalid_authorization_specification
            return (AUTH_FAILED, AUTH_FIX)
        if code == "3D000":  # invalid_catalog_name
            return (NO_DATABASE, NO_DATABASE_FIX)
        return None

    async def try_lock(self, conn: AsyncConnection, name: str) -> bool:
        got = await conn.scalar(text("SELECT pg_try_advisory_lock(:id)"), {"id": _lock_id(name)})
        return bool(got)

    async def lock(self, conn: AsyncConnection, name: str, timeout_s: float) -> None:
        await conn.execute(text(f"SET lock_timeout = '{int(timeout_s * 1000)}ms'"))
        await conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _lock_id(name)})
        await conn.execute(text("SET lock_timeout = 0"))

    async def unlock(self, conn: AsyncConnection, name: str) -> None:
        await conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _lock_id(name)})


class MySQLRules(DialectRules):
    """MySQL and MariaDB: no partial indexes, no UPDATE ... RETURNING."""

    name = "mysql"
    async_driver = "aiomysql"
    unsupported_async_drivers = ("asyncmy",)
    install_extra = "mysql"
    supports_returning_update = False
    has_last_insert_id = True
    batched_reads = True

    def active_sql(self, alias: str = "") -> str:
        # Naming the generated column lets the (natural key..., active) unique
        # index serve the lookup; "deleted_at IS NULL" sent MariaDB to a scan.
        return f"{alias}active = 1"

    def upsert_sql(self, table: str, key: Sequence[str], columns: Sequence[str], update: Sequence[str]) -> str:
        values = ", ".join(f":{c}" for c in columns)
        sets = ", ".join(f"{c} = VALUES({c})" for c in update)
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) ON DUPLICATE KEY UPDATE {sets}"

    def state_key_path(self, key: str) -> str | None:
        # The key as a JSON string: MySQL and MariaDB read a double-quoted path leg with JSON's
        # escapes and compare it with the document's keys unescaped, so '"', '\', '.', '*',
        # '$', spaces and any Unicode are safe (tests/contract/test_state.py tries them). But
        # MariaDB 10.11 refuses a quoted leg that starts with '-' (its negative array indexes).
        if key.startswith("-"):
            return None
        return "$." + jsonvalue.dumps_str(key)

    def state_fold_sql(self, sets: int, removes: int) -> str:
        sql = "state"
        for i in range(removes):
            # One path per JSON_REMOVE: MariaDB 10.11, given several, sometimes leaves a key
            # in place (with multi-byte keys; a randomised comparison found 1 delta in 12).
            sql = f"JSON_REMOVE({sql}, :state_removed_{i})"
        if sets:
            # JSON_EXTRACT(text, '$') makes the text a JSON value; bare, JSON_SET would store it as a string.
            pairs = ", ".join(f":state_path_{i}, JSON_EXTRACT(:state_value_{i}, '$')" for i in range(sets))
            sql = f"JSON_SET({sql}, {pairs})"
        return sql

    def tls_from_url(self, url: URL) -> tuple[URL, Any]:
        return mysql_tls.tls_from_url(url)  # aiomysql ignores the URL's ssl_* (sql/mysql_tls.py)

    def refuse_plaintext(self, engine: AsyncEngine) -> None:
        mysql_tls.refuse_plaintext(engine)  # aiomysql goes on without TLS if the server has none

    def engine_options(self) -> dict[str, Any]:
        # READ COMMITTED: no gap locks, so concurrent appends queue on the session row only.
        return super().engine_options() | {"isolation_level": "READ COMMITTED", "pool_recycle": 3600}

    def add_active_unique(self, table: Table, columns: Sequence[str]) -> None:
        # No partial indexes here: a generated column is 1 while the row is
        # active and NULL once deleted, and NULLs never clash in a unique index.
        active = Column(
            "active",
            Integer,
            Computed("CASE WHEN deleted_at IS NULL THEN 1 ELSE NULL END", persisted=True),
        )
        table.append_column(active)
        Index(f"{table.name}_active_key", *(table.c[name] for name in columns), active, unique=True)

    def active(self, table: Table) -> ColumnElement[bool]:
        # The generated column, so the (natural key..., active) unique index serves the lookup.
        return table.c.active == 1

    def limited(self, stmt: DML, table: Table, where: ColumnElement[bool], rows: int) -> DML:
        # ``... WHERE where LIMIT n``: UPDATE and DELETE take a LIMIT here.
        return stmt.where(where).with_dialect_options(mysql_limit=rows)

    def compare_type(
        self,
        context: MigrationContext,
        inspected_column: Column[Any],
        metadata_column: Column[Any],
        inspected_type: sqltypes.TypeEngine[Any],
        metadata_type: sqltypes.TypeEngine[Any],
    ) -> bool | None:
        """Exact for JSON columns: MariaDB's JSON is an alias for LONGTEXT (utf8mb4_bin with a
        json_valid CHECK), so a JSON column reflects as LONGTEXT there, which is not drift.
        Alembic treats JSON and LONGTEXT as synonyms on every MySQL flavour; on MySQL proper,
        which has a real JSON type, a LONGTEXT column where the models want JSON is drift."""
        expected = metadata_type.dialect_impl(context.dialect)
        if not isinstance(expected, sqltypes.JSON):
            return None
        if isinstance(inspected_type, sqltypes.JSON):
            return False
        if isinstance(inspected_type, mysql_types.LONGTEXT) and getattr(context.dialect, "is_mariadb", False):
            return False
        return True

    def column_collations(self, sync_conn: Connection, table: str, schema: str | None) -> dict[str, str]:
        # information_schema, because SHOW CREATE TABLE omits the table's default collation.
        rows = sync_conn.execute(
            text(
                "SELECT column_name, collation_name FROM information_schema.columns "
                "WHERE table_schema = COALESCE(:schema, DATABASE()) AND table_name = :table"
            ),
            {"schema": schema, "table": table},
        )
        return {name: collation for name, collation in rows if collation}

    def is_retryable(self, exc: BaseException) -> bool:
        args = driver_error(exc).args
        return bool(args) and args[0] in (1213, 1205)  # deadlock, lock wait timeout

    def is_unique_violation(self, exc: BaseException) -> bool:
        args = driver_error(exc).args
        return bool(args) and args[0] == 1062  # ER_DUP_ENTRY

    def connection_problem(self, exc: BaseException) -> tuple[str, str] | None:
        if type(exc).__module__.split(".", 1)[0] not in ("pymysql", "aiomysql"):
            return None
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in (1045, 1044, 1698):  # access denied (to the server, to the database), unix-socket auth
            return (AUTH_FAILED, AUTH_FIX)
        if code == 1049:  # ER_BAD_DB_ERROR
            return (NO_DATABASE, NO_DATABASE_FIX)
        if code == 2026:  # CR_SSL_CONNECTION_ERROR
            return ("the TLS (SSL) connection failed", "check the URL's ssl options against the server's TLS setup")
        if code in (2002, 2003, 2005, 2013):  # cannot connect / unknown host / lost while connecting
            return ("the server could not be reached", "is the server running, and are the host and port in the URL right?")
        return None

    # GET_LOCK names are server-wide, unlike PostgreSQL's advisory locks: the
    # name is qualified with the current database, so two databases on one
    # server (with the same table prefix) never wait for each other's cleaner
    # or migration. Names are limited to 64 characters: readable head, digest tail.
    _LOCK = "CONCAT(LEFT(:n, 31), '.', MD5(CONCAT(COALESCE(DATABASE(), ''), '/', :n)))"

    # On a Galera cluster GET_LOCK holds on one node only, so there the lock is a
    # row with a lease, which certification makes cluster-wide (sql/leases.py).

    async def try_lock(self, conn: AsyncConnection, name: str) -> bool:
        if await leases.is_galera(conn):
            return await leases.try_take(conn, name)
        return bool(await conn.scalar(text(f"SELECT GET_LOCK({self._LOCK}, 0)"), {"n": name}))

    async def lock(self, conn: AsyncConnection, name: str, timeout_s: float) -> None:
        if await leases.is_galera(conn):
            await leases.take(conn, name, timeout_s)
            return
        got = await conn.scalar(text(f"SELECT GET_LOCK({self._LOCK}, :t)"), {"n": name, "t": int(timeout_s)})
        if not got:
            raise TimeoutError(f"could not take database lock {name!r} within {timeout_s}s")

    async def unlock(self, conn: AsyncConnection, name: str) -> None:
        if await leases.is_galera(conn):
            await leases.release(conn, name)
            return
        await conn.execute(text(f"SELECT RELEASE_LOCK({self._LOCK})"), {"n": name})

    async def renew_lock(self, conn: AsyncConnection, name: str) -> bool:
        if await leases.is_galera(conn):
            return await leases.renew(conn, name)
        return True


class SQLiteRules(DialectRules):
    """SQLite: one writer at a time, so writes begin IMMEDIATE and named locks are the write lock."""

    name = "sqlite"
    async_driver = "aiosqlite"
    for_update = ""  # BEGIN IMMEDIATE already holds the database's write lock
    single_writer = True
    has_named_locks = False
    partial_index_option = "sqlite"
    busy_timeout_s = 30

    def state_key_path(self, key: str) -> str | None:
        # SQLite reads a double-quoted path leg up to the next '"', with no escapes, and
        # (before 3.45) compares it with the key's text as written in the stored JSON, so a
        # key is addressed only where every JSON writer writes it as its bare characters:
        # printable ASCII without '"' or '\' (which JSON escapes), nor '/', '<', '>', '&',
        # "'" (which some writers escape). Anything else ("é" may be stored as "\u00e9") is
        # read and written back whole.
        if key.isascii() and key.isprintable() and not _SQLITE_UNSAFE_KEY_CHARS.intersection(key):
            return f'$."{key}"'
        return None

    def state_fold_sql(self, sets: int, removes: int) -> str:
        sql = "state"
        if removes:
            sql = f"json_remove({sql}, {', '.join(f':state_removed_{i}' for i in range(removes))})"
        if sets:
            # json(text) makes the text a JSON value; bare, json_set would store it as a string.
            pairs = ", ".join(f":state_path_{i}, json(:state_value_{i})" for i in range(sets))
            sql = f"json_set({sql}, {pairs})"
        return sql

    def engine_options(self) -> dict[str, Any]:
        return super().engine_options() | {"connect_args": {"timeout": self.busy_timeout_s}}

    def install_hooks(self, engine: AsyncEngine) -> None:
        busy_ms = self.busy_timeout_s * 1000

        # At checkout, not connect: a caller's engine may have pooled connections
        # before it reached us, and they need the same setup. Once per connection.
        @event.listens_for(engine.sync_engine, "checkout")
        def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
            if record.info.get("sessionstore_setup"):
                return
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
            record.info["sessionstore_setup"] = True

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            writes = conn.get_execution_options().get(WRITE_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    def lock_rows(self, stmt: Select[Any]) -> Select[Any]:
        return stmt  # BEGIN IMMEDIATE already holds the database's write lock

    def alembic_context_options(self) -> dict[str, Any]:
        # SQLite's DDL is transactional: `upgrade --sql` wraps the script in BEGIN/COMMIT.
        return {"transactional_ddl": True}

    def is_retryable(self, exc: BaseException) -> bool:
        text = str(driver_error(exc))
        return "database is locked" in text or "database is busy" in text

    def is_unique_violation(self, exc: BaseException) -> bool:
        return "UNIQUE constraint failed" in str(driver_error(exc))

    def url_problem(self, url: URL) -> tuple[str, str] | None:
        # Checked before connecting: aiosqlite's worker thread, when its connect fails, may
        # answer after the caller's event loop has closed and print a traceback of its own.
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:") or url.query.get("uri"):
            return None
        if not Path(database).expanduser().absolute().parent.is_dir():
            return (SQLITE_CANNOT_OPEN, f"the directory {Path(database).parent} does not exist; {SQLITE_OPEN_FIX}")
        return None

    def connection_problem(self, exc: BaseException) -> tuple[str, str] | None:
        if type(exc).__module__.split(".", 1)[0] != "sqlite3":
            return None
        text = str(exc)
        if "unable to open database file" in text:
            return (SQLITE_CANNOT_OPEN, SQLITE_OPEN_FIX)
        if "readonly database" in text:
            return ("the SQLite file is read-only",
                    "give this process write access to the file and its directory (SQLite writes its -wal and "
                    "-shm files beside it), or point the URL at a writable copy")
        return None

    # SQLite has no named locks; a lock is held by keeping a write transaction open,
    # which the caller's connection does (sql/cleanup.py, sql/migrate/lock.py).
    async def try_lock(self, conn: AsyncConnection, name: str) -> bool:
        return True

    async def lock(self, conn: AsyncConnection, name: str, timeout_s: float) -> None:
        return None

    async def unlock(self, conn: AsyncConnection, name: str) -> None:
        return None


_SQLITE_UNSAFE_KEY_CHARS = frozenset('"\\/<>&\'')
"""Characters that keep a state key out of SQLite's JSON paths (see SQLiteRules.state_key_path)."""


RULES: dict[str, DialectRules] = {
    "postgresql": PostgresRules(),
    "mysql": MySQLRules(),
    "mariadb": MySQLRules(),
    "sqlite": SQLiteRules(),
}


URL_SCHEMES = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql", "mariadb": "mysql"}
"""URL scheme -> the dialect whose rules apply."""

MYSQL_NAMES = ("mysql", "mariadb")
"""The SQLAlchemy dialect names MySQLRules serves."""


def rules_for(dialect_name: str) -> DialectRules:
    return RULES[dialect_name]

