"""How each backend is provisioned for a test run.

memory: a fresh InMemorySessionService per service (storage is not shared
between two services; tests that need that use ``backend.shared_storage``).

sqlite / postgresql / mysql: one scratch database per test run (a temporary
file, or a database created on the server and dropped at the end; see
tests/dbs.py), built by running the migrations, so the migrations are what
the tests prove. Every test starts from empty tables.

redis: the shared server, under a key prefix of this run's own whose keys
are deleted before each test and at the end. redis-cluster: a three-master
Redis Cluster started on loopback ports for this run (tests/redis_servers.py).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from sessionstore import (
    InMemorySessionService,
    ServiceOptions,
    SessionService,
    open_service,
)
from sessionstore.sql.engine import make_engine
from sessionstore.sql.migrate import migrate
from sessionstore.sql.service import SQLSessionService

BACKENDS = ["memory", "sqlite", "postgresql", "mysql", "redis", "redis-cluster"]
SQL_BACKENDS = ["sqlite", "postgresql", "mysql"]
REDIS_BACKENDS = ["redis", "redis-cluster"]

DRIVER_VARIANTS = {"psycopg": ("postgresql", "postgresql+psycopg")}
"""Other supported drivers: backend name -> (database kind, URL scheme). The contract suite
runs on these too (tests/contract/conftest.py); the rest of the suite runs on BACKENDS."""
CONTRACT_BACKENDS = BACKENDS + list(DRIVER_VARIANTS)


class Backend:
    """A provisioned backend: opens services on its storage and empties it between tests."""

    name = "memory"
    shared_storage = False  # do two services opened here see the same data?

    def open(self, **options: Any) -> SessionService:
        return InMemorySessionService(ServiceOptions(**options))

    async def reset(self) -> None:
        """Empty the storage before a test."""


class SQLBackend(Backend):
    shared_storage = True

    def __init__(self, name: str, url: str, engine: AsyncEngine) -> None:
        self.name = name
        self.url = url
        self.engine = engine  # used only to empty the tables between tests

    def open(self, **options: Any) -> SessionService:
        return open_service(self.url, **options)

    async def reset(self) -> None:
        probe = open_service(self.engine)
        assert isinstance(probe, SQLSessionService)
        async with self.engine.begin() as conn:
            for table in reversed(probe.tables.metadata.sorted_tables):
                await conn.execute(delete(table))


class RedisBackend(Backend):
    shared_storage = True

    def __init__(self, name: str, url: str, prefix: str) -> None:
        self.name = name
        self.url = f"{url}?key_prefix={prefix}"  # the run's keys, also for a URL handed to another process
        self.prefix = prefix
        import redis.asyncio as aioredis

        cluster = url.startswith("redis+cluster://")
        plain = url.replace("redis+cluster://", "redis://")
        self.client: Any = (aioredis.RedisCluster.from_url(plain) if cluster else aioredis.Redis.from_url(plain))

    def open(self, **options: Any) -> SessionService:
        options.setdefault("key_prefix", self.prefix)
        return open_service(self.url, **options)

    async def reset(self) -> None:
        from tests.redis_servers import delete_prefix

        await delete_prefix(self.client, self.prefix)


@asynccontextmanager
async def service_factory(backend: Backend, clock: Any) -> AsyncIterator[Any]:
    """A factory ``await make(**options)`` of started services on `backend`'s emptied storage.

    Services get the test's clock and no periodic cleanup unless told
    otherwise, and are all closed when the block ends.
    """
    await backend.reset()
    made: list[SessionService] = []

    async def factory(**options: Any) -> SessionService:
        options.setdefault("clock", clock)
        options.setdefault("cleanup_interval", None)
        service = backend.open(**options)
        await service.start()
        made.append(service)
        return service

    try:
        yield factory
    finally:
        for service in made:
            await service.close()


@asynccontextmanager
async def provision(name: str) -> AsyncIterator[Backend]:
    if name == "memory":
        yield Backend()
        return
    if name in REDIS_BACKENDS:
        async with redis_backend(name) as provisioned:
            yield provisioned
        return
    async with sql_database(name) as url:
        await migrate(url)
        engine = make_engine(url)
        try:
            yield SQLBackend(name, url, engine)
        finally:
            await engine.dispose()


@asynccontextmanager
async def redis_backend(name: str) -> AsyncIterator[RedisBackend]:
    """The shared Redis under a prefix of this run's own, or a private three-master cluster."""
    from tests.redis_servers import delete_prefix, private_cluster, run_prefix, shared_url

    if name == "redis":
        backend = RedisBackend(name, await shared_url(), run_prefix())
        try:
            yield backend
        finally:
            await delete_prefix(backend.client, backend.prefix)
            await backend.client.aclose()
        return
    async with private_cluster() as cluster:
        backend = RedisBackend(name, cluster.url(), run_prefix())
        try:
            yield backend
        finally:
            await backend.client.aclose()


@asynccontextmanager
async def sql_database(name: str) -> AsyncIterator[str]:
    """A URL to an empty database of kind `name` (or of a DRIVER_VARIANTS name, its URL
    naming that driver) that is removed afterwards."""
    if name in DRIVER_VARIANTS:
        kind, scheme = DRIVER_VARIANTS[name]
        async with sql_database(kind) as url:
            yield make_url(url).set(drivername=scheme).render_as_string(hide_password=False)
        return
    if name == "sqlite":
        with tempfile.TemporaryDirectory(prefix="sessionstore-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'test.db'}"
        return
    from tests.dbs import scratch_database

    async with scratch_database(name) as url:
        yield url


@dataclass
class MigratedDb:
    """A scratch database of one SQL kind with the schema installed (default prefix)."""

    kind: str
    url: str


@asynccontextmanager
async def migrated_database(name: str) -> AsyncIterator[MigratedDb]:
    """sql_database(name), migrated: what the SQL test modules share as a module fixture."""
    async with sql_database(name) as url:
        await migrate(url)
        yield MigratedDb(name, url)


__all__ = [
    "BACKENDS", "CONTRACT_BACKENDS", "DRIVER_VARIANTS", "REDIS_BACKENDS", "SQL_BACKENDS",
    "Backend", "MigratedDb", "RedisBackend", "SQLBackend", "migrated_database", "provision",
    "service_factory", "sql_database",
]
