"""An exhausted connection pool gives a typed error, on SQLite, PostgreSQL and MySQL/MariaDB.

With every pooled connection checked out (pool_size=1, max_overflow=0, the
one connection held), each call waits pool_timeout and then raises
PoolTimeoutError, a DatabaseError whose message names the URL with the
password replaced by ***. It is raised at once, not retried. Once the
connection is given back, every call works again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import make_url

import sessionstore as ss
from sessionstore.sql.migrate import migrate
from sessionstore.sql.service import SQLSessionService
from tests.backends import SQL_BACKENDS, sql_database
from tests.fault_checks import every_operation

PASSWORD = "S3cr3tPassw0rd"
POOL_TIMEOUT_S = 0.2


@pytest.fixture(scope="module", params=SQL_BACKENDS)
async def url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    async with sql_database(request.param) as url:
        await migrate(url)
        if request.param == "postgresql":
            # The test servers trust local connections, so a password in the URL is accepted
            # (and ignored): it shows that the message hides it.
            url = make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)
        yield url


async def test_an_exhausted_pool_raises_pool_timeout_error_with_the_url_redacted(url: str) -> None:
    svc = ss.open_service(url, cleanup_interval=None, pool_size=1, max_overflow=0, pool_timeout=POOL_TIMEOUT_S)
    await svc.start()
    assert isinstance(svc, SQLSessionService)
    try:
        session = await svc.create_session(ss.Key(f"app-{uuid.uuid4().hex[:8]}", "u1", "s1"))
        ops = every_operation(svc, session)
        shown = svc.engine.url.render_as_string(hide_password=True)

        async with svc.engine.connect():  # holds the only connection
            for name, op in ops.items():
                started = time.perf_counter()
                with pytest.raises(ss.PoolTimeoutError) as raised:
                    await op()
                took = time.perf_counter() - started
                assert isinstance(raised.value, ss.DatabaseError)
                assert shown in str(raised.value), f"{name}: {raised.value}"
                assert PASSWORD not in str(raised.value) and PASSWORD not in repr(raised.value)
                assert POOL_TIMEOUT_S * 0.9 <= took < POOL_TIMEOUT_S + 1.5, f"{name}: waited {took:.2f}s (retried?)"

        for op in ops.values():  # given back: everything works
            await op()
    finally:
        await svc.close()
