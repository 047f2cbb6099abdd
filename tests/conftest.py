"""Shared fixtures: a fake clock and a service factory parametrized over every backend.

The contract tests ask for ``svc`` (a started service with default options)
or ``make_service(**options)`` and run unchanged on each backend in
``BACKENDS``. SQL backends are provisioned once per test run (a database of
their own, built by the migrations) and emptied before each test; see
tests/backends.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta, timezone

import pytest

from sessionstore import SessionService
from tests.backends import BACKENDS, REDIS_BACKENDS, Backend, RedisBackend, provision, service_factory


class FakeClock:
    """An injectable clock that only moves when a test moves it."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        self.now += delta if delta is not None else timedelta(**parts)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session", params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    async with provision(request.param) as provisioned:
        yield provisioned


MakeService = Callable[..., Awaitable[SessionService]]


@pytest.fixture
async def make_service(backend: Backend, clock: FakeClock) -> AsyncIterator[MakeService]:
    """Factory: ``await make_service(event_limit=5, ...)`` gives a started service on the backend.

    Every service made here shares the test's clock (override with clock=…)
    and storage (for SQL: the same database), and is closed after the test.
    Cleanup runs only when a test calls it (cleanup_interval=None).
    """
    async with service_factory(backend, clock) as factory:
        yield factory


@pytest.fixture
async def svc(make_service: MakeService) -> SessionService:
    return await make_service()


# Redis-only test modules (test_redis_backend.py, test_redis_extras.py): the Redis backends alone.


@pytest.fixture(scope="module", params=REDIS_BACKENDS)
async def redis_backend(request: pytest.FixtureRequest) -> AsyncIterator[RedisBackend]:
    async with provision(request.param) as provisioned:
        assert isinstance(provisioned, RedisBackend)
        yield provisioned


@pytest.fixture
async def make_redis(redis_backend: RedisBackend, clock: FakeClock) -> AsyncIterator[MakeService]:
    async with service_factory(redis_backend, clock) as factory:
        yield factory
