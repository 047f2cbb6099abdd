"""Install, check and upgrade sessionstore's schema with its own Alembic migrations.

The migration scripts ship inside the package (``sessionstore/_migrations``
in a wheel; ``migrations/`` at the root of a source checkout). Everything
here builds its Alembic configuration programmatically, so no alembic.ini is
needed at runtime, and keeps its own version table, ``{prefix}alembic_version``,
so a host application's ``alembic_version`` is never touched.

Every migration that changes the database (upgrade, downgrade, stamp) runs on
one dedicated connection under a database-wide lock, so processes that start
at the same time with ``auto_migrate=True`` do not race:

- PostgreSQL: a session-level advisory lock, then one transaction (DDL is
  transactional there, so a failed upgrade leaves nothing behind);
- MySQL/MariaDB: ``GET_LOCK`` (DDL commits implicitly, statement by statement);
- SQLite: a ``BEGIN IMMEDIATE`` transaction, which holds the database's write
  lock; foreign keys are switched off around it (as SQLite's own ALTER TABLE
  procedure prescribes) so a table rebuild cannot cascade-delete child rows,
  and ``PRAGMA foreign_key_check`` must come back empty before the commit.

Public API: ``migrate``, ``downgrade``, ``stamp``, ``current_revision``,
``verify_schema``, ``ensure_schema``, ``check_drift`` and ``HEAD``.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
import shlex
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text
from sqlalchemy import types as sqltypes
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .errors import ConfigurationError, SchemaError
from .sql.dialects import WRITE_OPTION, rules_for
from .sql.engine import check_prefix, make_engine, normalize_url, prepare_engine, redact
from .sql.models import DEFAULT_PREFIX, build_tables

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "HEAD",
    "SchemaStatus",
    "check_drift",
    "current_revision",
    "downgrade",
    "ensure_schema",
    "explain_status",
    "migrate",
    "schema_status",
    "stamp",
    "verify_schema",
]

LOCK_TIMEOUT_S = 300.0
"""How long a process waits for another one's migration before giving up."""

_MYSQLS = ("mysql", "mariadb")


# --------------------------------------------------------------------------- scripts and config


def script_location() -> Path:
    """The directory holding env.py and versions/.

    A built wheel carries it as the package data ``sessionstore/_migrations``;
    an editable install or a source checkout uses ``migrations/`` at the
    repository root.
    """
    packaged = importlib.resources.files("sessionstore") / "_migrations"
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parents[2] / "migrations"
    if (checkout / "env.py").is_file():
        return checkout
    raise SchemaError(
        "sessionstore's migration scripts are missing from this installation "
        f"(looked in {packaged} and {checkout}); reinstall the package"
    )


def lock_name(table_prefix: str) -> str:
    """The named database lock every schema change of one prefix runs under."""
    return f"sessionstore-migrate-{table_prefix}"


def version_table(table_prefix: str) -> str:
    return f"{table_prefix}alembic_version"


def alembic_config(
    *,
    table_prefix: str = DEFAULT_PREFIX,
    schema: str | None = None,
    url: str | URL | None = None,
    scripts: str | Path | None = None,
    output: TextIO | None = None,
) -> Config:
    """An Alembic Config for sessionstore's scripts, built without any alembic.ini.

    env.py reads the prefix, schema and (for offline ``--sql`` runs) URL from
    ``config.attributes``; an online run also puts the connection there.
    """
    from alembic.config import Config

    config = Config(output_buffer=output) if output is not None else Config()
    location = str(scripts if scripts is not None else script_location())
    config.set_main_option("script_location", location.replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["sessionstore_prefix"] = check_prefix(table_prefix)
    config.attributes["sessionstore_schema"] = schema
    if url is not None:
        config.attributes["sessionstore_url"] = url
    return config


@functools.lru_cache(maxsize=16)
def _script_directory(location: str) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(scripts=location))


def script_directory(scripts: str | Path | None = None) -> ScriptDirectory:
    return _script_directory(str(scripts if scripts is not None else script_location()))


def head_revision(scripts: str | Path | None = None) -> str:
    """The newest revision of the scripts (there is exactly one head)."""
    head = script_directory(scripts).get_current_head()
    if head is None:
        raise SchemaError(f"no migration scripts found in {scripts or script_location()}")
    return head


def __getattr__(name: str) -> Any:
    # HEAD is computed on first use, so importing sessionstore does not scan the scripts.
    if name == "HEAD":
        return head_revision()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- Alembic context options


def _mariadb(context: Any) -> bool:
    return bool(getattr(context.dialect, "is_mariadb", False))


def _compare_type(context: Any, inspected_column: Any, metadata_column: Any, inspected_type: Any, metadata_type: Any) -> bool | None:
    """Alembic's type comparison, made exact for JSON columns on MySQL/MariaDB.

    MariaDB's JSON is an alias for LONGTEXT (utf8mb4_bin, with a json_valid
    CHECK constraint), so a JSON column reflects as LONGTEXT there: that is
    what the models' JSON creates, not drift. Alembic treats JSON and LONGTEXT
    as synonyms on every MySQL flavour; on MySQL proper, which has a real JSON
    type, a LONGTEXT column where the models want JSON is drift. Everything
    else: Alembic decides (returning None).
    """
    if context.dialect.name not in _MYSQLS:
        return None
    expected = metadata_type.dialect_impl(context.dialect)
    if not isinstance(expected, sqltypes.JSON):
        return None
    if isinstance(inspected_type, sqltypes.JSON):
        return False
    if isinstance(inspected_type, mysql_dialect.LONGTEXT) and _mariadb(context):
        return False
    return True


def context_options(dialect_name: str, table_prefix: str, schema: str | None, *, default_schema: str | None = None) -> dict[str, Any]:
    """The keyword arguments env.py (and check_drift) give Alembic's configure().

    - the library's own version table, in the given schema;
    - the models as ``target_metadata``, for autogenerate and drift checks;
    - autogenerate restricted to sessionstore's own tables, so a host
      application's tables in the same database never count as drift;
    - ``sessionstore_prefix`` / ``sessionstore_schema``, which the revision
      scripts read from ``op.get_context().opts``.
    """
    # The drift comparison sees the connection's default schema as None.
    target_schema = None if schema is not None and schema == default_schema else schema
    tables = build_tables(rules_for(dialect_name), table_prefix, target_schema)
    ours = {table.name for table in tables.all}

    def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        if type_ == "schema":
            return name == target_schema
        if type_ == "table":
            return name in ours
        return True

    return {
        "version_table": version_table(table_prefix),
        "version_table_schema": schema,
        "target_metadata": tables.metadata,
        "include_schemas": target_schema is not None,
        "include_name": include_name,
        "compare_type": _compare_type,
        "compare_server_default": True,
        "render_as_batch": True,  # new revisions must also run on SQLite
        # SQLite's DDL is transactional: `upgrade --sql` wraps the script in BEGIN/COMMIT.
        **({"transactional_ddl": True} if dialect_name == "sqlite" else {}),
        "sessionstore_prefix": table_prefix,
        "sessionstore_schema": schema,
    }


# --------------------------------------------------------------------------- engines and the migration connection


def _engine_for(target: str | URL | AsyncEngine) -> tuple[AsyncEngine, bool]:
    """(engine, owned): a URL gets an engine of our own, which the caller disposes."""
    if isinstance(target, AsyncEngine):
        prepare_engine(target)
        return target, False
    if isinstance(target, (str, URL)):
        return make_engine(target), True
    raise ConfigurationError(f"expected a database URL or an AsyncEngine, got {type(target).__name__}")


def _shown_url(engine: AsyncEngine, url_for_message: str | None) -> str:
    """The URL for messages, password hidden; our default async driver is left implicit."""
    if url_for_message:
        return redact(url_for_message)
    url = engine.url
    backend = url.get_backend_name()
    if url.get_driver_name() == rules_for(backend).async_driver:
        url = url.set(drivername=backend)
    return url.render_as_string(hide_password=True)


def _sqlite_foreign_keys(sync_conn: Connection, on: bool) -> None:
    # Straight to the driver: through SQLAlchemy the statement would open a
    # transaction, inside which SQLite ignores this pragma.
    cursor = sync_conn.connection.dbapi_connection.cursor()
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
        if rules.name == "sqlite":
            await conn.run_sync(_sqlite_foreign_keys, False)
            try:
                await conn.execution_options(**{WRITE_OPTION: True})
                async with conn.begin():  # BEGIN IMMEDIATE: the write lock, until commit
                    yield conn
                    await conn.run_sync(_sqlite_foreign_key_check)
            finally:
                await conn.run_sync(_sqlite_foreign_keys, True)
            return

        name = lock_name(table_prefix)
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


def _check_schema_option(dialect_name: str, schema: str | None) -> None:
    if schema is not None and dialect_name != "postgresql":
        raise ConfigurationError("the schema option is for PostgreSQL only (use table_prefix elsewhere)")


async def _check_schema_exists(conn: AsyncConnection, schema: str | None, url_shown: str) -> None:
    if schema is None:
        return
    _check_schema_option(conn.dialect.name, schema)
    exists = await conn.run_sync(lambda sync_conn: sa_inspect(sync_conn).has_schema(schema))
    if not exists:
        raise ConfigurationError(
            f"schema {schema!r} does not exist in {url_shown}: sessionstore does not create schemas; "
            f"create it first (CREATE SCHEMA {schema}) and give the migrating user the right to create tables in it"
        )


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database stands against the migration scripts.

    kind: "ok" (at head), "missing" (nothing installed), "behind" (an older
    revision), "unknown" (a revision these scripts do not know: a newer
    sessionstore migrated it), "unversioned" (sessionstore tables but no
    version row: created some other way).
    """

    kind: str
    current: str | None
    head: str

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


def _status_sync(sync_conn: Connection, table_prefix: str, schema: str | None, scripts: str | Path | None) -> SchemaStatus:
    from alembic.runtime.migration import MigrationContext
    from alembic.util import CommandError

    script = script_directory(scripts)
    head = head_revision(scripts)
    context = MigrationContext.configure(
        sync_conn, opts={"version_table": version_table(table_prefix), "version_table_schema": schema}
    )
    current = context.get_current_revision()
    if current == head:
        return SchemaStatus("ok", current, head)
    if current is None:
        has_tables = sa_inspect(sync_conn).has_table(f"{table_prefix}sessions", schema=schema)
        return SchemaStatus("unversioned" if has_tables else "missing", None, head)
    try:
        script.get_revision(current)
    except CommandError:
        return SchemaStatus("unknown", current, head)
    return SchemaStatus("behind", current, head)


async def schema_status(
    target: AsyncEngine | AsyncConnection, *, table_prefix: str = DEFAULT_PREFIX, schema: str | None = None,
    scripts: str | Path | None = None,
) -> SchemaStatus:
    """The database's revision compared with the scripts' head."""
    check_prefix(table_prefix)
    if isinstance(target, AsyncConnection):
        return await target.run_sync(_status_sync, table_prefix, schema, scripts)
    async with target.connect() as conn:
        return await conn.run_sync(_status_sync, table_prefix, schema, scripts)


def fix_command(verb: str, url_shown: str, table_prefix: str, schema: str | None, *extra: str) -> str:
    """A `sessionstore db …` command line, quoted for a POSIX shell."""
    parts = ["sessionstore", "db", verb, "--url", url_shown, "--prefix", table_prefix]
    if schema:
        parts += ["--schema", schema]
    parts += list(extra)
    return shlex.join(parts)


def explain_status(status: SchemaStatus, url_shown: str, table_prefix: str, schema: str | None) -> str:
    """What is wrong with the database's schema and the command that fixes it (url_shown: redacted)."""
    where = f"{url_shown} (table prefix {table_prefix!r}" + (f", schema {schema!r})" if schema else ")")
    upgrade = fix_command("upgrade", url_shown, table_prefix, schema)
    password_note = " (put the real password in place of ***)" if "***" in url_shown else ""
    if status.kind == "missing":
        return (
            f"the sessionstore schema is not installed in {where}. Install it with: {upgrade}{password_note} "
            "- or open the service with auto_migrate=True"
        )
    if status.kind == "behind":
        return (
            f"the sessionstore schema in {where} is at revision {status.current}, this version needs {status.head}. "
            f"Upgrade it with: {upgrade}{password_note} - or open the service with auto_migrate=True"
        )
    if status.kind == "unknown":
        return (
            f"the sessionstore schema in {where} is at revision {status.current}, which this version of sessionstore "
            f"does not know (its newest is {status.head}); a newer sessionstore migrated it. Upgrade the sessionstore "
            f"package, or roll the database back with the newer version's `sessionstore db downgrade --revision {status.head}`"
        )
    if status.kind == "unversioned":
        return (
            f"{where} has sessionstore tables but no revision recorded in {version_table(table_prefix)!r}, so they "
            "were not created by sessionstore's migrations. If they match the current models, record that with: "
            f"{fix_command('stamp', url_shown, table_prefix, schema, '--revision', status.head)}{password_note} "
            f"then confirm with: {fix_command('check', url_shown, table_prefix, schema)}"
        )
    return f"the sessionstore schema in {where} is up to date"


# --------------------------------------------------------------------------- public API


async def current_revision(
    conn_or_engine: AsyncEngine | AsyncConnection, *, table_prefix: str = DEFAULT_PREFIX, schema: str | None = None
) -> str | None:
    """The revision recorded in ``{prefix}alembic_version``, or None if nothing is installed."""
    status = await schema_status(conn_or_engine, table_prefix=table_prefix, schema=schema)
    return status.current


async def verify_schema(
    engine: AsyncEngine, *, table_prefix: str = DEFAULT_PREFIX, schema: str | None = None,
    url_for_message: str | None = None,
) -> None:
    """Raise SchemaError unless the database is at the head revision.

    The message names the exact command that fixes it (password redacted).
    """
    status = await schema_status(engine, table_prefix=table_prefix, schema=schema)
    if not status.ok:
        raise SchemaError(explain_status(status, _shown_url(engine, url_for_message), table_prefix, schema))


async def ensure_schema(
    engine: AsyncEngine, *, table_prefix: str = DEFAULT_PREFIX, schema: str | None = None,
    auto_migrate: bool = False, url_for_message: str | None = None, lock_timeout_s: float = LOCK_TIMEOUT_S,
) -> None:
    """At service start: the schema must be at head; with auto_migrate, bring it there first.

    Without auto_migrate this is verify_schema. With it, a database that is
    missing the schema or behind is upgraded under the migration lock; every
    process that starts at the same time waits for the one that got the lock,
    re-checks, and finds nothing left to do.
    """
    try:
        status: SchemaStatus | None = await schema_status(engine, table_prefix=table_prefix, schema=schema)
    except DBAPIError:
        if not auto_migrate:
            raise
        # MySQL/MariaDB refuse to describe a table that another process's
        # migration is changing right now: decide under the lock instead.
        status = None
    if status is not None and status.ok:
        return
    shown = _shown_url(engine, url_for_message)
    if not auto_migrate:
        assert status is not None
        raise SchemaError(explain_status(status, shown, table_prefix, schema))
    await _upgrade(engine, "head", table_prefix, schema, None, lock_timeout_s, shown)
    await verify_schema(engine, table_prefix=table_prefix, schema=schema, url_for_message=url_for_message)


async def migrate(
    url_or_engine: str | URL | AsyncEngine, *, table_prefix: str = DEFAULT_PREFIX, schema: str | None = None,
    revision: str = "head", scripts: str | Path | None = None, lock_timeout_s: float = LOCK_TIMEOUT_S,
) -> None:
    """Install or upgrade sessionstore's schema in place (``sessionstore db upgrade``).

    Takes a URL (an engine is made and disposed here) or an AsyncEngine (left
    open). Safe to run from several processes at once. ``scripts`` points at
    another script directory (tests; applications never need it).
    """
    async with _engine_of(url_or_engine) as engine:
        await _upgrade(engine, revision, check_prefix(table_prefix), schema, scripts, lock_timeout_s, _shown_url(engine, None))


@asynccontextmanager
async def _engine_of(url_or_engine: str | URL | AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The engine to use: made from a URL (and disposed afterwards), or the caller's (left open)."""
    engine, owned = _engine_for(url_or_engine)
    try:
        yield engine
    finally:
        if owned:
            await engine.dispose()


@asynccontextmanager
async def _schema_change(
    url_or_engine: str | URL | AsyncEngine, table_prefix: str, schema: str | None, lock_timeout_s: float
) -> AsyncIterator[tuple[Any, str]]:
    """A connection holding the migration lock, on a database whose schema exists; with the URL to show."""
    check_prefix(table_prefix)
    async with _engine_of(url_or_engine) as engine:
        shown = _shown_url(engine, None)
        async with migration_connection(engine, table_prefix, lock_timeout_s, shown) as conn:
            await _check_schema_exists(conn, schema, shown)
            yield conn, shown


async def downgrade(
    url_or_engine: str | URL | AsyncEngine, *, revision: str, table_prefix: str = DEFAULT_PREFIX,
    schema: str | None = None, scripts: str | Path | None = None, lock_timeout_s: float = LOCK_TIMEOUT_S,
) -> None:
    """Roll the schema back to `revision` ("base" drops every sessionstore table and its data)."""
    from alembic import command

    async with _schema_change(url_or_engine, table_prefix, schema, lock_timeout_s) as (conn, shown):
        status = await schema_status(conn, table_prefix=table_prefix, schema=schema, scripts=scripts)
        if status.kind == "unknown":
            raise SchemaError(explain_status(status, shown, table_prefix, schema))
        await _run_command(conn, command.downgrade, table_prefix, schema, scripts, revision)


async def stamp(
    url_or_engine: str | URL | AsyncEngine, *, revision: str, table_prefix: str = DEFAULT_PREFIX,
    schema: str | None = None, scripts: str | Path | None = None, lock_timeout_s: float = LOCK_TIMEOUT_S,
) -> None:
    """Record `revision` in the version table without running any migration."""
    from alembic import command

    async with _schema_change(url_or_engine, table_prefix, schema, lock_timeout_s) as (conn, _):
        await _run_command(conn, command.stamp, table_prefix, schema, scripts, revision)


async def check_drift(
    engine: AsyncEngine, *, table_prefix: str = DEFAULT_PREFIX, schema: str | None = None
) -> list[Any]:
    """Differences between the database and the models; [] means no drift.

    Alembic's autogenerate comparison (tables, columns, types, nullability,
    server defaults, indexes, foreign keys) plus three checks it does not
    make, each about a rule sessionstore depends on: the WHERE clause of the
    partial unique indexes (PostgreSQL, SQLite), the binary collation of id
    columns and the expression of the generated ``active`` column
    (MySQL/MariaDB). Only sessionstore's own tables are compared; a host
    application's tables are ignored. See docs/migrations.md for the one
    allowance made on MariaDB (JSON reflects as LONGTEXT).
    """
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    check_prefix(table_prefix)

    def diff(sync_conn: Connection) -> list[Any]:
        options = context_options(
            sync_conn.dialect.name, table_prefix, schema, default_schema=sync_conn.dialect.default_schema_name
        )
        context = MigrationContext.configure(sync_conn, opts=options)
        metadata = options["target_metadata"]
        with warnings.catch_warnings():
            # Alembic only warns about a changed generated column; _extra_drift reports it.
            warnings.filterwarnings("ignore", message="Computed default on .* cannot be modified")
            found = list(compare_metadata(context, metadata))
        return found + _extra_drift(sync_conn, metadata)

    prepare_engine(engine)
    async with engine.connect() as conn:
        return await conn.run_sync(diff)


def _normalized_sql(sql: Any, table: Any = None) -> str:
    """SQL text compared loosely: no quoting, parentheses, case, whitespace or table qualifiers."""
    text_ = re.sub(r"[\s()`\"\[\]]", "", str(getattr(sql, "text", sql) or "").lower())
    if table is not None:
        for qualifier in (f"{table.schema}.{table.name}." if table.schema else None, f"{table.name}."):
            if qualifier:
                text_ = text_.replace(qualifier.lower(), "")
    return text_


def _extra_drift(sync_conn: Connection, metadata: Any) -> list[tuple[Any, ...]]:
    dialect = sync_conn.dialect
    inspector = sa_inspect(sync_conn)
    where_key = {"postgresql": "postgresql", "sqlite": "sqlite"}.get(dialect.name)
    found: list[tuple[Any, ...]] = []
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name, schema=table.schema):
            continue  # Alembic already reports the missing table
        db_columns = {c["name"]: c for c in inspector.get_columns(table.name, schema=table.schema)}
        collations = _mysql_collations(sync_conn, table.name, table.schema) if dialect.name in _MYSQLS else {}
        for column in table.columns:
            db_column = db_columns.get(column.name)
            if db_column is None:
                continue  # Alembic already reports the missing column
            db_computed = db_column.get("computed")
            if _computed_sql(column.computed) != _computed_sql(db_computed):
                found.append(
                    ("modify_computed", table.schema, table.name, column.name,
                     _computed_shown(db_computed), _computed_shown(column.computed))
                )
            impl = column.type.dialect_impl(dialect)
            if isinstance(impl, sqltypes.TypeDecorator):
                impl = impl.impl
            collation = getattr(impl, "collation", None)
            db_collation = collations.get(column.name)
            if collation and db_collation and collation.lower() != db_collation.lower():
                found.append(("modify_collation", table.schema, table.name, column.name, db_collation, collation))
            # Alembic ignores fractional seconds: DATETIME vs DATETIME(6) on MySQL.
            if getattr(impl, "fsp", None) is not None and getattr(db_column["type"], "fsp", None) != impl.fsp:
                found.append(("modify_type", table.schema, table.name, column.name, {}, db_column["type"], column.type))
        if where_key is None:
            continue
        db_indexes = {i["name"]: i for i in inspector.get_indexes(table.name, schema=table.schema)}
        for index in table.indexes:
            db_index = db_indexes.get(index.name)
            if db_index is None:
                continue  # Alembic already reports the missing index
            model_where = index.dialect_options[where_key].get("where")
            model_sql = (
                str(model_where.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
                if model_where is not None else ""
            )
            db_where = (db_index.get("dialect_options") or {}).get(f"{where_key}_where")
            db_sql = str(getattr(db_where, "text", db_where)) if db_where is not None else ""
            if _normalized_sql(model_sql, table) != _normalized_sql(db_sql, table):
                found.append(("modify_index_where", table.schema, table.name, index.name, db_sql or None, model_sql or None))
    return found


def _compiled_type(type_: Any, dialect: Any) -> str:
    try:
        return str(type_.compile(dialect=dialect))
    except Exception:  # noqa: BLE001 - only for display
        return repr(type_)


def _computed_sql(computed: Any) -> str:
    """A generated column's expression and storage, normalized; "" for a plain column."""
    if computed is None:
        return ""
    if isinstance(computed, dict):  # reflected
        sqltext, persisted = computed.get("sqltext"), computed.get("persisted")
    else:
        sqltext, persisted = computed.sqltext, computed.persisted
    return _normalized_sql(sqltext) + (" stored" if persisted else " virtual")


def _computed_shown(computed: Any) -> str:
    if computed is None:
        return "(a plain column)"
    if isinstance(computed, dict):
        sqltext, persisted = computed.get("sqltext"), computed.get("persisted")
    else:
        sqltext, persisted = computed.sqltext, computed.persisted
    return f"{getattr(sqltext, 'text', sqltext)} {'STORED' if persisted else 'VIRTUAL'}"


def _mysql_collations(sync_conn: Connection, table: str, schema: str | None) -> dict[str, str]:
    """Column collations as the server reports them (SHOW CREATE TABLE omits the table's default)."""
    rows = sync_conn.execute(
        text(
            "SELECT column_name, collation_name FROM information_schema.columns "
            "WHERE table_schema = COALESCE(:schema, DATABASE()) AND table_name = :table"
        ),
        {"schema": schema, "table": table},
    )
    return {name: collation for name, collation in rows if collation}


def _shown(value: Any) -> str:
    arg = getattr(value, "arg", value)  # a server default
    return str(getattr(arg, "text", arg))


def describe_diff(diff: Any, dialect: Any = None) -> str:
    """One readable line for an entry of check_drift()'s list (types rendered for `dialect`)."""
    if isinstance(diff, list):  # column modifications come grouped
        return "; ".join(describe_diff(item, dialect) for item in diff)
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        verb = "missing table" if kind == "add_table" else "unexpected table"
        return f"{verb} {diff[1].name}"
    if kind in ("add_index", "remove_index"):
        index = diff[1]
        verb = "missing index" if kind == "add_index" else "unexpected index"
        columns = ", ".join(getattr(c, "name", str(c)) for c in index.expressions)
        return f"{verb} {index.name} on {index.table.name} ({columns})"
    if kind in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        verb = "missing" if kind.startswith("add") else "unexpected"
        constraint = diff[1]
        table = getattr(getattr(constraint, "table", None), "name", "?")
        what = "foreign key" if kind.endswith("fk") else "constraint"
        columns = ", ".join(getattr(constraint, "column_keys", None) or [c.name for c in getattr(constraint, "columns", [])])
        return f"{verb} {what} {constraint.name or ''} on {table} ({columns})".replace("  ", " ")
    if kind in ("add_column", "remove_column"):
        verb = "missing column" if kind == "add_column" else "unexpected column"
        return f"{verb} {diff[2]}.{diff[3].name}"
    if kind == "modify_index_where":
        _, _schema, table, index, actual, expected = diff
        return f"index {index} on {table}: WHERE {actual or '(none)'} in the database, the models say WHERE {expected or '(none)'}"
    if kind in ("modify_computed", "modify_collation"):
        _, _schema, table, column, actual, expected = diff
        what = "generated as" if kind == "modify_computed" else "collation"
        return f"{table}.{column}: {what} {actual} in the database, the models say {expected}"
    if kind.startswith("modify_"):
        _, _schema, table, column, _info, old, new = diff
        what = kind.removeprefix("modify_").replace("_", " ")
        if what == "default":
            return f"{table}.{column}: server default {_shown(old)!s} in the database, the models say {_shown(new)!s}"
        if what == "type" and dialect is not None:
            old, new = (_compiled_type(t, dialect) for t in (old, new))
            return f"{table}.{column}: type {old} in the database, the models say {new}"
        return f"{table}.{column}: {what} is {old!r} in the database, the models say {new!r}"
    return repr(diff)


# --------------------------------------------------------------------------- internals


async def _run_command(
    conn: AsyncConnection, command: Callable[..., Any], table_prefix: str, schema: str | None,
    scripts: str | Path | None, *args: Any,
) -> None:
    def run(sync_conn: Connection) -> None:
        config = alembic_config(table_prefix=table_prefix, schema=schema, scripts=scripts)
        config.attributes["connection"] = sync_conn
        command(config, *args)

    await conn.run_sync(run)


async def _upgrade(
    engine: AsyncEngine, revision: str, table_prefix: str, schema: str | None, scripts: str | Path | None,
    lock_timeout_s: float, shown: str,
) -> None:
    from alembic import command

    async with migration_connection(engine, table_prefix, lock_timeout_s, shown) as conn:
        await _check_schema_exists(conn, schema, shown)
        # Re-read under the lock: another process may have finished meanwhile.
        status = await schema_status(conn, table_prefix=table_prefix, schema=schema, scripts=scripts)
        if status.kind in ("unknown", "unversioned"):
            raise SchemaError(explain_status(status, shown, table_prefix, schema))
        if status.ok and revision in ("head", "heads", status.head):
            return
        await _run_command(conn, command.upgrade, table_prefix, schema, scripts, revision)


def offline_sql(
    url: str | URL, *, revision: str = "head", table_prefix: str = DEFAULT_PREFIX, schema: str | None = None,
    downgrade: bool = False, output: TextIO, scripts: str | Path | None = None,
) -> None:
    """Write the DDL of an upgrade (or downgrade) to `output` instead of running it.

    Only the URL's dialect matters; nothing connects. A downgrade needs
    ``FROM:TO`` (the database is not asked where it stands).
    """
    from alembic import command

    normalized = normalize_url(url)
    _check_schema_option(normalized.get_backend_name(), schema)
    config = alembic_config(table_prefix=table_prefix, schema=schema, url=normalized, scripts=scripts, output=output)
    if downgrade:
        if ":" not in revision:
            raise ConfigurationError("printing downgrade SQL needs --revision FROM:TO, e.g. --revision 0002:0001")
        command.downgrade(config, revision, sql=True)
    else:
        command.upgrade(config, revision, sql=True)
