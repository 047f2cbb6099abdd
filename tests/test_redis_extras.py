"""Summaries and track events on Redis: they follow their session into its tombstone (soft
delete) or out of Redis (hard delete, purge), slide with its expiry, and cleanup counts them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sessionstore.summaries import StoredSummary
from tests.backends import RedisBackend

from .contract.helpers import event, key, new_session

TTL = timedelta(minutes=10)


async def _kinds(backend: RedisBackend) -> list[str]:
    found = [k.decode() async for k in backend.client.scan_iter(match=backend.prefix + "*")]
    return sorted({k.split("}:", 1)[1].split(":", 1)[0] for k in found if "}:" in k})


@pytest.mark.parametrize("soft_delete", [True, False], ids=["soft", "hard"])
async def test_tracks_and_summaries_expire_with_their_session_and_are_counted(make_redis, redis_backend, clock, soft_delete):
    svc = await make_redis(session_ttl=TTL, soft_delete=soft_delete, tombstone_retention=timedelta(minutes=1))
    s = await new_session(svc, "s1")
    await svc.append_event(s, event())
    for i in range(3):
        await svc.append_track_event(key("s1"), "tool:calls", {"i": i})
    await svc.append_track_event(key("s1"), "usage", {"tokens": 5})
    assert await svc._put_summary(key("s1"), "", StoredSummary("so far", 1, clock.now), clock.now)
    assert {"sum", "tr", "trs"} <= set(await _kinds(redis_backend))
    clock.advance(TTL)
    assert await svc.list_tracks(key("s1")) == [] and await svc.get_track_events(key("s1"), "usage") == []
    first = await svc.cleanup()
    assert first.sessions_expired == 1
    assert first.track_events_removed == (0 if soft_delete else 4)
    if soft_delete:
        assert {"tsum", "ttr", "ttrs"} <= set(await _kinds(redis_backend))
        clock.advance(minutes=1)
        purged = await svc.cleanup()
        assert purged.tombstones_purged == 1 and purged.track_events_removed == 4 and purged.events_removed == 1
    assert not {"sum", "tr", "trs", "tsum", "ttr", "ttrs"} & set(await _kinds(redis_backend))


async def test_track_keys_slide_with_the_session(make_redis, redis_backend, clock):
    svc = await make_redis(session_ttl=TTL, soft_delete=False)
    s = await new_session(svc, "s1")
    await svc.append_track_event(key("s1"), "t", 1)
    track_key = svc.layout.user_base("agent-app", "u1") + "tr:s1:t"
    await redis_backend.client.pexpire(track_key, 5_000)
    await svc.append_event(s, event())
    assert await redis_backend.client.pttl(track_key) > 10 * 60_000
