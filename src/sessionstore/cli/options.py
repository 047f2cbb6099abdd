"""The options several commands share, declared once, with defaults read from the library.

``--url``, ``--prefix`` and ``--schema`` mean the same thing to every
command, so they are declared here and nowhere else. Defaults that the
service also has (batch size, event limit, retention, interval, soft
delete) come from a default ``ServiceOptions``, and the table prefix from
the models, so the command line cannot drift from what ``open_service``
does when it is given nothing.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from ..errors import SessionStoreError
from ..options import ServiceOptions
from ..sql.engine import check_prefix
from ..sql.models import DEFAULT_PREFIX
from .output import usage_error

DEFAULTS = ServiceOptions()
"""What a service opened with no options uses; the commands' defaults are read from it."""

UrlOption = Annotated[
    str,
    typer.Option(
        "--url", envvar="SESSIONSTORE_URL", show_envvar=True,
        help="Database URL: sqlite:///path, postgresql://user@host/db, mysql://user@host/db, mariadb://…",
    ),
]
PrefixOption = Annotated[
    str, typer.Option("--prefix", help="Table prefix of the sessionstore tables (the version table is {prefix}alembic_version).")
]
SchemaOption = Annotated[str | None, typer.Option("--schema", help="PostgreSQL schema holding the tables (must exist).")]

__all__ = [
    "DEFAULTS",
    "DEFAULT_PREFIX",
    "PrefixOption",
    "SchemaOption",
    "UrlOption",
    "check_target",
    "is_memory_sqlite",
    "format_duration",
    "parse_duration",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def check_target(url: str, prefix: str) -> None:
    """A usage error (one line, exit 2) before connecting: no URL, an in-memory SQLite URL (a
    database that is gone when the command ends), or an invalid prefix."""
    if not url:
        usage_error("no database URL: pass --url or set SESSIONSTORE_URL")
    if is_memory_sqlite(url):
        usage_error(
            f"{url} is an in-memory SQLite database, gone when this command ends: "
            "give a file (sqlite:///relative/path or sqlite:////absolute/path)"
        )
    try:
        check_prefix(prefix)
    except SessionStoreError as exc:
        usage_error(str(exc))


def is_memory_sqlite(url: str) -> bool:
    """sqlite:// or sqlite:///:memory: (with or without a driver): a database private to one connection."""
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - not a URL at all: open_service says so
        return False
    database = parsed.database or ""
    memory = database in ("", ":memory:") or "mode=memory" in database
    return parsed.get_backend_name() == "sqlite" and memory


def parse_duration(option: str, text: str) -> timedelta:
    """``90s``, ``30m``, ``12h``, ``7d``, ``250ms`` (a bare number is seconds)."""
    match = _DURATION.match(text)
    if not match:
        usage_error(f"{option} must be a duration like 90s, 30m, 12h or 7d, got {text!r}")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2) or "s"])


def format_duration(value: timedelta | None) -> str:
    """The shortest spelling parse_duration reads back (``7d``, ``5m``), for help texts."""
    if value is None:
        return "none"
    seconds = value.total_seconds()
    for unit, size in _UNITS.items():
        count = seconds / size
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    return f"{seconds:g}s"
