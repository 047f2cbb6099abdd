"""The fence around the one private aiosqlite API the SQLite write path uses.

A SQLite append runs its whole transaction in one hop to aiosqlite's worker
thread (sql/native.py, AiosqliteTx): four hops per append cost as much as
the append itself. aiosqlite has no public call for "run this function on
the connection's thread", so the path uses ``Connection._execute`` (run a
function there) and ``Connection._conn`` (the sqlite3 connection). Both have
been stable from aiosqlite 0.20 to 0.22; pyproject.toml caps the dependency
below the next minor release, and this check turns a future rename into a
clear error at import instead of a broken write at run time.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

PRIVATE_API = ("_execute", "_conn")
"""What the SQLite write path needs from aiosqlite.Connection."""

TESTED = "aiosqlite>=0.20,<0.23"


def check_aiosqlite(connection_class: Any) -> None:
    """Raise ImportError naming the versions that work if `connection_class` lacks what we use."""
    missing = [name for name in PRIVATE_API if not hasattr(connection_class, name)]
    if not missing:
        return
    try:
        installed = version("aiosqlite")
    except PackageNotFoundError:
        installed = "unknown"
    raise ImportError(
        f"sessionstore's SQLite write path needs aiosqlite.Connection.{', .'.join(missing)}, "
        f"which aiosqlite {installed} does not have; install a tested version: pip install '{TESTED}'"
    )
