"""Real database servers for tests: find them, and hand out scratch databases.

Kinds: "sqlite", "postgresql", "mysql" (MySQL or MariaDB).

Servers are found through environment variables, or at their local defaults
if a quick connect succeeds:

- SESSIONSTORE_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres)
- SESSIONSTORE_TEST_MYSQL_URL    (default mysql://root@127.0.0.1:3306/test)

The URL's user must be allowed to create and drop databases. A server that
does not answer skips the test, with a message saying which variable to set,
except under CI (CI=true), where it fails: CI must never pass by skipping.

Usage::

    async with scratch_database("postgresql") as url:
        ...  # url points at a new, empty database, dropped afterwards

SQLite needs no server: its scratch database is a file in a temporary
directory that is removed afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from sessionstore.redaction import redact
from sessionstore.sql.engine import make_engine

KINDS = ("sqlite", "postgresql", "mysql")

ENV_VARS = {
    "postgresql": "SESSIONSTORE_TEST_POSTGRES_URL",
    "mysql": "SESSIONSTORE_TEST_MYSQL_URL",
}
DEFAULT_URLS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/postgres",
    "mysql": "mysql://root@127.0.0.1:3306/test",
}
_NAMES = {"postgresql": "PostgreSQL", "mysql": "MySQL/MariaDB"}
_EXAMPLES = {"postgresql": "postgresql://user@host:port/db", "mysql": "mysql://user@host:port/db"}
CONNECT_TIMEOUT_S = 5.0

_reachable: dict[str, str] = {}  # kind -> URL that answered (plain strings: no event loop ties)


def _unreachable(kind: str, url: str, why: str) -> None:
    message = (
        f"{_NAMES[kind]} not reachable; set {ENV_VARS[kind]}={_EXAMPLES[kind]} to run "
        f"(tried {redact(url)}: {why})"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


async def server_url(kind: str) -> str:
    """The URL of a reachable server of this kind (skips or, under CI, fails if there is none)."""
    if kind == "sqlite":
        raise ValueError("SQLite has no server; use scratch_database('sqlite')")
    if kind in _reachable:
        return _reachable[kind]
    url = os.environ.get(ENV_VARS[kind]) or DEFAULT_URLS[kind]
    try:
        engine = make_engine(url)
    except Exception as exc:  # noqa: BLE001 - a bad URL or a missing driver: say so and skip
        _unreachable(kind, url, str(exc))

    async def probe() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(probe(), CONNECT_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - refused, timed out, bad credentials: all "not reachable"
        _unreachable(kind, url, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    finally:
        await engine.dispose()
    _reachable[kind] = url
    return url


def _admin_engine(url: str) -> AsyncEngine:
    # CREATE/DROP DATABASE cannot run inside a transaction on PostgreSQL.
    return make_engine(url, isolation_level="AUTOCOMMIT")


def _database_url(server: str, database: str) -> str:
    return make_url(server).set(database=database).render_as_string(hide_password=False)


@asynccontextmanager
async def scratch_database(kind: str, *, prefix: str = "ss_test_") -> AsyncIterator[str]:
    """A URL to a new, empty database of this kind; the database is dropped afterwards.

    PostgreSQL and MySQL/MariaDB: ``CREATE DATABASE {prefix}<random hex>`` on
    the server from server_url(kind), dropped at the end (PostgreSQL drops it
    WITH (FORCE), so connections a test leaked do not block the drop).
    SQLite: a file in a temporary directory.
    """
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="sessionstore-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'test.db'}"
        return
    if kind not in ENV_VARS:
        raise ValueError(f"unknown database kind {kind!r}; expected one of {KINDS}")
    server = await server_url(kind)
    name = f"{prefix}{secrets.token_hex(6)}"
    admin = _admin_engine(server)
    try:
        quoted = admin.dialect.identifier_preparer.quote_identifier(name)
        force = " WITH (FORCE)" if kind == "postgresql" else ""  # end other sessions first
        async with admin.connect() as conn:
            await conn.execute(text(f"CREATE DATABASE {quoted}"))
        try:
            yield _database_url(server, name)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f"DROP DATABASE IF EXISTS {quoted}{force}"))
    finally:
        await admin.dispose()


def database_name(url: str | URL) -> str | None:
    """The database part of a URL (for assertions and messages)."""
    return make_url(url).database


__all__ = ["DEFAULT_URLS", "ENV_VARS", "KINDS", "database_name", "scratch_database", "server_url"]
