"""For a host application's Alembic env.py: keep out of sessionstore's tables, or migrate them too.

In the host's ``env.py``::

    import sessionstore.alembic

    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=sessionstore.alembic.include_name(prefix="ss_"),
    )

and, to apply sessionstore's revisions in the same run, on the same connection::

    sessionstore.alembic.upgrade(connection, prefix="ss_")

docs/migrations.md ("Integrating with your app's migrations") shows a whole env.py.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from .sql.migrate.host import (
    IncludeName,
    IncludeObject,
    exclude_names,
    exclude_objects,
    our_table_names,
    upgrade_on_connection,
)
from .sql.models import DEFAULT_PREFIX

__all__ = ["include_name", "include_object", "table_names", "upgrade"]


def include_name(prefix: str = DEFAULT_PREFIX, *, also: IncludeName | None = None) -> IncludeName:
    """An ``include_name=`` hook for ``context.configure`` that hides sessionstore's tables
    (those of `prefix`, and ``{prefix}alembic_version``) from the host's autogenerate and
    ``alembic check``. `also`: the host's own include_name, asked about everything else."""
    return exclude_names(prefix, also)


def include_object(prefix: str = DEFAULT_PREFIX, *, also: IncludeObject | None = None) -> IncludeObject:
    """The same as an ``include_object=`` hook (for hosts that filter on objects), chaining `also`."""
    return exclude_objects(prefix, also)


def table_names(prefix: str = DEFAULT_PREFIX) -> frozenset[str]:
    """The names of sessionstore's tables for `prefix`, its version table included."""
    return our_table_names(prefix)


def upgrade(connection: Connection, *, prefix: str = DEFAULT_PREFIX, schema: str | None = None, revision: str = "head") -> None:
    """Run sessionstore's revisions up to `revision` on the host's sync ``Connection`` (inside
    its env.py, or anywhere it holds one). Joins the connection's transaction if one is open,
    else commits its own. Same effect as ``sessionstore db upgrade`` with this prefix and schema."""
    upgrade_on_connection(connection, table_prefix=prefix, schema=schema, revision=revision)
