"""Shared benchmark plumbing: where the databases are, a scratch table prefix, latency stats,
alternating timed rounds, and dedicated raw driver connections for the floors."""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL

from sessionstore import open_service
from sessionstore.sql.migrate import migrate
from sessionstore.sql.service import SQLSessionService

DEFAULT_URLS = {
    "postgresql": os.environ.get("SESSIONSTORE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("SESSIONSTORE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
}
DATABASES = ("sqlite", "postgresql", "mysql")


@dataclass
class Latencies:
    """Per-operation latencies (seconds) of one workload."""

    samples: list[float]
    wall: float

    @property
    def rate(self) -> float:
        return len(self.samples) / self.wall

    def pct(self, p: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        return self.pct(99)


@asynccontextmanager
async def scratch_service(kind: str, **options: Any) -> AsyncIterator[SQLSessionService]:
    """A service on `kind` with freshly migrated tables under a random prefix, dropped afterwards."""
    prefix = f"b{secrets.token_hex(4)}_"
    with tempfile.TemporaryDirectory(prefix="ssbench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}" if kind == "sqlite" else DEFAULT_URLS[kind]
        await migrate(url, table_prefix=prefix)
        options.setdefault("cleanup_interval", None)
        svc = open_service(url, table_prefix=prefix, **options)
        assert isinstance(svc, SQLSessionService)
        try:
            async with svc:
                yield svc
        finally:
            await drop_tables(url, prefix)


async def drop_tables(url: str, prefix: str) -> None:
    svc = open_service(url, table_prefix=prefix)
    assert isinstance(svc, SQLSessionService)
    async with svc.engine.begin() as conn:
        await conn.run_sync(svc.tables.metadata.drop_all)
        await conn.execute(text(f"DROP TABLE IF EXISTS {prefix}alembic_version"))
    await svc.close()


async def alternate(
    contenders: Mapping[str, Callable[[], Awaitable[object]]], reads: int, *, batch: int = 10, warmup: int = 20
) -> dict[str, Latencies]:
    """Time `reads` calls of each contender, in alternating rounds of `batch` calls.

    Each contender first runs `warmup` untimed calls (pools, statement
    caches). Rounds then rotate which contender goes first, so that neither
    drift in the machine's load nor going first favours one side.
    """
    for call in contenders.values():
        for _ in range(warmup):
            await call()
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    done = 0
    rnd = 0
    while done < reads:
        n = min(batch, reads - done)
        shift = rnd % len(names)
        for name in names[shift:] + names[:shift]:
            call = contenders[name]
            for _ in range(n):
                t = perf_counter()
                await call()
                samples[name].append(perf_counter() - t)
        done += n
        rnd += 1
    return {name: Latencies(s, sum(s)) for name, s in samples.items()}


async def raw_connect(url: URL, *, autocommit: bool) -> Any:
    """A dedicated driver connection (outside any pool) to the database at `url`.

    SQLite: WAL, synchronous=NORMAL and foreign keys on, as the service's own
    connections, autocommit (isolation_level=None: BEGIN is explicit).
    MySQL/MariaDB: READ COMMITTED, as the service's engine.
    """
    kind = url.get_backend_name()
    if kind == "postgresql":
        import asyncpg

        return await asyncpg.connect(
            host=url.host, port=url.port or 5432, user=url.username, password=url.password, database=url.database
        )
    if kind in ("mysql", "mariadb"):
        import aiomysql

        conn = await aiomysql.connect(
            host=url.host, port=url.port or 3306, user=url.username, password=url.password or "",
            db=url.database, autocommit=autocommit,
        )
        async with conn.cursor() as cur:
            await cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        return conn
    import aiosqlite

    conn = await aiosqlite.connect(url.database, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
        await conn.execute(f"PRAGMA {pragma}")
    return conn


async def raw_close(conn: Any) -> None:
    closing = conn.close()
    if closing is not None:  # aiomysql's close() is not a coroutine
        await closing
