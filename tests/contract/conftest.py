"""The contract suite also runs on the other supported drivers (tests/backends.DRIVER_VARIANTS:
PostgreSQL through psycopg 3), not only on each database's default driver."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.backends import CONTRACT_BACKENDS, Backend, provision


@pytest.fixture(scope="session", params=CONTRACT_BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    async with provision(request.param) as provisioned:
        yield provisioned
