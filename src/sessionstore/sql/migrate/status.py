"""Where a database stands against the migration scripts, and what to tell the user about it."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..engine import check_prefix
from ..models import DEFAULT_PREFIX
from .scripts import head_revision, script_directory, version_table


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


async def current_revision(
    conn_or_engine: AsyncEngine | AsyncConnection, *, table_prefix: str = DEFAULT_PREFIX, schema: str | None = None
) -> str | None:
    """The revision recorded in ``{prefix}alembic_version``, or None if nothing is installed."""
    status = await schema_status(conn_or_engine, table_prefix=table_prefix, schema=schema)
    return status.current


