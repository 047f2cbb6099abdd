"""sessionstore's schema inside a host application's own Alembic run.

Two needs of an application that migrates its database with Alembic and keeps
sessionstore's tables in it:

- its autogenerate (``alembic revision --autogenerate``, ``alembic check``)
  must not see sessionstore's tables, or it proposes to drop them: the
  filters below name exactly the tables (and version table) of a prefix;
- it may want sessionstore's revisions applied by its own migration run, on
  its own connection: `upgrade_on_connection`.

Alembic's command API cannot be used from inside the host's env.py: a second
EnvironmentContext replaces, and on exit deletes, the ``alembic.context``
proxy the host's env.py is still using. So the revisions run here through a
MigrationContext of their own (Alembic's public runtime API), which leaves the
host's context alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

from ...errors import SchemaError
from ..dialects import rules_for
from ..engine import check_prefix
from ..models import DEFAULT_PREFIX, build_tables
from .scripts import context_options, script_directory, version_table

IncludeName = Callable[[str | None, str, dict[str, Any]], bool]
IncludeObject = Callable[[Any, str | None, str, bool, Any], bool]

__all__ = ["IncludeName", "IncludeObject", "exclude_names", "our_table_names", "upgrade_on_connection"]


def our_table_names(table_prefix: str = DEFAULT_PREFIX) -> frozenset[str]:
    """The tables sessionstore creates with this prefix, its version table included."""
    check_prefix(table_prefix)
    tables = build_tables(rules_for("sqlite"), table_prefix)  # table names do not depend on the dialect
    return frozenset({*(table.name for table in tables.all), version_table(table_prefix)})


def exclude_names(table_prefix: str, also: IncludeName | None) -> IncludeName:
    """An Alembic ``include_name`` hook that drops sessionstore's tables, then asks `also`."""
    ours = our_table_names(table_prefix)

    def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        if type_ == "table" and name in ours:
            return False
        if parent_names.get("table_name") in ours:  # columns, indexes and constraints of our tables
            return False
        return also(name, type_, parent_names) if also is not None else True

    return include_name


def exclude_objects(table_prefix: str, also: IncludeObject | None) -> IncludeObject:
    """An Alembic ``include_object`` hook that drops sessionstore's tables and what hangs on them."""
    ours = our_table_names(table_prefix)

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        if getattr(table, "name", None) in ours:
            return False
        return also(obj, name, type_, reflected, compare_to) if also is not None else True

    return include_object


def upgrade_on_connection(
    connection: Connection, *, table_prefix: str = DEFAULT_PREFIX, schema: str | None = None, revision: str = "head"
) -> None:
    """Bring sessionstore's schema to `revision` on a host's sync Connection.

    In a transaction the caller opened, the DDL joins it (and commits with it,
    on databases with transactional DDL); otherwise it runs in a transaction
    of its own, committed here. No migration lock is taken: the host's run is
    the one migration in progress. Our version table is ``{prefix}alembic_version``,
    never the host's.
    """
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext, MigrationStep

    check_prefix(table_prefix)
    if schema is not None and not rules_for(connection.dialect.name).supports_schemas:
        raise SchemaError("the schema option is for PostgreSQL only (use table_prefix elsewhere)")
    script = script_directory()

    def steps(current: Any, _context: Any) -> list[Any]:
        revisions = script.iterate_revisions(revision, current, implicit_base=True)
        return [MigrationStep.upgrade_from_script(script.revision_map, rev) for rev in reversed(list(revisions))]

    options = context_options(
        connection.dialect.name, table_prefix, schema, default_schema=connection.dialect.default_schema_name
    )
    context = MigrationContext.configure(connection, opts={**options, "fn": steps, "script": script})
    # Operations.context: the ``op`` the revision scripts call (what EnvironmentContext.run_migrations
    # sets up). Call this before the host's own context.run_migrations(), not from inside a revision.
    with Operations.context(context):
        if connection.in_transaction():
            context.run_migrations()
        else:
            with connection.begin():
                context.run_migrations()
