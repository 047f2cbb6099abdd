"""Differences between a database's sessionstore tables and the models (``sessionstore db check``)."""

from __future__ import annotations

import re
import warnings
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from ..dialects import rules_for
from ..engine import check_prefix, prepare_engine
from ..models import DEFAULT_PREFIX
from .scripts import context_options


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
    rules = rules_for(dialect.name)
    where_key = rules.partial_index_option
    found: list[tuple[Any, ...]] = []
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name, schema=table.schema):
            continue  # Alembic already reports the missing table
        db_columns = {c["name"]: c for c in inspector.get_columns(table.name, schema=table.schema)}
        collations = rules.column_collations(sync_conn, table.name, table.schema)
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


