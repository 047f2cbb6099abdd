"""Shared benchmark plumbing: where the databases are, a scratch table prefix, latency stats."""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text

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
