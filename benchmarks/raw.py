"""The append workload done with the raw async driver, as the yardstick for our append.

One transaction: insert the event row, update the session row (version,
last_seq, updated_at). No validation, no locking read, no retry: the least a
correct-looking hand-written append could do.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from time import perf_counter
from typing import Any

from sessionstore.sql.service import SQLSessionService

from .common import Latencies


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def raw_appends(svc: SQLSessionService, session_pk: int, contents: list[Any], first_seq: int = 1) -> Latencies:
    url = svc.engine.url
    p = svc.table_prefix
    kind = svc.rules.name
    runner = {"postgresql": _asyncpg, "mysql": _aiomysql, "sqlite": _aiosqlite}[kind]
    return await runner(url, p, session_pk, contents, first_seq)


async def _asyncpg(url, p, session_pk, contents, first_seq) -> Latencies:
    import asyncpg

    conn = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, database=url.database
    )
    insert = (
        f"INSERT INTO {p}events (session_pk, seq, event_id, author, timestamp, content, state_delta, meta, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb, '{}'::jsonb, '{}'::jsonb, $5, $5)"
    )
    bump = f"UPDATE {p}sessions SET version = version + 1, last_seq = $1, updated_at = $2 WHERE pk = $3"
    samples = []
    started = perf_counter()
    for seq, content in enumerate(contents, start=first_seq):
        t = perf_counter()
        now = _now()
        async with conn.transaction():
            await conn.execute(insert, session_pk, seq, f"raw{seq}", "user", now, json.dumps(content))
            await conn.execute(bump, seq, now, session_pk)
        samples.append(perf_counter() - t)
    wall = perf_counter() - started
    await conn.close()
    return Latencies(samples, wall)


async def _aiomysql(url, p, session_pk, contents, first_seq) -> Latencies:
    import aiomysql

    conn = await aiomysql.connect(
        host=url.host, port=url.port or 3306, user=url.username, password=url.password or "", db=url.database,
        autocommit=False,
    )
    insert = (
        f"INSERT INTO {p}events (session_pk, seq, event_id, author, timestamp, content, state_delta, meta, created_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, '{}', '{}', %s, %s)"
    )
    bump = f"UPDATE {p}sessions SET version = version + 1, last_seq = %s, updated_at = %s WHERE pk = %s"
    samples = []
    started = perf_counter()
    async with conn.cursor() as cur:
        for seq, content in enumerate(contents, start=first_seq):
            t = perf_counter()
            now = _now().replace(tzinfo=None)
            await conn.begin()
            await cur.execute(insert, (session_pk, seq, f"raw{seq}", "user", now, json.dumps(content), now, now))
            await cur.execute(bump, (seq, now, session_pk))
            await conn.commit()
            samples.append(perf_counter() - t)
    wall = perf_counter() - started
    conn.close()
    return Latencies(samples, wall)


async def _aiosqlite(url, p, session_pk, contents, first_seq) -> Latencies:
    import aiosqlite

    conn = await aiosqlite.connect(url.database, isolation_level=None)
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA synchronous=NORMAL")
    insert = (
        f"INSERT INTO {p}events (session_pk, seq, event_id, author, timestamp, content, state_delta, meta, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, '{}', '{}', ?, ?)"
    )
    bump = f"UPDATE {p}sessions SET version = version + 1, last_seq = ?, updated_at = ? WHERE pk = ?"
    samples = []
    started = perf_counter()
    for seq, content in enumerate(contents, start=first_seq):
        t = perf_counter()
        now = _now().replace(tzinfo=None).isoformat(sep=" ")
        await conn.execute("BEGIN IMMEDIATE")
        await conn.execute(insert, (session_pk, seq, f"raw{seq}", "user", now, json.dumps(content), now, now))
        await conn.execute(bump, (seq, now, session_pk))
        await conn.commit()
        samples.append(perf_counter() - t)
    wall = perf_counter() - started
    await conn.close()
    return Latencies(samples, wall)
