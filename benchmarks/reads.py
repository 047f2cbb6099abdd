"""Issue 10's session reads: ours against the raw-driver floor of the same reads (and the Agents SDK).

- ``get20``: ``get_session(key, event_num=20)`` on a session of 1,000 events
  against the floor reading the same session row, newest 20 events, app
  and user state (benchmarks/raw_reads.py), and against the Agents SDK's
  ``get_items(limit=20)`` on the same database, which does strictly less
  (benchmarks/sdk.py). Targets: ours p50 / floor p50 <= 1.5, ours p50 /
  SDK p50 < 1.
- ``full``: ``get_session(key)`` (the default event_limit, 1,000) on the
  same 1,000-event session against the floor reading all 1,000 events,
  every JSON column decoded. Target: ours p50 / floor p50 <= 1.5.

The session is filled through ``append_event`` with the workload's events
(~400 characters of text and a ``{"turn": n}`` state delta each; see
benchmarks/workload.py), so the rows are a real append's. Before timing,
ours and the floor are checked to return the same events and state.
Reads of ours, the floor and the SDK alternate in rounds of 10 within the
run (benchmarks/common.alternate).
"""

from __future__ import annotations

from typing import Any

from sessionstore import Key, Session
from sessionstore.sql.service import SQLSessionService

from .common import alternate, scratch_service
from .raw_reads import RawReader, open_reader
from .sdk import sdk_session
from .workload import APP, SESSION_EVENTS, filled_session, shared_state

KEY = Key(APP, "u1", "read-me")


async def bench_get20(kind: str, reads: int) -> dict[str, float]:
    """get_session(event_num=20) vs the raw floor vs the SDK's get_items(limit=20), 1,000 events each."""
    async with scratch_service(kind) as svc:
        reader = await _prepared(svc)
        try:
            async with sdk_session(svc, SESSION_EVENTS) as sdk:
                sample = await sdk.get_items(limit=20)
                assert len(sample) == 20, len(sample)
                t = await alternate(
                    {
                        "ours": lambda: svc.get_session(KEY, event_num=20),
                        "floor": lambda: reader.read_session(KEY.app_name, KEY.user_id, KEY.session_id, 20),
                        "sdk": lambda: sdk.get_items(limit=20),
                    },
                    reads,
                )
        finally:
            await reader.close()
    ours, floor, sdk_t = t["ours"], t["floor"], t["sdk"]
    return {
        "ours_p50_ms": ours.p50 * 1e3, "floor_p50_ms": floor.p50 * 1e3, "sdk_p50_ms": sdk_t.p50 * 1e3,
        "ours_p99_ms": ours.p99 * 1e3, "floor_p99_ms": floor.p99 * 1e3, "sdk_p99_ms": sdk_t.p99 * 1e3,
        "ratio": ours.p50 / floor.p50, "sdk_ratio": ours.p50 / sdk_t.p50,
    }


async def bench_full(kind: str, reads: int) -> dict[str, float]:
    """get_session(key) (all 1,000 events, the default event_limit) vs the raw floor of the same read."""
    async with scratch_service(kind) as svc:
        assert svc.options.event_limit == SESSION_EVENTS
        reader = await _prepared(svc)
        try:
            t = await alternate(
                {
                    "ours": lambda: svc.get_session(KEY),
                    "floor": lambda: reader.read_session(KEY.app_name, KEY.user_id, KEY.session_id, SESSION_EVENTS),
                },
                reads,
                warmup=5,
            )
        finally:
            await reader.close()
    ours, floor = t["ours"], t["floor"]
    return {
        "ours_p50_ms": ours.p50 * 1e3, "floor_p50_ms": floor.p50 * 1e3,
        "ours_p99_ms": ours.p99 * 1e3, "floor_p99_ms": floor.p99 * 1e3,
        "ratio": ours.p50 / floor.p50,
    }


async def _prepared(svc: SQLSessionService) -> RawReader:
    """Fill the session and the shared state; open the floor's reader and check it reads what we read."""
    await filled_session(svc, KEY, SESSION_EVENTS)
    await shared_state(svc, KEY.user_id)
    reader = await open_reader(svc.engine.url, svc.table_prefix)
    for limit in (20, SESSION_EVENTS):
        ours = await svc.get_session(KEY, event_num=limit)
        theirs = await reader.read_session(KEY.app_name, KEY.user_id, KEY.session_id, limit)
        _check_same(ours, theirs, limit)
    return reader


def _check_same(ours: Session | None, floor: dict[str, Any] | None, limit: int) -> None:
    assert ours is not None and floor is not None
    assert len(ours.events) == len(floor["events"]) == limit, (len(ours.events), len(floor["events"]))
    assert ours.state == floor["state"], (ours.state, floor["state"])
    assert ours.version == floor["version"] and ours.updated_at == floor["updated_at"]
    for mine, theirs in zip(ours.events, floor["events"], strict=True):
        assert (mine.seq, mine.id, mine.timestamp, mine.content, mine.state_delta, mine.metadata) == (
            theirs["seq"], theirs["id"], theirs["timestamp"], theirs["content"], theirs["state_delta"],
            theirs["metadata"],
        ), (mine, theirs)
