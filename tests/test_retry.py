"""The one retry loop on a real deadlock: the aborted transaction is rerun, counted, and listeners hear of it.

Two transactions on the shared PostgreSQL (in a scratch database) lock two
rows in opposite orders; PostgreSQL aborts one with 40P01, and `retrying`
reruns it. (Galera's certification conflicts, the same loop's main customer,
are exercised in tests/test_galera.py.)
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from sessionstore.retry import RETRIES, backoff_s, retrying
from sessionstore.sql.dialects import rules_for
from sessionstore.sql.engine import make_engine
from tests.dbs import scratch_database


async def test_a_deadlocked_transaction_is_rerun_and_counted() -> None:
    heard: list[tuple[str, int, str]] = []
    remove = RETRIES.add_listener(lambda outcome, attempt, exc: heard.append((outcome, attempt, type(exc).__name__)))
    before = RETRIES.snapshot()
    async with scratch_database("postgresql") as url:
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("CREATE TABLE t (id int PRIMARY KEY, n int)"))
                await conn.execute(text("INSERT INTO t VALUES (1, 0), (2, 0)"))
            rules = rules_for("postgresql")
            both_hold_one = asyncio.Barrier(2)
            attempts = {"a": 0, "b": 0}

            def writer(name: str, first: int, second: int):  # noqa: ANN202
                async def attempt() -> None:
                    attempts[name] += 1
                    async with engine.begin() as conn:
                        await conn.execute(text("UPDATE t SET n = n + 1 WHERE id = :i"), {"i": first})
                        if attempts[name] == 1:
                            await both_hold_one.wait()  # only the first attempts meet: the rerun goes through
                        await conn.execute(text("UPDATE t SET n = n + 1 WHERE id = :i"), {"i": second})

                return retrying(attempt, rules.is_retryable)

            await asyncio.gather(writer("a", 1, 2), writer("b", 2, 1))
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT n FROM t ORDER BY id"))).scalars().all() == [2, 2]
        finally:
            await engine.dispose()
    remove()
    assert sorted(attempts.values()) == [1, 2]  # one of them was aborted and rerun once
    after = RETRIES.snapshot()
    assert after["retried"] - before["retried"] >= 1 and after["gave_up"] == before["gave_up"]
    assert any(outcome == "retried" and attempt == 0 for outcome, attempt, _ in heard)


def test_a_raising_listener_breaks_nothing_and_backoff_stays_in_bounds() -> None:
    def bad(outcome: str, attempt: int, exc: BaseException) -> None:
        raise RuntimeError("metrics exporter down")

    remove = RETRIES.add_listener(bad)
    try:
        RETRIES.record("retried", 0, RuntimeError("x"))  # does not raise
    finally:
        remove()
    remove()  # removing twice is harmless
    assert all(0 <= backoff_s(n) <= 0.5 for n in range(20) for _ in range(20))


@pytest.mark.parametrize("code", [1213, 1205])
def test_mysql_concurrency_codes_are_retryable(code: int) -> None:
    import pymysql

    assert rules_for("mysql").is_retryable(pymysql.err.OperationalError(code, "x"))
    assert not rules_for("mysql").is_retryable(pymysql.err.OperationalError(1062, "duplicate"))
