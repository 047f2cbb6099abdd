"""Column types whose storage differs per dialect, each defined once.

- JSONDoc: JSONB on PostgreSQL, JSON on MySQL/MariaDB, JSON in a TEXT column on SQLite.
- UTCDateTime: microsecond UTC timestamps everywhere; aware datetimes in and out.
- Identifier: a bounded id that compares exactly (case and trailing spaces
  matter) on every database: VARCHAR on PostgreSQL and SQLite, which compare
  bytes; VARBINARY holding UTF-8 on MySQL/MariaDB, whose binary collations
  still ignore trailing spaces (PAD SPACE) and differ between the two.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, String, Text
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.types import TypeDecorator

from .. import jsonvalue
from ..keys import MAX_ID_LENGTH
from .dialects import MYSQL_NAMES


def _mysql_variant(base: Any, variant: Any) -> Any:
    for name in MYSQL_NAMES:
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


class UTF8Bytes(TypeDecorator[str]):
    """A str kept as its UTF-8 bytes in VARBINARY (MySQL/MariaDB ids): compared byte for byte."""

    impl = mysql.VARBINARY
    cache_ok = True

    def __init__(self, chars: int) -> None:
        super().__init__(chars * 4)  # up to 4 bytes per code point

    def bind_processor(self, dialect: Any) -> None:
        # Bound as str: the server stores and compares it as its utf8mb4 bytes.
        # (VARBINARY's own processor wants bytes, which aiomysql 0.3 cannot escape.)
        return None

    def process_result_value(self, value: bytes | None, dialect: Any) -> str | None:
        return None if value is None else bytes(value).decode()


def Identifier(length: int = MAX_ID_LENGTH) -> Any:  # noqa: N802
    """A bounded id column that compares exactly (case- and space-sensitive) everywhere."""
    return _mysql_variant(String(length), UTF8Bytes(length))


def BigId() -> Any:  # noqa: N802
    """Surrogate key: BIGINT, except INTEGER on SQLite (so it aliases the rowid)."""
    return BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """UTC with microseconds: timestamptz on PostgreSQL, DATETIME(6) on MySQL, ISO text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name in MYSQL_NAMES:
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
