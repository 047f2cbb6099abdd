"""Fixtures of the adapter tests: a started service on each backend, with the real clock
(the frameworks order and filter by wall-clock timestamps), and the URL of a durable one."""

from __future__ import annotations

import pytest

from sessionstore import SessionService
from sessionstore.records import utcnow
from tests.backends import Backend


@pytest.fixture
async def store(make_service) -> SessionService:
    return await make_service(clock=utcnow)


@pytest.fixture
def durable_url(backend: Backend) -> str:
    """The backend's URL, for tests that need a second process or a restart (every backend but memory;
    a Redis URL carries its run's key prefix)."""
    if backend.name == "memory":
        pytest.skip("the in-memory backend keeps nothing across processes")
    return backend.url
