"""Column types whose storage differs per dialect, each defined once.

- JSONDoc: JSONB on PostgreSQL, JSON on MySQL/MariaDB, JSON in a TEXT column on SQLite.
- UTCDateTime: microsecond UTC timestamps everywhere; aware datetimes in and out.
- Identifier: bounded VARCHAR that compares case-sensitively on every database
  (binary collation on MySQL/MariaDB; PostgreSQL and SQLite already compare bytes).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, Text
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.types import TypeDecorator

from .. import jsonvalue
from ..keys import MAX_ID_LENGTH

_MYSQLS = ("mysql", "mariadb")


def _mysql_variant(base: Any, variant: Any) -> Any:
    for name in _MYSQLS:
        base = base.with_variant(variant, name)
    return base


class JSONText(TypeDecorator[Any]):
    """JSON serialised into a TEXT column (SQLite).

    A column declared JSON would get NUMERIC affinity in SQLite, which turns
    the stored text '1' into the integer 1; TEXT affinity keeps it text.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str:
        return jsonvalue.dumps_str(value)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else jsonvalue.loads(value)


def JSONDoc() -> Any:  # noqa: N802 - reads like a type in table definitions
    """A JSON document column; Python None is stored as JSON null, never SQL NULL."""
    base = JSON(none_as_null=False)
    base = base.with_variant(postgresql.JSONB(none_as_null=False), "postgresql")
    base = base.with_variant(JSONText(), "sqlite")
    return _mysql_variant(base, mysql.JSON(none_as_null=False))


def Identifier(length: int = MAX_ID_LENGTH) -> Any:  # noqa: N802
    """A bounded, case-sensitive id column."""
    return _mysql_variant(String(length), mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"))


def BigId() -> Any:  # noqa: N802
    """Surrogate key: BIGINT, except INTEGER on SQLite (so it aliases the rowid)."""
    return BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """UTC with microseconds: timestamptz on PostgreSQL, DATETIME(6) on MySQL, ISO text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name in _MYSQLS:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(timezone.utc)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
