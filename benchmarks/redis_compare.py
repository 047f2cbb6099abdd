"""Issue 15: the Redis backend's append and last-20 read, against a raw redis-py pipeline doing the
same writes and reads, and against the SQL backend on the same machine, in one run.

- append: sequential append_event of one 200-byte event with a one-key state delta.
  Raw: one MULTI/EXEC pipeline per event with the same writes (HINCRBY seq, ZADD event,
  HSET id->seq, HSET session fields, HSET state, ZADD index, PEXPIRE) but no checks:
  no duplicate lookup, no expected_version, no expiry check, no trim.
- get20: get_session(event_num=20) on a session of 200 events. Raw: one pipeline of
  HGETALL session, HGETALL state, ZRANGE -20 -1, HGETALL user state, HGETALL app state,
  decoded to Python values (JSON parsed), without building Event objects.
Target: ours >= 0.7x raw for both.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from sessionstore import Event, Key, open_service

from .common import alternate, scratch_service

CONTENT = {"role": "user", "parts": [{"text": "What is the weather in Paris tomorrow? " * 3}]}
REDIS_URL = "redis://127.0.0.1:6379/0"


async def bench_redis(kind: str, n: int) -> dict[str, float]:
    prefix = f"ssbench_{secrets.token_hex(4)}:"
    svc: Any = open_service(REDIS_URL, key_prefix=prefix, cleanup_interval=None)
    client = svc.connection.client
    try:
        figures = await _redis_figures(svc, client, prefix, n)
        async with scratch_service(kind) as sql:
            figures |= await _sql_figures(sql, n)
        figures["sql_append_ratio"] = figures["ours_append_rate"] / figures["sql_append_rate"]
        figures["sql_get20_ratio"] = figures["ours_get20_rate"] / figures["sql_get20_rate"]
        return figures
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        for k in keys:
            await client.delete(k)
        await svc.close()


async def _redis_figures(svc: Any, client: Any, prefix: str, n: int) -> dict[str, float]:
    session = await svc.create_session(Key("bench", "u1", "ours"))
    counter = iter(range(10**9))
    raw_base = f"{prefix}{{u:raw:u1}}:"

    async def ours_append() -> None:
        i = next(counter)
        await svc.append_event(session, Event(author="user", content=CONTENT, state_delta={"turn": i}))

    async def raw_append() -> None:
        i = next(counter)
        event_id = secrets.token_hex(16)
        body = orjson.dumps(["user", None, None, [], CONTENT, {}, {"turn": i}]).decode()
        pipe = client.pipeline(transaction=True)
        pipe.hincrby(raw_base + "s:raw", "q", 1)
        pipe.zadd(raw_base + "ev:raw", {f"{event_id}\n0\n0\n{body}": i})
        pipe.hset(raw_base + "ei:raw", event_id, i)
        pipe.hset(raw_base + "s:raw", mapping={"u": i, "v": i})
        pipe.hset(raw_base + "st:raw", "turn", orjson.dumps(i))
        pipe.zadd(raw_base + "idx", {"raw": i})
        pipe.persist(raw_base + "s:raw")
        await pipe.execute()

    appends = await alternate({"ours": ours_append, "raw": raw_append}, n)
    reader = await svc.create_session(Key("bench", "u1", "reader"))
    for _ in range(200):
        await svc.append_event(reader, Event(author="user", content=CONTENT))
    key = reader.key
    names = svc.layout.session_keys("bench", "u1", "reader")
    app_key = svc.layout.app_keys("bench")[0]

    async def ours_get20() -> None:
        await svc.get_session(key, event_num=20)

    async def raw_get20() -> None:
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(names[0])
        pipe.hgetall(names[1])
        pipe.zrange(names[2], -20, -1, withscores=True)
        pipe.hgetall(names[6])
        pipe.hgetall(app_key)
        meta, state, events, user, app = await pipe.execute()
        [orjson.loads(m.split("\n", 3)[3]) for m, _ in events]
        {k: orjson.loads(v) for k, v in state.items()}

    reads = await alternate({"ours": ours_get20, "raw": raw_get20}, n // 2)
    return {
        "ours_append_rate": appends["ours"].rate, "raw_append_rate": appends["raw"].rate,
        "append_ratio": appends["ours"].rate / appends["raw"].rate,
        "ours_append_p50_ms": appends["ours"].p50 * 1e3, "raw_append_p50_ms": appends["raw"].p50 * 1e3,
        "ours_get20_rate": reads["ours"].rate, "raw_get20_rate": reads["raw"].rate,
        "get20_ratio": reads["ours"].rate / reads["raw"].rate,
    }


async def _sql_figures(svc: Any, n: int) -> dict[str, float]:
    session = await svc.create_session(Key("bench", "u1", "sql"))
    counter = iter(range(10**9))

    async def append() -> None:
        await svc.append_event(session, Event(author="user", content=CONTENT, state_delta={"turn": next(counter)}))

    appends = await alternate({"sql": append}, n)
    reader = await svc.create_session(Key("bench", "u1", "reader"))
    for _ in range(200):
        await svc.append_event(reader, Event(author="user", content=CONTENT))
    key = reader.key

    async def get20() -> None:
        await svc.get_session(key, event_num=20)

    calls: dict[str, Callable[[], Awaitable[object]]] = {"sql": get20}
    reads = await alternate(calls, n // 2)
    return {"sql_append_rate": appends["sql"].rate, "sql_get20_rate": reads["sql"].rate}
