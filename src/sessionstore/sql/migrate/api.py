"""Install, upgrade, roll back and stamp the schema; the check a service runs at start."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ...errors import ConfigurationError, SchemaError
from ...redaction import redact
from .. import partitions
from ..dialects import rules_for
from ..engine import check_prefix, make_engine, normalize_url, prepare_engine
from ..errors import translate_errors
from ..models import DEFAULT_PREFIX
from .lock import LOCK_TIMEOUT_S, migration_connection
from .scripts import alembic_config
from .status import SchemaStatus, explain_status, schema_status

log = logging.getLogger("sessionstore.schema")


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


def _check_schema_option(dialect_name: str, schema: str | None) -> None:
    if schema is not None and not rules_for(dialect_name).supports_schemas:
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
    shown = _shown_url(engine, url_for_message)
    log.debug(
        "schema check of %s (prefix %r): %s", shown, table_prefix,
        "undecided (tables busy)" if status is None else "at head" if status.ok else "not at head",
    )
    if status is not None and status.ok:
        return
    if not auto_migrate:
        assert status is not None
        raise SchemaError(explain_status(status, shown, table_prefix, schema))
    log.debug("auto-migrate: upgrading %s (prefix %r) to head", shown, table_prefix)
    await _upgrade(engine, "head", table_prefix, schema, None, lock_timeout_s, shown)
    await verify_schema(engine, table_prefix=table_prefix, schema=schema, url_for_message=url_for_message)


async def migrate(
    url_or_engine: str | URL | AsyncEngine, *, table_prefix: str = DEFAULT_PREFIX, schema: str | None = None,
    revision: str = "head", scripts: str | Path | None = None, lock_timeout_s: float = LOCK_TIMEOUT_S,
    partition_events: int | None = None,
) -> None:
    """Install or upgrade sessionstore's schema in place (``sessionstore db upgrade``).

    Takes a URL (an engine is made and disposed here) or an AsyncEngine (left
    open). Safe to run from several processes at once. ``scripts`` points at
    another script directory (tests; applications never need it).
    ``partition_events=N`` (PostgreSQL, at install, while events is empty)
    range-partitions the events table by session, N sessions per partition,
    so retention drops whole partitions (sql/partitions.py, docs/scaling.md).
    """
    async with _engine_of(url_or_engine) as engine:
        shown = _shown_url(engine, None)
        if partition_events is not None and not rules_for(engine.dialect.name).partitioned_events:
            raise ConfigurationError("partition_events is for PostgreSQL only")
        await _upgrade(engine, revision, check_prefix(table_prefix), schema, scripts, lock_timeout_s, shown)
        if partition_events is not None:
            async with migration_connection(engine, table_prefix, lock_timeout_s, shown) as conn:
                await partitions.install(conn, table_prefix, schema, partition_events, shown)


@asynccontextmanager
async def _engine_of(url_or_engine: str | URL | AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The engine to use: made from a URL (and disposed afterwards), or the caller's (left open)."""
    engine, owned = _engine_for(url_or_engine)
    try:
        with translate_errors(engine, rules_for(engine.dialect.name).connection_problem):
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
