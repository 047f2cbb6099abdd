"""Alembic environment for sessionstore's own migrations.

Two ways in:

- sessionstore itself (``sessionstore db …``, ``sessionstore.migrate()``,
  ``auto_migrate=True``) builds the Alembic Config in code and puts the table
  prefix, the schema and, for online runs, a connection (already in a
  transaction, holding the migration lock) into ``config.attributes``;
- plain Alembic from a source checkout, with alembic.ini at the repository
  root: ``alembic -x url=URL [-x prefix=ss_] [-x schema=NAME] upgrade head``
  (the URL may also come from SESSIONSTORE_URL or sqlalchemy.url).

Either way the version table is ``{prefix}alembic_version``, never the host
application's ``alembic_version``, and autogenerate only looks at
sessionstore's own tables. Revision scripts read the prefix and schema from
``op.get_context().opts["sessionstore_prefix"]`` / ``["sessionstore_schema"]``.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from sessionstore.errors import ConfigurationError
from sessionstore.redaction import redact
from sessionstore.sql.engine import check_prefix, make_engine, normalize_url
from sessionstore.sql.migrate import (
    LOCK_TIMEOUT_S,
    context_options,
    migration_connection,
)
from sessionstore.sql.models import DEFAULT_PREFIX

config = context.config
_x = context.get_x_argument(as_dictionary=True)

if config.config_file_name is not None and "connection" not in config.attributes:
    # Plain `alembic` with alembic.ini: its logging setup. sessionstore's own
    # runs build the Config in code and leave the host's logging alone.
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _setting(name: str, default: str | None = None) -> str | None:
    key = f"sessionstore_{name}"
    if key in config.attributes:
        return config.attributes[key]
    if name in _x:
        return _x[name] or None
    return config.get_main_option(f"sessionstore.{name}") or default


prefix = check_prefix(_setting("prefix", DEFAULT_PREFIX))
schema = _setting("schema")


def _url() -> str:
    url = _setting("url") or os.environ.get("SESSIONSTORE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise ConfigurationError("no database URL: pass -x url=… (or set SESSIONSTORE_URL)")
    return url


def run_migrations_offline() -> None:
    """Print the SQL instead of running it; only the URL's dialect is needed."""
    dialect = normalize_url(_url()).get_backend_name()
    context.configure(
        dialect_name=dialect,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **context_options(dialect, prefix, schema),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        **context_options(
            connection.dialect.name, prefix, schema, default_schema=connection.dialect.default_schema_name
        ),
    )
    # The connection is already in a transaction (ours), so Alembic leaves
    # commit and rollback to the caller: the whole upgrade is one transaction
    # on PostgreSQL and SQLite.
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    engine = make_engine(url)
    try:
        async with migration_connection(engine, prefix, LOCK_TIMEOUT_S, redact(url)) as conn:
            await conn.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(_run_with_own_engine(_url()))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
