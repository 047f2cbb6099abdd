"""Install, check and upgrade sessionstore's schema with its own Alembic migrations.

The migration scripts ship inside the package (``sessionstore/_migrations``
in a wheel; ``migrations/`` at the root of a source checkout). The Alembic
configuration is built programmatically (no alembic.ini at runtime) with the
library's own version table, ``{prefix}alembic_version``, so a host
application's ``alembic_version`` is never touched. Every change (upgrade,
downgrade, stamp) runs on one connection under a database-wide lock, so
processes that start together with ``auto_migrate=True`` do not race.

Modules: ``scripts`` (where the scripts are, the Alembic config), ``lock``
(the migration connection and its lock), ``status`` (where a database
stands, and the message that says how to fix it), ``drift`` (database vs
models), ``api`` (the operations below).
"""

from __future__ import annotations

from typing import Any

from .api import downgrade, ensure_schema, migrate, offline_sql, stamp, verify_schema
from .drift import check_drift, describe_diff
from .lock import LOCK_TIMEOUT_S, migration_connection, migration_lock_name
from .scripts import (
    alembic_config,
    context_options,
    head_revision,
    script_directory,
    script_location,
    version_table,
)
from .status import (
    SchemaStatus,
    current_revision,
    explain_status,
    fix_command,
    schema_status,
)

__all__ = [
    "HEAD",
    "LOCK_TIMEOUT_S",
    "SchemaStatus",
    "alembic_config",
    "check_drift",
    "context_options",
    "current_revision",
    "describe_diff",
    "downgrade",
    "ensure_schema",
    "explain_status",
    "fix_command",
    "head_revision",
    "migrate",
    "migration_connection",
    "migration_lock_name",
    "offline_sql",
    "schema_status",
    "script_directory",
    "script_location",
    "stamp",
    "verify_schema",
    "version_table",
]


def __getattr__(name: str) -> Any:
    # HEAD is computed on first use, so importing sessionstore does not scan the scripts.
    if name == "HEAD":
        return head_revision()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
